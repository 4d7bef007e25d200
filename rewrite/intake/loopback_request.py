"""What the loopback server (rewrite/intake/loopback.py) reads: a request, the error for what it cannot read, how
large a body may be, and a body in chunked framing (rare: mitmproxy sends a body it holds with its length)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class LoopbackReading(Protocol):
    """One loopback connection's reading side (loopback.py's `ConnectionReader`): its bytes read but not used yet, and
    more."""

    buf: bytearray

    async def more(self) -> bool: ...

    def take(self, n: int) -> bytes: ...

    async def exactly(self, n: int) -> bytes: ...




async def line(conn: LoopbackReading, limit: int) -> bytes:
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


async def chunked_body(conn: LoopbackReading, max_body: int) -> bytes | None:
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
