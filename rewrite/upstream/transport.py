"""A lean HTTP/1.1 transport for the upstream httpx client.

httpcore (httpx's default transport) walks every connection of its pool on each request and response close, and
passes each body read through several generator and anyio layers; on many concurrent streams that was the
largest share of Rotator's own CPU (see scripts/bench). This transport keeps an idle list per origin and reads a
response body straight off the asyncio stream, decoding chunked framing itself. It speaks HTTP/1.1 only, as
httpx does without `http2=True`; errors are httpx's, so callers branch on them as usual.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import certifi
import httpx

from rewrite.intake.big_json import Upload
from rewrite.internals import PushingReader, buffered, take_buffered
from rewrite.upstream.connect import connect
from rewrite.upstream.egress import EgressProxy
from rewrite.upstream.framing import (
    ChunkedDecoder,
    Headers,
    Origin,
    Outgoing,
    body_framing,
    from_httpx,
    parse_head,
    wire_head,
)

IDLE_EXPIRY = 30.0  # seconds an idle connection is kept: below the keep-alive timeouts vendors use
MAX_IDLE_PER_ORIGIN = 64
READ_SIZE = 65536
# The egress proxy's refusal of an absolute-form request (its answer comes where the vendor's would).
PROXY_AUTH_REQUIRED = 407



@runtime_checkable
class FastBody(Protocol):
    """The one fast path this transport offers beyond httpx's interface: the `stream` of a response it gives
    (`response.stream`, when the response came from `handle_async_request` or `send` unwrapped; httpx.AsyncClient
    wraps it) reads the undecoded body without httpx's per-piece layers. A caller checks
    `isinstance(response.stream, FastBody)` and otherwise reads `response.aiter_raw()`; both give the same bytes.

    - `next_piece()`: the body's next bytes, one piece per socket read; b"" at its end (then again b"").
      Errors are httpx's (ReadError, RemoteProtocolError); after one, the connection is dropped.
    - `push(on_piece)`: hand each next piece to `on_piece` in the connection's data callback, with no task woken
      per piece, until `on_piece` returns True, the body or its connection ends, or `on_piece` raises (raised
      from `push`; the connection is then dropped). It may return at once (nothing to push). Whatever it did not
      hand over, the body's end included, is read with `next_piece` after it returns, so a reader loops
      `await push(...)`, then `next_piece()`, until b"".
    - `aclose()`: abandon the body (its connection is closed, as its state is unknown).
    """

    async def next_piece(self) -> bytes: ...

    async def push(self, on_piece: Callable[[bytes], bool]) -> None: ...

    async def aclose(self) -> None: ...


class _Connection:
    __slots__ = ("origin", "reader", "writer", "idle_since", "idle_in", "forward")

    def __init__(self, origin: Origin, reader: PushingReader, writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0
        self.idle_in: list[_Connection] | None = None  # the idle list holding it, while it waits for reuse
        self.forward: EgressProxy | None = None  # the proxy that takes this connection's absolute-form requests

    def usable(self, now: float) -> bool:
        reader = self.reader
        # Bytes on a connection with no request outstanding (a server's 408 before it hangs up) are no answer to
        # the next request.
        return not (reader.at_eof() or buffered(reader) or reader.exception() or self.writer.is_closing()
                    or now - self.idle_since > IDLE_EXPIRY)

    def close(self) -> None:
        self.writer.close()

    def peer_closed(self) -> None:
        if self.idle_in is not None:
            self.idle_in.remove(self)
            self.idle_in = None
            self.close()


class _Stale(Exception):
    """A reused connection was closed or reset before any byte of the answer: the server closed it as idle while
    the request was on its way, so the request never reached it."""


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None, proxy: EgressProxy | None = None) -> None:
        self._ssl = ssl_context or ssl.create_default_context(cafile=certifi.where())
        self._idle: dict[Origin, list[_Connection]] = defaultdict(list)
        self._proxy = proxy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.send(from_httpx(request, await request.aread()))

    async def send(self, request: Outgoing) -> httpx.Response:
        conn = self._reuse(request.origin)
        if conn is not None:
            try:
                return await self._exchange(conn, request, reused=True)
            except _Stale:
                pass  # once more, on a new connection: not an attempt's failure
        return await self._exchange(await self._connect(request.origin, request.connect_timeout), request,
                                    reused=False)

    @property
    def idle(self) -> int:
        """Connections waiting for reuse."""
        return sum(map(len, self._idle.values()))

    async def _exchange(self, conn: _Connection, request: Outgoing, reused: bool) -> httpx.Response:
        try:
            await self._send(conn, request, reused)
            status, reason, headers = await self._read_head(conn, reused)
            if status == PROXY_AUTH_REQUIRED and conn.forward is not None:  # the proxy's answer, not the vendor's
                said = reason.decode("latin-1")[:60]
                raise httpx.ProxyError(f"the upstream proxy {conn.forward} refused the request for "
                                       f"{request.netloc.decode()}: {status} {said}".rstrip())
            length, keep_alive = body_framing(request.method, status, headers)
        except BaseException:
            conn.close()
            raise
        return httpx.Response(
            status, headers=headers, stream=_Body(self, conn, length, keep_alive),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    def _reuse(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            conn.idle_in = None
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def release(self, conn: _Connection) -> None:
        idle = self._idle[conn.origin]
        conn.idle_since = time.monotonic()
        if len(idle) >= MAX_IDLE_PER_ORIGIN or not conn.usable(conn.idle_since):
            conn.close()
            return
        idle.append(conn)
        conn.idle_in = idle

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        reader, writer, protocol, forward = await connect(origin, self._ssl, self._proxy, timeout)
        conn = _Connection(origin, reader, writer)
        conn.forward = forward
        protocol.conn = conn
        return conn

    async def _send(self, conn: _Connection, request: Outgoing, reused: bool) -> None:
        try:
            content = request.content
            head = wire_head(request, conn.forward)
            upload = isinstance(content, Upload) and not content.whole  # (written a piece at a time)
            if upload or not content:
                conn.writer.write(head)
            else:  # (both in one send, the body not copied to join them; a smaller Upload's pieces too)
                conn.writer.writelines((head, *content.pieces) if isinstance(content, Upload) else (head, content))
            await conn.writer.drain()
            if upload and isinstance(content, Upload):  # (the head went without it)
                async for piece in content:
                    conn.writer.write(piece)
                    await conn.writer.drain()
        except OSError as e:
            if reused:
                raise _Stale from e
            raise httpx.WriteError(str(e) or type(e).__name__) from e

    async def _read_head(self, conn: _Connection, reused: bool) -> tuple[int, bytes, Headers]:
        while True:
            try:
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if reused and not e.partial:
                    raise _Stale from e
                raise httpx.RemoteProtocolError("the server disconnected without sending a response") from e
            except asyncio.LimitOverrunError as e:
                raise httpx.RemoteProtocolError("response head too large") from e
            except OSError as e:
                if reused and not buffered(conn.reader):
                    raise _Stale from e
                raise httpx.ReadError(str(e) or type(e).__name__) from e
            reused = False  # a head arrived (perhaps an interim one): the server has the request
            status, reason, headers = parse_head(head[:-4])
            if status >= 200:
                return status, reason, headers
            # an interim answer (100 Continue, 103 Early Hints): the real one follows

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.idle_in = None
                conn.close()
        self._idle.clear()


async def _read(reader: asyncio.StreamReader, size: int = READ_SIZE) -> bytes:
    try:
        return await reader.read(size)
    except ConnectionError:
        # asyncio's StreamReader raises a reset at once, dropping what had already arrived before it; those
        # bytes are part of the answer the client must still see.
        if buffered(reader):
            return take_buffered(reader, size)
        raise


class _Body(httpx.AsyncByteStream):
    """A response body read straight off the connection (a FastBody); the connection goes back to the pool when
    it ends. `next_piece` is the body's one reader; the engine calls it directly, and `__aiter__` serves httpx.
    """

    def __init__(self, transport: LeanTransport, conn: _Connection, length: int | None, keep_alive: bool) -> None:
        """`length` and `keep_alive` as framing.body_framing gives them."""
        self._transport = transport
        self._conn: _Connection | None = conn
        self._keep_alive = keep_alive
        self._chunks: ChunkedDecoder | None = None  # set for a chunked body (and only for one)
        if length is None:
            self._mode, self._remaining, self._chunks = "chunked", 0, ChunkedDecoder()
        elif length < 0:
            self._mode, self._remaining = "close", 0
        else:
            self._mode, self._remaining = "length", length
        self._pushing: asyncio.Future | None = None
        self._on_piece: Callable[[bytes], bool] = _not_pushing  # while it pushes, its receiver of pieces

    async def __aiter__(self):
        while piece := await self.next_piece():
            yield piece

    async def next_piece(self) -> bytes:
        """The body's next bytes, one piece per socket read (so one upstream write stays one piece); b"" at its end.

        A plain coroutine, not an async generator: the engine reads every piece of a stream through it, and the
        generator layers httpx's iterators add per piece were a measurable share of the per-event cost."""
        conn = self._conn
        if conn is None:
            return b""
        try:
            if self._chunks is not None:
                piece = await self._next_chunked(conn.reader, self._chunks)
            elif self._mode == "length":
                piece = await self._next_of_length(conn.reader)
            else:
                piece = await _read(conn.reader)
        except OSError as e:
            self._discard()
            raise httpx.ReadError(str(e) or type(e).__name__) from e
        except BaseException:
            self._discard()
            raise
        if not piece:
            self._finish()
        return piece

    async def _next_of_length(self, reader: asyncio.StreamReader) -> bytes:
        if self._remaining <= 0:
            return b""
        data = await _read(reader, min(self._remaining, READ_SIZE))
        if not data:
            raise httpx.RemoteProtocolError("the server closed the connection before the body ended")
        self._remaining -= len(data)
        return data

    async def _next_chunked(self, reader: asyncio.StreamReader, chunks: ChunkedDecoder) -> bytes:
        while not chunks.done:
            data = await _read(reader)
            if not data:
                chunks.eof()
            piece = chunks.feed(data)
            if piece:
                return piece
        if chunks.extra:  # bytes after the body's end: no answer to a next request
            self._keep_alive = False
        return b""

    # -- push: pieces handed over as they arrive, in the connection's own data callback

    async def push(self, on_piece: Callable[[bytes], bool]) -> None:
        """Hand each next piece of the body to `on_piece` as it arrives, in the connection's data callback, with no
        task woken per piece; until `on_piece` returns True (stop, e.g. to wait for the client), the body or its
        connection ends, or `on_piece` raises (raised here). Whatever is left (the body's end, an error, bytes
        buffered meanwhile) is read as before with `next_piece`."""
        conn = self._conn
        chunks = self._chunks
        if conn is None or (chunks.done if chunks is not None else self._mode == "length" and self._remaining <= 0):
            return
        reader = conn.reader
        if not isinstance(reader, PushingReader) or buffered(reader) or reader.at_eof() or reader.exception():
            return
        self._on_piece = on_piece
        self._pushing = asyncio.get_running_loop().create_future()
        reader.pushing = self
        try:
            await self._pushing
        except BaseException:
            self._discard()
            raise
        finally:
            reader.pushing = None
            self._pushing, self._on_piece = None, _not_pushing

    def arrived(self, data: bytes) -> None:
        """(PushingReader's hand-over: the next bytes of the body, arrived while it pushes.)"""
        try:
            chunks = self._chunks
            if chunks is not None:
                piece = chunks.feed(data)
                ended = chunks.done
            elif self._mode == "length":
                if len(data) > self._remaining:  # more than the body: left for next_piece to judge
                    self.stop_push()
                    if self._conn is not None:  # (it is, while it pushes)
                        self._conn.reader.feed_data(data)
                    return
                piece = data
                self._remaining -= len(data)
                ended = self._remaining <= 0
            else:
                piece, ended = data, False
            stop = self._on_piece(piece) if piece else False
        except BaseException as e:  # noqa: BLE001 - handed to the pushing task, never to the event loop
            self.stop_push(e)
            return
        if ended or stop:
            self.stop_push()

    def stop_push(self, error: BaseException | None = None) -> None:
        waiter = self._pushing
        if self._conn is not None:
            self._conn.reader.pushing = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error) if error is not None else waiter.set_result(None)

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._keep_alive:
                self._transport.release(conn)
            else:
                conn.close()

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        self._discard()  # a body abandoned before its end leaves the connection in an unknown state


def _not_pushing(piece: bytes) -> bool:
    """A body's receiver of pieces while it does not push: stop."""
    return True
