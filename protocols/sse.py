"""Incremental server-sent-events framing: bytes in, complete blocks out, and back; the JSON they carry (and request
bodies), read and written at orjson's speed exactly as `json` reads and writes it (`loads`, `dumps`)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import orjson

from protocols.events import BrokenStream, Event

# Digits from which an integer may be past 64 bits (-9223372036854775809 is; orjson reads up to 2**64 - 1).
LONG_NUMBER = 19
_SAMPLE_STEP = 6  # (three multiples of 6 fall in any 18 integers in a row: see holds_long_number)
_LONG_RUN = re.compile(rb"[0-9]{%d}" % LONG_NUMBER)
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_HUGE_BELOW, _HUGE_ABOVE = -(2.0**63), 2.0**63

# A blank line is a line ending (CRLF, CR or LF) followed by another. Every one contains one of these pairs, and
# every occurrence of one of them is a blank line: a lone CR that is not half of a CRLF is a line ending.
_SEPARATORS = (b"\n\n", b"\n\r", b"\r\r")
# A new chunk can complete a blank line whose pair began at most this many bytes before it ("\n\r" + "\n").
_LOOKBEHIND = 2
_LF = 10
_NOT_A_LINE_END = b"."
_ABSENT = sys.maxsize

_FIELD_DATA = b"data"
_FIELD_EVENT = b"event"
_FIELD_ID = b"id"
_COMMENT = 58  # b":"
# A keepalive for clients that read comments (OpenAI's): a comment line without a blank line of its own, which joins
# the next event. After an `id:` field, openai-python reads every blank line as an event with empty data and fails
# to parse it (openai-python#2722).
COMMENT_HEARTBEAT = b": keepalive\n"
# Bytes are searched with `find`, not `in`, on every event's path: `needle in data` first tries the needle as an
# integer (a byte's value), and that failure formats an error message only to drop it (about 0.4 µs a test).
_DATA_PREFIX = b"data: "
_EVENT_PREFIX = b"event: "
_DATA_AT, _EVENT_AT = len(_DATA_PREFIX), len(_EVENT_PREFIX)  # where a line's value starts after its prefix

MAX_BLOCK = 8 << 20  # bytes: far above any real event; a block that grows past it is a broken upstream


class BlockTooLarge(BrokenStream):
    """A block grew past the parser's `max_block` without ending: the stream is broken, not slow."""


class SSEParser:
    """Splits a byte stream into SSE blocks, each handed out with its exact raw bytes.

    Concatenating the `raw` of every event handed out gives the input up to the last block boundary; what follows
    is `pending`. A block whose blank line ends in a CR at the very end of the input is held back until the next
    byte shows whether that CR is half of a CRLF; `close()` releases it at the end of the stream. An incomplete
    block longer than `max_block` bytes raises `BlockTooLarge`, so a line that never ends cannot grow without bound.
    """

    def __init__(self, max_block: int = MAX_BLOCK) -> None:
        self.max_block = max_block
        self._parts: list[bytes] = []
        self._size = 0  # bytes in _parts
        self.idle = True  # no incomplete block is pending: the next chunk starts a block
        self._tail = b""

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete trailing block."""
        return b"".join(self._parts)

    def feed(self, data: bytes) -> list[Event]:
        """Every block completed by this chunk, in order."""
        if not data:
            return []
        if not self._parts and len(data) > 1 and data.find(b"\n\n") == len(data) - 2 and data.find(b"\r") < 0:
            return [parse_block(data)]  # the usual chunk: one whole block, nothing pending before or after it
        if self._parts:
            probe = self._tail + data
            if next(_block_ends(probe, 0), None) is None:
                self._parts.append(data)
                self._size += len(data)
                self._tail = probe[-_LOOKBEHIND:]
                self._check_size()
                return []
            buf = b"".join(self._parts) + data
            pos = len(buf) - len(probe)
        else:
            buf, pos = data, 0
        events: list[Event] = []
        start = 0
        for end in _block_ends(buf, pos):
            events.append(parse_block(buf[start:end]))
            start = end
        self._keep(buf[start:] if start else buf)
        return events

    def close(self) -> list[Event]:
        """At the end of the stream: a last block held back for a CR that turned out to end it."""
        buf = self.pending
        if next(_block_ends(buf + _NOT_A_LINE_END, 0), None) != len(buf):
            return []
        self._keep(b"")
        return [parse_block(buf)]

    def _keep(self, rest: bytes) -> None:
        self._parts = [rest] if rest else []
        self.idle = not rest
        self._size = len(rest)
        self._tail = rest[-_LOOKBEHIND:]
        self._check_size()

    def _check_size(self) -> None:
        if self._size > self.max_block:
            raise BlockTooLarge(f"an SSE event grew past {self.max_block} bytes without ending")


def _block_ends(buf: bytes, pos: int) -> Iterator[int]:
    """The end offset of every blank line in `buf` from `pos` on, except one whose last byte is the buffer's last CR."""
    if buf.find(b"\r", pos) < 0:
        end = buf.find(b"\n\n", pos)
        while end >= 0:
            yield end + 2
            end = buf.find(b"\n\n", end + 2)
        return
    last = len(buf) - 1
    lf_lf, lf_cr, cr_cr = (_find(buf, separator, pos) for separator in _SEPARATORS)
    while (i := min(lf_lf, lf_cr, cr_cr)) != _ABSENT:
        if buf[i + 1] == _LF:
            end = i + 2
        elif i + 2 <= last:
            end = i + 3 if buf[i + 2] == _LF else i + 2
        else:
            return
        yield end
        if lf_lf < end:
            lf_lf = _find(buf, b"\n\n", end)
        if lf_cr < end:
            lf_cr = _find(buf, b"\n\r", end)
        if cr_cr < end:
            cr_cr = _find(buf, b"\r\r", end)


def _find(buf: bytes, separator: bytes, pos: int) -> int:
    i = buf.find(separator, pos)
    return _ABSENT if i < 0 else i


def parse_block(raw: bytes) -> Event:
    """The event one complete block (terminating blank line included) dispatches."""
    if raw.startswith(_DATA_PREFIX):
        lf, cr, size = raw.find(b"\n"), raw.find(b"\r"), len(raw)
        if lf == size - 2 and cr < 0:
            return Event(raw=raw, data=raw[_DATA_AT:-2].decode("utf-8", "replace"))
        if lf == size - 3 and cr == size - 4:
            return Event(raw=raw, data=raw[_DATA_AT:-4].decode("utf-8", "replace"))
    elif raw.startswith(_EVENT_PREFIX) and raw.find(b"\r") < 0:  # the usual named event: its name, then one data line
        lf = raw.find(b"\n")
        if raw.startswith(_DATA_PREFIX, lf + 1) and raw.find(b"\n", lf + 1) == len(raw) - 2:
            return Event(raw=raw, data=raw[lf + 1 + _DATA_AT : -2].decode("utf-8", "replace"),
                         event=raw[_EVENT_AT:lf].decode("utf-8", "replace"))
    data: list[str] = []
    event = id_ = None
    for line in raw.splitlines():
        if not line or line[0] == _COMMENT:
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == _FIELD_DATA:
            data.append(value.decode("utf-8", "replace"))
        elif name == _FIELD_EVENT:
            event = value.decode("utf-8", "replace")
        elif name == _FIELD_ID:
            id_ = value.decode("utf-8", "replace")
    return Event(raw=raw, data="\n".join(data) if data else None, event=event, id=id_)


def format_event(data: str | bytes, event: str | None = None, eol: bytes = b"\n") -> bytes:
    """One SSE block: an optional `event:` line, one `data:` line per line of `data`, and the blank line."""
    if isinstance(data, str):
        data = data.encode()
    head = b"event: " + event.encode() + eol if event is not None else b""
    if data.find(b"\n") >= 0 or data.find(b"\r") >= 0:
        body = b"".join(b"data: " + line + eol for line in data.splitlines())
    else:
        body = b"data: " + data + eol
    return head + body + eol


def json_event(obj: object, event: str | None = None, eol: bytes = b"\n") -> bytes:
    """One SSE block carrying `obj` as compact JSON."""
    return format_event(dumps(obj), event, eol)


def dumps(obj: object) -> bytes:
    """Compact JSON, as the vendors send it: what `json.dumps` writes, at orjson's speed wherever the two agree (a
    request of 1 MiB written again: 4.2 ms against 0.16). Where they do not (NaN and Infinity, which orjson writes as
    null; an integer past 64 bits, a lone surrogate, a key that is not a string, which it refuses), json writes it,
    non-ASCII escaped: a lone surrogate has no UTF-8."""
    if not holds_huge_float(obj):  # (NaN and the infinities are never between the bounds either)
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(obj, separators=(",", ":")).encode()


def load_object(data: bytes | bytearray | memoryview | str) -> dict | None:
    """The JSON object `data` holds (an event's data, a body), or None if it is not one."""
    try:
        obj = loads(data)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def loads(data: bytes | bytearray | memoryview | str, walk: bool = False) -> object:
    """`data` read as `json.loads` reads it (ValueError where it refuses it, RecursionError where it is too deep), at
    orjson's speed wherever the two agree. orjson refuses some of what json takes (NaN and Infinity, lone surrogates,
    numbers past a float's range, deep nesting) and reads an integer past 64 bits as a float where json keeps it
    exact (a body or event written again from its parse would carry it changed): such text is read by json.
    `walk`: that integer is looked for in what orjson read (`holds_huge_float`), not in the text: for megabytes of
    screenshots, whose base64 has far more bytes than the body has values (0.5 ms against 7 for 8 MiB)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    else:
        if walk:
            if not holds_huge_float(value):
                return value
        elif not holds_long_number(data.encode() if isinstance(data, str) else data):  # (valid UTF-8: orjson read it)
            return value
    return json.loads(data if isinstance(data, (str, bytes, bytearray)) else bytes(data))


def holds_huge_float(value: object) -> bool:
    """Whether `value` (as orjson read it) holds a float at or past 2**63 in magnitude, or one that is not a number:
    where orjson may have read an integer past 64 bits (it reads -2**63 to 2**64 - 1 exactly; past them, a float as
    large), or would write NaN or Infinity as null."""
    stack: list[Any] = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = item.__class__
        if kind is dict:
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is float and not _HUGE_BELOW < item < _HUGE_ABOVE:
            return True
    return False


def holds_long_number(data: bytes | bytearray | memoryview) -> bool:
    """Whether `data` holds a run of LONG_NUMBER or more ASCII digits. Not every byte is looked at: such a run holds
    three bytes in a row of every _SAMPLE_STEP-th (any 18 in a row do), so a run is looked for only around where that
    sample has three digits in a row (at most one place in 250 of a screenshot's base64; in prose and code, rarely)."""
    every = data[::_SAMPLE_STEP]
    sampled = (every if isinstance(every, bytes) else bytes(every)).translate(_DIGITS_AS_ZERO)
    at = sampled.find(b"000")
    while at >= 0:
        digit = at * _SAMPLE_STEP
        # (the run holds these three digits and those between; it lies within LONG_NUMBER - 1 bytes either side)
        if (bytes(data[digit : digit + 2 * _SAMPLE_STEP + 1]).isdigit()
                and _LONG_RUN.search(data, max(0, digit - LONG_NUMBER + 1), digit + LONG_NUMBER)):
            return True
        at = sampled.find(b"000", at + 1)
    return False
