"""The loopback HTTP/1.1 server through which the engine's bytes reach the client.

mitmproxy can only stream bytes that arrive from a server connection, so intercepted flows are pointed at this
server (see docs/architecture.md). It speaks plain HTTP/1.1 with keep-alive to mitmproxy, hands
each request to a handler together with a `Responder`, and cancels the handler when mitmproxy hangs up (the
client left). Several ports spread one client connection's concurrent flows, because mitmproxy opens at most a
few connections per client connection and server address.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable

from rewrite.intake.big_json import Upload
from rewrite.intake.loopback_request import BIG_BODY, HEAD_MAX, MAX_BODY, BadRequest, LoopbackRequest, chunked_body
from rewrite.intake.memory_pipe import Pair, open_pipe
from rewrite.internals import PipeReader, arrival, end_arrival
from rewrite.waiting import first_done

logger = logging.getLogger(__name__)

FLOWS_PER_PORT = 4  # below mitmproxy's limit of concurrent server connections per client connection and address
MAX_PORTS = 64
JOB_HEADER = "x-rotator-job"
AFTER_ANSWER = 2.0  # seconds a handler goes on after its client left with its whole answer
LAST_CHUNK = b"0\r\n\r\n"  # ends every response: they are all chunked
FLOW_BODY_HEAD = 4 << 20  # bytes of a response body a flow shows from its start
FLOW_BODY_TAIL = 64 << 10  # and from its end, so the ending stays visible


class FlowBody:
    """What a flow shows of the body sent to the client, in bounded memory: all of it up to `head + tail` bytes;
    past that its first `head` and last `tail` bytes, joined by a line that says how many were left out."""

    __slots__ = ("_head", "_pieces", "tail", "size", "_head_max", "_tail_max")

    def __init__(self, head: int = FLOW_BODY_HEAD, tail: int = FLOW_BODY_TAIL) -> None:
        self._head = bytearray()
        self._pieces: list[bytes] = []  # the head's latest pieces, kept as they came (joined when read)
        self.tail = bytearray()  # past the head; trimmed to its last `tail` bytes whenever it reaches twice that
        self.size = 0  # bytes sent in all
        self._head_max = head
        self._tail_max = tail

    @property
    def head(self) -> bytearray:
        if self._pieces:
            self._join_pieces()
        return self._head

    def _join_pieces(self) -> None:
        self._head += b"".join(self._pieces)
        self._pieces.clear()

    def add(self, data: bytes) -> None:
        # While the body fits in the head, a piece is only kept: no copy into a growing buffer per event.
        if self.size + len(data) <= self._head_max:
            self.size += len(data)
            self._pieces.append(data)
            if len(self._pieces) >= 256:  # (each piece costs an object's overhead: joined now and then)
                self._join_pieces()
            return
        head = self.head
        self.size += len(data)
        room = self._head_max - len(head)
        if room > 0:
            head += data[:room]
            data = data[room:]
        tail = self.tail
        tail += data
        if len(tail) >= 2 * self._tail_max:
            del tail[: len(tail) - self._tail_max]

    @property
    def left_out(self) -> int:
        return self.size - len(self.head) - min(len(self.tail), self._tail_max)

    def shown(self) -> bytes:
        if not self.left_out:
            return bytes(self.head + self.tail)
        said = b"\n\n[rotator: %d bytes left out here]\n\n" % self.left_out
        return b"".join((self.head, said, self.tail[-self._tail_max :] if self._tail_max else b""))

    def note(self) -> str:
        return (f"body shown: the first {len(self.head)} and the last {self.size - len(self.head) - self.left_out} "
                f"of {self.size} bytes sent to the client ({self.left_out} left out)")


def not_answered() -> bool:
    """A responder's `answered` until a handler says otherwise."""
    return False


class Responder:
    """Writes one response back to mitmproxy. Writes are synchronous and whole, so events are never split."""

    __slots__ = ("_writer", "_transport", "_send", "flow_body", "status", "headers", "finished", "answered",
                 "__weakref__")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._transport = writer.transport
        self._send = self._transport.write  # (what StreamWriter.write calls, a call less per event)
        self.flow_body = FlowBody()  # for the flow in mitmweb and saved flows
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.finished = False
        # Set by the handler: whether the client already has its whole answer (its ending was written).
        self.answered: Callable[[], bool] = not_answered

    @property
    def committed(self) -> bool:
        return self.status is not None

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = headers
        # Always chunked, so `write` frames each piece itself.
        self._writer.write(response_head(status, headers))

    def write(self, data: bytes) -> None:
        if data:
            self.flow_body.add(data)
            self._send(b"%x\r\n%b\r\n" % (len(data), data))

    @property
    def blocked(self) -> bool:
        """Whether a write is waiting to go out (or the connection is closing): `drain` before writing more."""
        transport = self._transport
        return bool(transport.get_write_buffer_size() or transport.is_closing())

    async def drain(self) -> None:
        # The loopback socket usually takes a write whole: nothing is buffered and there is nothing to wait for,
        # and skipping StreamWriter.drain's layers on every event is a measurable share of the per-event cost.
        if self.blocked:
            await self._writer.drain()

    def end(self, error: BaseException | None) -> None:
        """End the answer once its handler is done (`error`: how it failed): a failure is logged and answered with a
        502 if nothing was sent yet, and a handler that answered nothing gets an empty 502 rather than a hung flow."""
        if error is not None:
            logger.error("rotator: engine failed", exc_info=error)
            if not self.committed:
                self.start(502, [("content-type", "text/plain")])
                self.write(b"rotator: internal error\n")
        if not self.committed:
            self.start(502, [("content-type", "text/plain")])
        self.finish()

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            if self.status is not None:
                self._writer.write(LAST_CHUNK)


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """A chunked HTTP/1.1 response head (its headers as `written` keeps them)."""
    lines = [b"HTTP/1.1 %d \r\n" % status]
    lines += [b"%b: %b\r\n" % field for field in written(headers)]
    lines.append(b"transfer-encoding: chunked\r\n\r\n")
    return b"".join(lines)


def written(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """An answer's headers as they are written to mitmproxy: framing headers are Rotator's own; a header that cannot
    be written whole (a line break in it) is left out."""
    return [(name.encode("latin-1"), value.encode("latin-1", "replace")) for name, value in headers
            if name.lower() not in _FRAMING and not any(c in name or c in value for c in "\r\n\0")]


_FRAMING = frozenset({"transfer-encoding", "content-length", "connection"})


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
            if isinstance(self.reader, PipeReader):  # (the other pieces it holds, as they came: not copied)
                have += self.reader.take_held(n - have, pieces)
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


class LoopbackServer:
    def __init__(self, handler: Callable[[LoopbackRequest, Responder], Awaitable[None]]) -> None:
        self.handler = handler
        self.ports: list[int] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._inflight: dict[tuple[object, int], int] = defaultdict(int)
        self._pipes: set[asyncio.Task] = set()
        self._pipe_count = 0
        self.max_body = MAX_BODY  # request bodies past it are not read (LoopbackRequest.too_large)

    def acquire_port(self, client: object) -> int:
        """A port for one more flow of client connection `client`; call `release_port` when it ends."""
        for port in self.ports:
            if self._inflight[(client, port)] < FLOWS_PER_PORT:
                break
        else:
            port = self._listen() if len(self.ports) < MAX_PORTS else self.ports[-1]
        self._inflight[(client, port)] += 1
        return port

    def release_port(self, client: object, port: int) -> None:
        k = (client, port)
        self._inflight[k] -= 1
        if self._inflight[k] <= 0:
            del self._inflight[k]

    def _listen(self) -> int:
        # Bound synchronously, so the port accepts connections (in the backlog) before the server task runs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        self.ports.append(port)
        asyncio.get_running_loop().create_task(self._start(sock))
        return port

    async def _start(self, sock: socket.socket) -> None:
        self._servers.append(await asyncio.start_server(self._serve, sock=sock, limit=1 << 20))

    def connect_in_memory(self, port: int, limit: int = 2**16) -> Pair:
        """A connection to one of this server's ports that skips the kernel (rewrite/intake/memory_pipe.py): the same
        conversation as over TCP, at a fraction of the cost per streamed event. `port` must be one of `ports`."""
        self._pipe_count += 1
        client_end, server_end = open_pipe(("127.0.0.1", self._pipe_count), ("127.0.0.1", port), limit, 1 << 20)
        task = asyncio.get_running_loop().create_task(self._serve(*server_end))
        self._pipes.add(task)
        task.add_done_callback(self._pipes.discard)
        return client_end

    def close(self) -> None:
        for s in self._servers:
            s.close()
        self._servers.clear()
        self.ports.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = ConnectionReader(reader, self.max_body)
        try:
            while True:
                got = await conn.request()
                if got is None:
                    break
                request, keep_alive = got
                # No reference kept here: what the response recorded for its flow goes with the flow.
                if not await self._respond(request, Responder(writer), conn):
                    break
                await writer.drain()
                if not keep_alive:
                    break
        except (ConnectionError, BadRequest, asyncio.IncompleteReadError):
            pass
        except Exception:
            logger.exception("rotator: loopback connection failed")
        finally:
            writer.close()

    async def _respond(self, request: LoopbackRequest, responder: Responder, conn: ConnectionReader) -> bool:
        """Run the handler; cancel it if mitmproxy hangs up. Whether the connection can be reused."""
        handling = asyncio.ensure_future(self.handler(request, responder))
        reader = conn.reader
        arrived = arrival(reader)
        try:
            await first_done(handling, arrived)
            if not handling.done():
                if reader.at_eof() or reader.exception() is not None:  # mitmproxy hung up: the client left
                    if responder.answered():
                        # With its whole answer (a client may leave at its ending, the OpenAI SDK does at
                        # [DONE]): the handler is left a moment to record what came after (a continuation's seam,
                        # the usage) before it is stopped.
                        await asyncio.wait({handling}, timeout=AFTER_ANSWER)
                    return False
                await handling  # a pipelined request: read once this one is answered
        finally:
            end_arrival(reader, arrived)
            if not handling.done():
                handling.cancel()
                await asyncio.gather(handling, return_exceptions=True)
        error = handling.exception()
        responder.end(error)
        return error is None
