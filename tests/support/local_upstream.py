"""A scripted upstream (tests/support/engine_harness.py: Upstream) served on a real socket, so that the engine's
unit tests read answers through the production client and lean transport (rewrite/upstream/), FastBody included,
and not only through httpx.MockTransport.

The engine's client reaches it as its egress proxy (http URLs go to the proxy in absolute form), so requests keep
their URLs (http://vendor.test/...) and a script sees the same httpx.Request it would see behind MockTransport.
Each answer goes out chunked, a piece per chunk with a short pause after it (so that each arrives as a read of
its own, as a script's pieces do behind MockTransport), on a connection of its own. A script's httpx.ReadError while its
body is read (a reset, or another transport error) aborts the connection; a client that hangs up cancels the script (a stall ends).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx

from rewrite.upstream.client import UpstreamClient, new_client
from rewrite.upstream.egress import EgressProxy

Script = Callable[[httpx.Request], Awaitable[httpx.Response]]
_FRAMING = (b"content-length", b"transfer-encoding", b"connection")
PIECE_PAUSE = 0.002  # seconds


class LocalUpstream:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> LocalUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def client(self) -> UpstreamClient:
        """The engine's own client (rewrite/upstream/client.py: new_client), sending everything here."""
        return new_client(EgressProxy("127.0.0.1", self.port))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        answering = asyncio.ensure_future(self._answer(request, writer))
        hung_up = asyncio.ensure_future(reader.read(1))  # (nothing more comes before the answer ends)
        self.tasks |= {answering, hung_up}
        try:
            await asyncio.wait([answering, hung_up], return_when=asyncio.FIRST_COMPLETED)
        finally:
            answering.cancel()
            hung_up.cancel()
            await asyncio.gather(answering, hung_up, return_exceptions=True)
            self.tasks -= {answering, hung_up}
            writer.close()

    async def _answer(self, request: httpx.Request, writer: asyncio.StreamWriter) -> None:
        response = await self.script(request)
        try:
            head = [b"HTTP/1.1 %d %s" % (response.status_code, response.reason_phrase.encode())]
            head += [name + b": " + value for name, value in response.headers.raw if name.lower() not in _FRAMING]
            head += [b"transfer-encoding: chunked", b"connection: close"]
            writer.write(b"\r\n".join(head) + b"\r\n\r\n")
            async for piece in response.stream:  # type: ignore[union-attr]  (every script's stream is async)
                if piece:
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                    await asyncio.sleep(PIECE_PAUSE)
        except httpx.TransportError:
            writer.transport.abort()
            return
        finally:
            await response.aclose()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> httpx.Request:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *lines = head[:-4].split(b"\r\n")
    method, target, _ = request_line.split(b" ", 2)
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(b":") for line in lines)]
    length = next((int(v) for n, v in headers if n.lower() == b"content-length"), 0)
    content = await reader.readexactly(length)
    headers = [(n, v) for n, v in headers if n.lower() != b"proxy-authorization"]
    return httpx.Request(method.decode(), target.decode(), headers=headers, content=content)


@contextlib.asynccontextmanager
async def serving(script: Script):
    """The engine's client, talking to `script` over a socket."""
    async with LocalUpstream(script) as upstream:
        client = upstream.client()
        try:
            yield client
        finally:
            await client.aclose()
