"""HTTP/1.1 response framing for the lean transport (rewrite/upstream/transport.py), sans I/O: the response head, how
its body is delimited, and chunked bodies.

A vendor's bytes are untrusted. These accept what h11 (httpx's own HTTP/1.1 parser) accepts and give the same
status, reason, headers and body, or refuse (httpx.RemoteProtocolError); tests/test_framing_fuzz.py checks that
differentially on generated heads and bodies split anywhere. Where they differ, they refuse what h11 would take:
line folding (obs-fold), a bare LF or CR as a line's end, status 101 (the transport asks for no upgrade), and
trailers h11 would read past their end.
"""

from __future__ import annotations

import re

import httpx

_CRLF = b"\r\n"
_NO_BODY_STATUS = (204, 304)
# RFC 9112 (as h11 reads it): HTTP-version SP 3DIGIT [SP reason], the reason any bytes but NUL, CR, LF, FF, VT.
_STATUS_LINE = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: ([^\x00\n\r\f\v]*))?")
# field-name ":" OWS field-value OWS; a value has no NUL, CR, LF, FF or VT (tabs and spaces only inside).
_FIELD = re.compile(rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
_DIGITS = re.compile(rb"[0-9]{1,20}")
# chunk-size (at most 20 hex digits) [";" chunk-ext], trailing spaces and tabs allowed (as h11 does).
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\n]*)?[ \t]*")
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_BARE_LF = re.compile(rb"(?<!\r)\n")

Headers = list[tuple[bytes, bytes]]


def _refuse(what: str, line: bytes) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"malformed {what} {bytes(line[:80])!r}")


def parse_head(head: bytes) -> tuple[int, bytes, Headers]:
    """(status, reason, headers) of a response head: its lines without the blank line that ends it."""
    status_line, *lines = head.split(_CRLF)
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise _refuse("status line", status_line)
    status = int(match[1])
    if status < 100 or status == 101:
        raise _refuse("status line", status_line)
    return status, match[2] or b"", parse_fields(lines)


def parse_fields(lines: list[bytes]) -> Headers:
    headers = []
    for line in lines:
        match = _FIELD.fullmatch(line)
        if match is None:  # (a folded line, beginning with a space, is refused here too)
            raise _refuse("header line", line)
        headers.append((match[1], match[2]))
    return headers


def body_framing(method: str, status: int, headers: Headers) -> tuple[int | None, bool]:
    """How the body is delimited: (its length, None when chunked; -1 when the connection's end ends it), and
    whether the connection may be reused after it. As h11: duplicate Content-Length values must agree; the only
    Transfer-Encoding is `chunked`, and it wins over a Content-Length."""
    length: bytes | None = None
    chunked = False
    keep_alive = True
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            values = {v.strip() for v in value.split(b",")}
            said = values.pop() if len(values) == 1 else b""
            if not _DIGITS.fullmatch(said) or length not in (None, said):
                raise _refuse("content-length", value)
            length = said
        elif lower == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                raise _refuse("transfer-encoding", value)
            chunked = True
        elif lower == b"connection" and b"close" in value.lower():
            keep_alive = False
    if method == "HEAD" or status in _NO_BODY_STATUS:
        return 0, keep_alive
    if chunked:
        return None, keep_alive
    if length is not None:
        return int(length), keep_alive
    return -1, False


class ChunkedDecoder:
    """A chunked body's data from its bytes as they arrive, in pieces of any size. `done` once the last chunk and
    its trailers have been read; `extra` if bytes followed them (the connection is then not reused)."""

    __slots__ = ("_buf", "_need", "_skip", "_trailers", "done", "extra")

    def __init__(self) -> None:
        # Bytes read but not yet decoded, data bytes left in the current chunk, bytes of its closing CRLF still to
        # come, and whether the last chunk has been read (its trailers are in `_buf`).
        self._buf = b""
        self._need = 0
        self._skip = 0
        self._trailers = False
        self.done = False
        self.extra = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes in `data`, the next bytes read."""
        if not (self._buf or self._need or self._skip or self._trailers):  # the usual read: one whole chunk
            end = data.find(_CRLF, 0, 10)
            digits = data[:end]
            if end > 0 and not digits.strip(_HEX_DIGITS):  # (int() alone would take " 5", "+5", "0x5" or "5_0")
                size = int(digits, 16)
                if size > 0 and len(data) == end + size + 4 and data.endswith(_CRLF):
                    return data[end + 2 : -2]
        buf = self._buf + data if self._buf else data
        if self._trailers:
            self._buf = buf
            self._end_of_trailers()
            return b""
        need, skip = self._need, self._skip
        out = []
        pos = 0
        while True:
            if need:
                take = min(need, len(buf) - pos)
                if take:
                    out.append(buf[pos : pos + take])
                pos += take
                need -= take
                if need:
                    break
                skip = 2
            if skip:
                ending = buf[pos : pos + skip]
                if ending != _CRLF[2 - skip : 2 - skip + len(ending)]:
                    raise _refuse("chunk ending", ending)
                pos += len(ending)
                skip -= len(ending)
                if skip:
                    break
            end = buf.find(_CRLF, pos)
            if end < 0:
                break
            match = _CHUNK_LINE.fullmatch(buf, pos, end)
            if match is None:
                raise _refuse("chunk size", buf[pos:end])
            size = int(match[1], 16)
            pos = end + 2
            if size == 0:
                self._trailers = True
                self._buf = buf[pos:]
                self._end_of_trailers()
                return b"".join(out)
            need = size
        self._buf = buf[pos:]
        self._need, self._skip = need, skip
        return out[0] if len(out) == 1 else b"".join(out)

    def _end_of_trailers(self) -> None:
        """After the last chunk: trailer lines (checked as header lines, then dropped), then an empty line."""
        buf = self._buf
        if buf[:2] == _CRLF:
            end, lines = 0, []
        else:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if _BARE_LF.search(buf):  # (no line can be valid with it: refused now, not at the connection's end)
                    raise _refuse("trailer", buf)
                return
            lines = buf[:end].split(_CRLF)
            end += 2
        parse_fields(lines)
        self.done = True
        self.extra = len(buf) > end + 2
        self._buf = b""

    def eof(self) -> None:
        """The connection ended: an error unless the body had."""
        if not self.done:
            raise httpx.RemoteProtocolError("the server closed the connection before the body ended")
