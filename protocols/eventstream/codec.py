"""AWS event stream framing (`application/vnd.amazon.eventstream`): bytes in, whole frames out, and back.

A frame (AWS calls it a message) is laid out as:

    total length    u32 BE   the whole frame, these four bytes and both CRCs included
    headers length  u32 BE
    prelude CRC     u32 BE   CRC32 of the eight bytes above
    headers         each: name length u8, name (UTF-8), value type u8, value (laid out by its type)
    payload         total length - headers length - 16 bytes
    message CRC     u32 BE   CRC32 of every byte before it

Sans-I/O like h11: `FrameDecoder.feed` takes the bytes as they come, split anywhere, and hands out each frame once it
is whole, with its exact bytes; `encode_frame` writes one. Bytes that are not a frame (a CRC that does not match, a
length that cannot be, headers that do not parse) raise a `FrameError`: the stream is broken, not slow, and nothing
after it can be trusted. Sources: AWS's event stream encoding reference (the Lex V2 developer guide's "Event stream
encoding") and botocore/eventstream.py, whose limits are kept: headers of at most 128 KiB, a payload of at most
24 MiB.
"""

from __future__ import annotations

import struct
import uuid as _uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from zlib import crc32

from protocols.events import BrokenStream

PRELUDE = 12  # total length, headers length, prelude CRC
OVERHEAD = PRELUDE + 4  # the prelude and the message CRC: a frame with no headers and no payload
MAX_HEADERS = 128 * 1024
MAX_PAYLOAD = 24 * 1024 * 1024
MAX_NAME = 255  # a name's length is one byte
MAX_VALUE = 65535  # a string's or byte array's length is two bytes

# Header value types, as the wire numbers them.
TRUE, FALSE, BYTE, SHORT, INTEGER, LONG, BYTES, STRING, TIMESTAMP, UUID = range(10)
_INTEGERS = {BYTE: struct.Struct("!b"), SHORT: struct.Struct("!h"), INTEGER: struct.Struct("!i"),
             LONG: struct.Struct("!q"), TIMESTAMP: struct.Struct("!q")}
_PRELUDE = struct.Struct("!III")
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
UUID_SIZE = 16

HeaderValue = bool | int | bytes | str


class FrameError(BrokenStream):
    """Bytes that are not an event stream frame."""


class ChecksumMismatch(FrameError):
    """A prelude or message CRC32 that does not match the bytes it covers."""


class BadLength(FrameError):
    """A total or headers length that no frame can have, or one past the limits."""


class BadHeaders(FrameError):
    """A headers section that does not parse: a value cut short, an unknown type, a name given twice, not UTF-8."""


class TruncatedFrame(FrameError):
    """The stream ended inside a frame."""


class Header(NamedTuple):
    """One header: its name, its wire type (TRUE ... UUID) and its value (bool, int, bytes or str by type; a
    timestamp is milliseconds since the epoch, a UUID its 16 bytes)."""

    name: str
    type: int
    value: HeaderValue

    @classmethod
    def of(cls, name: str, value: HeaderValue | _uuid.UUID) -> Header:
        """A header typed from its Python value: str a string, bytes a byte array, bool a boolean, int the
        narrowest of integer (32 bits) and long (64 bits), a UUID a UUID."""
        if isinstance(value, bool):
            return cls(name, TRUE if value else FALSE, value)
        if isinstance(value, int):
            return cls(name, INTEGER if -(1 << 31) <= value < 1 << 31 else LONG, value)
        if isinstance(value, _uuid.UUID):
            return cls(name, UUID, value.bytes)
        return cls(name, BYTES if isinstance(value, bytes) else STRING, value)


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole frame: its headers in wire order, its payload, and its exact bytes."""

    headers: tuple[Header, ...]
    payload: bytes
    raw: bytes

    def header(self, name: str) -> HeaderValue | None:
        """The value of the header named `name`, or None."""
        for header in self.headers:
            if header.name == name:
                return header.value
        return None


# -- reading ---------------------------------------------------------------------------------------------------


def prelude_lengths(data: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """(total length, headers length) of the frame whose prelude is at `start` (12 bytes there), checked."""
    total, headers, crc = _PRELUDE.unpack_from(data, start)
    if crc32(data[start:start + 8]) != crc:
        raise ChecksumMismatch(f"event stream prelude CRC {crc:#010x} does not match its bytes")
    if total < OVERHEAD or headers > total - OVERHEAD:
        raise BadLength(f"event stream frame of {total} bytes cannot hold {headers} bytes of headers")
    if headers > MAX_HEADERS or total - headers - OVERHEAD > MAX_PAYLOAD:
        raise BadLength(f"event stream frame of {total} bytes ({headers} of headers) is past the limits")
    return total, headers


def decode_frame(raw: bytes, headers_length: int) -> Frame:
    """A whole frame from its exact bytes (its prelude already checked by `prelude_lengths`)."""
    (crc,) = _U32.unpack_from(raw, len(raw) - 4)
    if crc32(memoryview(raw)[:-4]) != crc:
        raise ChecksumMismatch(f"event stream message CRC {crc:#010x} does not match its bytes")
    end = PRELUDE + headers_length
    return Frame(decode_headers(raw[PRELUDE:end]), raw[end:-4], raw)


def decode_headers(data: bytes) -> tuple[Header, ...]:
    """A headers section, strictly: every value whole, every type known, no name twice."""
    headers: list[Header] = []
    names: set[str] = set()
    pos, size = 0, len(data)
    try:
        while pos < size:
            length = data[pos]
            if pos + 1 + length > size:
                raise IndexError
            name = data[pos + 1:pos + 1 + length].decode()
            pos += 1 + length
            kind = data[pos]
            pos += 1
            value: HeaderValue
            if kind in (TRUE, FALSE):
                value = kind == TRUE
            elif kind in _INTEGERS:
                (value,) = _INTEGERS[kind].unpack_from(data, pos)
                pos += _INTEGERS[kind].size
            elif kind in (BYTES, STRING):
                (length,) = _U16.unpack_from(data, pos)
                if pos + 2 + length > size:
                    raise IndexError
                value = data[pos + 2:pos + 2 + length]
                pos += 2 + length
                if kind == STRING:
                    value = value.decode()
            elif kind == UUID:
                value = data[pos:pos + UUID_SIZE]
                pos += UUID_SIZE
            else:
                raise BadHeaders(f"event stream header {name!r} has an unknown value type {kind}")
            if pos > size:
                raise BadHeaders(f"event stream header {name!r} is cut short")
            if name in names:
                raise BadHeaders(f"event stream header {name!r} is given twice")
            names.add(name)
            headers.append(Header(name, kind, value))
    except (IndexError, struct.error):
        raise BadHeaders("an event stream header is cut short") from None
    except UnicodeDecodeError:
        raise BadHeaders("an event stream header name or string is not UTF-8") from None
    return tuple(headers)


class FrameDecoder:
    """Splits a byte stream into frames, each handed out once whole.

    Concatenating the `raw` of every frame handed out gives the input up to the last frame boundary; what follows
    is `pending`. A prelude is checked as soon as its 12 bytes are in, so a broken stream is refused before its
    claimed length is waited for. After a `FrameError` every call raises it again: what follows a broken frame
    cannot be read.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._lengths: tuple[int, int] | None = None  # of the frame being gathered, once its prelude is in
        self._broken: FrameError | None = None

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete trailing frame."""
        return bytes(self._buf)

    @property
    def idle(self) -> bool:
        """No frame is partly read: the next chunk starts one."""
        return not self._buf

    def feed(self, data: bytes) -> list[Frame]:
        """Every frame completed by this chunk, in order."""
        if self._broken is not None:
            raise self._broken
        try:
            return self._feed(data)
        except FrameError as e:
            self._broken = e
            raise

    def _feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        while len(buf) >= PRELUDE:
            if self._lengths is None:
                self._lengths = prelude_lengths(buf)
            total, headers = self._lengths
            if len(buf) < total:
                break
            raw = bytes(buf[:total])
            del buf[:total]
            self._lengths = None
            frames.append(decode_frame(raw, headers))
        return frames

    def close(self) -> None:
        """At the end of the stream: TruncatedFrame if it ended inside a frame."""
        if self._broken is not None:
            raise self._broken
        if self._buf:
            self._broken = TruncatedFrame(f"the event stream ended {len(self._buf)} bytes into a frame")
            raise self._broken


# -- writing ---------------------------------------------------------------------------------------------------


def encode_headers(headers: Iterable[Header]) -> bytes:
    out = bytearray()
    for name, kind, value in headers:
        encoded = name.encode()
        if not 0 < len(encoded) <= MAX_NAME:
            raise ValueError(f"an event stream header name is 1 to {MAX_NAME} bytes: {name!r}")
        out += bytes((len(encoded),)) + encoded + bytes((kind,))
        if kind in (TRUE, FALSE):
            continue
        if kind in _INTEGERS:
            out += _INTEGERS[kind].pack(value)
        elif kind in (BYTES, STRING):
            data = value.encode() if isinstance(value, str) else value
            if not isinstance(data, bytes) or len(data) > MAX_VALUE:
                raise ValueError(f"event stream header {name!r}: a value of at most {MAX_VALUE} bytes")
            out += _U16.pack(len(data)) + data
        elif kind == UUID and isinstance(value, bytes) and len(value) == UUID_SIZE:
            out += value
        else:
            raise ValueError(f"event stream header {name!r}: no value of type {kind} is {value!r}")
    return bytes(out)


def encode_frame(headers: Iterable[Header], payload: bytes) -> bytes:
    """One frame, both CRCs computed."""
    head = encode_headers(headers)
    if len(head) > MAX_HEADERS or len(payload) > MAX_PAYLOAD:
        raise ValueError("an event stream frame past the limits")
    lengths = struct.pack("!II", OVERHEAD + len(head) + len(payload), len(head))
    body = lengths + _U32.pack(crc32(lengths)) + head + payload
    return body + _U32.pack(crc32(body))
