"""HTTP/1.1 on the wire for the lean transport (rewrite/upstream/transport.py), sans I/O: a request as the transport
sends it (`Outgoing`, which UpstreamClient builds the engine's requests as) and its bytes; the response head, how its
body is delimited, and chunked bodies.

A vendor's bytes are untrusted. These accept what h11 (httpx's own HTTP/1.1 parser) accepts and give the same
status, reason, headers and body, or refuse (httpx.RemoteProtocolError); tests/test_framing_fuzz.py checks that
differentially on generated heads and bodies split anywhere. Where they differ, they refuse what h11 would take:
line folding (obs-fold), a bare LF or CR as a line's end, status 101 (the transport asks for no upgrade), and
trailers h11 would read past their end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import httpx

from rewrite.intake.big_json import Upload
from rewrite.upstream.egress import EgressProxy

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


# -- the request --------------------------------------------------------------------------------------------------

Origin = tuple[str, str, int]


@dataclass(slots=True)
class Outgoing:
    """A request as this transport sends it. UpstreamClient builds the engine's requests as these directly:
    per request, httpx.Request's URL and header models cost more than sending it (scripts/bench)."""

    method: str
    origin: Origin
    netloc: bytes  # the Host header's value, and the authority of an absolute-form target
    target: bytes  # path and query, as on the request line
    headers: list[tuple[bytes, bytes]]  # in order; Content-Length, Transfer-Encoding and Connection are ours
    content: bytes | Upload  # (an Upload: a large body, written a piece at a time)
    connect_timeout: float | None = None


# A request target httpx.URL keeps exactly as it is (RFC 3986 characters, valid percent-escapes, no fragment; and no
# dot segment, checked apart).
_PLAIN_TARGET = re.compile(r"/(?:[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*\Z")


def outgoing(method: str, url: str, headers: list[tuple[bytes, bytes]], content: bytes | Upload,
             connect_timeout: float | None) -> Outgoing | None:
    """The request httpx.Request(method, url, headers=headers, content=content) would be, as this transport sends
    it; None for a URL that httpx would normalise (it is then built by httpx)."""
    scheme_end = url.find("://")
    path_start = url.find("/", scheme_end + 3)
    if scheme_end < 0 or path_start < 0 or not _PLAIN_TARGET.match(url, path_start) or "/." in url[path_start:]:
        return None  # ("/." may be a dot segment, which httpx removes)
    where = _origin(url[:path_start])
    if where is None:
        return None
    origin, netloc = where
    return Outgoing(method, origin, netloc, url[path_start:].encode("ascii"), headers, content, connect_timeout)


@lru_cache(maxsize=256)
def _origin(prefix: str) -> tuple[Origin, bytes] | None:
    if any(c in prefix for c in "?#@\\") or not prefix.isascii():
        return None
    try:
        url = httpx.URL(prefix)
    except httpx.InvalidURL:
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    return _origin_of(url), url.netloc


def _origin_of(url: httpx.URL) -> Origin:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def on_the_wire(request: Outgoing, forward: EgressProxy | None = None) -> bytes:
    """The request's bytes; through an egress proxy (plain http), in absolute form with the proxy's credential.
    A request without a Host header gets one first, where httpx puts it."""
    content = request.content
    return wire_head(request, forward) + (b"" if isinstance(content, Upload) else content)


def wire_head(request: Outgoing, forward: EgressProxy | None = None) -> bytes:
    """The request's head as `on_the_wire` writes it, without the body (written after it as it is: joining a large
    body to its head would copy it once more)."""
    content = request.content
    target = request.target
    if forward is not None:
        target = b"%s://%s%s" % (request.origin[0].encode(), request.netloc, target)
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), target)]
    has_host = False
    for name, value in request.headers:
        lower = name.lower()
        if lower in (b"content-length", b"transfer-encoding", b"connection"):
            continue
        has_host |= lower == b"host"
        lines.append(name + b": " + value)
    if not has_host:
        lines.insert(1, b"Host: " + request.netloc)
    if content or request.method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        lines.append(b"Content-Length: %d" % (content.size if isinstance(content, Upload) else len(content)))
    if forward is not None and forward.authorization:
        lines.append(b"Proxy-Authorization: " + forward.authorization.encode())
    return _CRLF.join(lines) + _CRLF + _CRLF


def from_httpx(request: httpx.Request, content: bytes) -> Outgoing:
    url = request.url
    return Outgoing(request.method, _origin_of(url), url.netloc, url.raw_path, request.headers.raw, content,
                    request.extensions.get("timeout", {}).get("connect"))
