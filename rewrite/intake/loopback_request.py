"""What the loopback server (rewrite/intake/loopback.py) reads: a connection's reading side (`ConnectionReader`: a
request's head, and its body with its length, as the pieces it came in when large, or in chunked framing, rare:
mitmproxy sends a body it holds with its length), the request it makes, and the error for what it cannot read; and a
flow's request as the same reading would have made it (`request_of`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rewrite.intake.big_json import Parsed, Upload

HEAD_MAX = 1 << 20  # bytes of a request head
TRAILERS_MAX = HEAD_MAX  # bytes of trailer lines read after a chunked body, as many as a head may have
BIG_BODY = 4 << 20  # a request body whose every whole copy or parse costs a noticeable time: never joined here
MAX_BODY = 64 << 20  # (the config's limits.max_request_body sets it)


@dataclass(slots=True)
class LoopbackRequest:
    method: str
    target: str  # path and query, as the client sent them
    headers: list[tuple[str, str]]
    body: bytes
    too_large: bool = False  # the body is past the server's max_body: it was not read (`body` is empty)
    upload: Upload | None = None  # a body of BIG_BODY bytes or more, as the pieces it came in (`body` is empty)
    # The body as the intake read it already (big_json.read_body's answer): the request hook reads it to tell a
    # whole answer's request from a stream's (rewrite/intake/whole.py), and it is not read twice.
    read: Parsed | None = None


class BadRequest(Exception):
    """mitmproxy sent something that is not an HTTP/1.1 request this server can read: the connection closes."""


class ConnectionReader:
    """One loopback connection's reading side: the bytes read but not yet used, then the stream. Bodies are read in
    linear time (pieces joined once), and not past `max_body`."""

    __slots__ = ("reader", "buf", "max_body")

    def __init__(self, reader: asyncio.StreamReader, max_body: int) -> None:
        self.reader = reader
        self.buf = bytearray()  # (taking bytes from its front is cheap)
        self.max_body = max_body

    async def more(self) -> bool:
        data = await self.reader.read(65536)
        self.buf += data
        return bool(data)

    def take(self, n: int) -> bytes:
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def exactly(self, n: int) -> bytes:
        pieces = await self.pieces(n)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def pieces(self, n: int) -> list[bytes]:
        """The next `n` bytes, as the pieces they arrived in."""
        if len(self.buf) >= n:
            return [self.take(n)]
        pieces = [bytes(self.buf)] if self.buf else []
        have = len(self.buf)
        self.buf.clear()
        while have < n:
            data = await self.reader.read(n - have)  # (all that is buffered, up to what is missing: one copy)
            if not data:
                raise BadRequest("connection closed mid-body")
            pieces.append(data)
            have += len(data)
            if len(data) >= BIG_BODY:  # a big body buffered whole is read without waiting: others' turn now
                await asyncio.sleep(0)
        return pieces

    async def request(self) -> tuple[LoopbackRequest, bool] | None:
        """The next request and whether the connection stays open after it; None when mitmproxy closed it."""
        if not self.buf and not await self.more():
            return None
        end = self.buf.find(b"\r\n\r\n")
        while end < 0:
            if len(self.buf) > HEAD_MAX:
                raise BadRequest("request head too large")
            if not await self.more():
                raise BadRequest("connection closed mid-head")
            end = self.buf.find(b"\r\n\r\n")
        head = self.take(end)
        del self.buf[:4]
        start, *lines = head.split(b"\r\n")
        try:
            method, target, version = start.split(b" ")
        except ValueError:
            raise BadRequest("malformed request line") from None
        headers = []
        length = 0
        chunked = False
        close = version != b"HTTP/1.1"
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise BadRequest("malformed header line")
            n, v = name.decode("latin-1").lower(), value.strip().decode("latin-1")  # names lower-cased, as h11 did
            if n == "content-length":
                if not v.isdigit():
                    raise BadRequest("malformed content-length")
                length = int(v)
            elif n == "transfer-encoding":
                chunked = "chunked" in v.lower()
            elif n == "connection":
                close = "close" in v.lower() or (close and "keep-alive" not in v.lower())
            headers.append((n, v))
        request = LoopbackRequest(method.decode(), target.decode(), headers, b"")
        if not chunked and length > self.max_body:
            request.too_large = True  # not read: the connection closes after the answer
            return request, False
        if not chunked and length >= BIG_BODY:
            request.upload = Upload(await self.pieces(length))
            return request, not close
        body = await chunked_body(self, self.max_body) if chunked else await self.exactly(length) if length else b""
        if body is None:
            request.too_large = True
            return request, False
        request.body = body
        return request, not close


def request_of(method: str, target: str, fields: tuple[tuple[bytes, bytes], ...], authority: str,
               body: bytes) -> LoopbackRequest:
    """A flow's request as `ConnectionReader.request` reads it from mitmproxy (header names lower-cased, values
    stripped, a Host header from the authority when the client, over HTTP/2, sent none), for the engine to read it in
    the flow."""
    headers = [(n.decode("latin-1").lower(), v.decode("latin-1").strip()) for n, v in fields]
    if authority and "host" not in {n for n, _ in headers}:
        headers.insert(0, ("host", authority))
    return LoopbackRequest(method, target, headers, body)


async def line(conn: ConnectionReader, limit: int) -> bytes:
    while True:
        end = conn.buf.find(b"\r\n")
        if end >= 0:
            line = conn.take(end)
            del conn.buf[:2]
            return line
        if len(conn.buf) > limit:
            raise BadRequest("line too long")
        if not await conn.more():
            raise BadRequest("connection closed mid-request")


async def chunked_body(conn: ConnectionReader, max_body: int) -> bytes | None:
    """The body of chunked framing; None once it grows past max_body (the rest is not read)."""
    parts: list[bytes] = []
    size_so_far = 0
    while True:
        size_line = await line(conn, 1024)
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise BadRequest("malformed chunk size") from None
        if size == 0:
            while await line(conn, TRAILERS_MAX):  # trailers, up to the empty line
                pass
            return b"".join(parts)
        size_so_far += size
        if size_so_far > max_body:
            return None
        parts.append(await conn.exactly(size))
        if await conn.exactly(2) != b"\r\n":
            raise BadRequest("malformed chunk end")
