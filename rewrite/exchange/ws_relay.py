"""The WebSocket relay on 127.0.0.1 through which passed-through upgrades reach their provider.

mitmproxy sends an upgrade request exactly as its flow holds it, and the flow is what mitmweb shows and `-w`
saves, even while the handshake is pending. So the flow must never hold the credential that goes upstream, nor
anything that would let another connection start the job: the addon points the upgrade at this relay and submits
the job for its client connection; when mitmproxy has connected to the relay for that client, the job waits for
that one connection (known by its address), and the relay claims it on its handshake. Another connection, or a
second handshake, finds no job. The relay opens the provider's WebSocket itself with the real credential
(rewrite/exchange/websocket.py: the same key attempts as HTTP, the key leased while the socket is open). When that
succeeds it completes mitmproxy's handshake with the provider's 101 headers and copies messages both ways, so
mitmproxy still records every message; when every attempt fails, mitmproxy gets the last answer as a plain HTTP
response.
"""

from __future__ import annotations

import asyncio
import http
import logging
import socket
from collections.abc import Sequence

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rewrite.exchange.job import Job
from rewrite.exchange.websocket import SocketJob, open_upstream
from rewrite.lifecycle.hooks import Plugin
from rewrite.lifecycle.setting import Setting
from rewrite.policy.outcomes import Note
from rewrite.policy.retry import Failure
from rewrite.providers import Provider
from rewrite.routing.router import Route
from rewrite.upstream.client import HOP_BY_HOP, Upstream


class _DebugOnly(logging.LoggerAdapter):
    """websockets reports a peer that left during the handshake as an error with a traceback. On this internal hop
    that only means the client left while its upstream handshake was pending, which the flow already shows."""

    def log(self, level, msg, *args, **kwargs) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)

# The provider's 101 headers that describe its own connection to us rather than the client's.
_OWN_HANDSHAKE = HOP_BY_HOP | {"date", "sec-websocket-accept", "sec-websocket-extensions", "sec-websocket-protocol"}
_UNSENDABLE_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}  # codes a peer reports but no endpoint may send


class WebSocketRelay:
    def __init__(self, upstream: Upstream, setting: Setting, plugins: Sequence[Plugin]) -> None:
        self._upstream = upstream  # its egress proxy and TLS trust, as HTTP upstream calls use them
        # The engine's, its config as it is now: a plug-in sees the config it serves, as for HTTP requests.
        self._setting, self._plugins = setting, plugins
        self.jobs: dict[str, SocketJob] = {}  # by job id, until the addon is done with the flow
        self._for_client: dict[str, SocketJob] = {}  # by mitmproxy's client connection id: not connected yet
        self._for_peer: dict[tuple, SocketJob] = {}  # by the address mitmproxy connects from: not claimed yet
        self.port: int | None = None
        self._server: Server | None = None
        self._open: dict[ServerConnection, SocketJob] = {}
        self._tasks: set[asyncio.Task] = set()

    def submit(self, client: str, job_id: str, provider: Provider, headers: list[tuple[str, str]],
               target: str) -> SocketJob:
        """The job of the upgrade to `provider` pending on mitmproxy's client connection `client` (HTTP/1: one at a
        time), with the headers and target it came with."""
        job = Job(job_id, Route(provider, None), provider)
        sj = SocketJob(job, headers, target)
        self.jobs[job.id] = sj
        self._for_client[client] = sj
        return sj

    def connected(self, client: str, local: tuple) -> None:
        """mitmproxy connected to the relay for `client`, from address `local`: the job is that connection's."""
        sj = self._for_client.pop(client, None)
        if sj is not None:
            self._for_peer[tuple(local)] = sj

    def forget(self, job_id: str) -> SocketJob | None:
        sj = self.jobs.pop(job_id, None)
        _drop(self._for_client, sj)
        _drop(self._for_peer, sj)
        return sj

    def listen(self) -> int:
        """The relay's port; binds it on first use (synchronously, so it accepts before the server task runs)."""
        if self.port is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(256)
            sock.setblocking(False)
            self.port = sock.getsockname()[1]
            self._spawn(self._start(sock))
        return self.port

    async def _start(self, sock: socket.socket) -> None:
        self._server = await serve(
            self._relay,
            sock=sock,
            process_request=self._open_upstream,
            process_response=self._with_provider_headers,
            select_subprotocol=self._provider_subprotocol,
            compression=None,  # mitmproxy applies what this hop negotiates to the client's hop too: keep it plain
            server_header=None,
            open_timeout=None,  # the upstream attempts bound the handshake (first_token_timeout each)
            ping_interval=None,
            max_size=None,
            logger=_DebugOnly(logging.getLogger("rotator.ws_relay")),
        )

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.port = None

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the handshake ---------------------------------------------------------------------------------------------

    async def _open_upstream(self, conn: ServerConnection, request: Request) -> Response | None:
        sj = self._for_peer.pop(tuple(conn.remote_address or ()), None)  # claimed: used once
        if sj is None:
            return _response(421, [("content-type", "text/plain")], b"rotator: unknown job\n")
        if "Sec-WebSocket-Key" not in request.headers or request.headers.get("Sec-WebSocket-Version") != "13":
            return _response(400, [("content-type", "text/plain")], b"rotator: not a WebSocket handshake\n")
        opening = asyncio.ensure_future(open_upstream(sj, self._setting.config.streaming, self._upstream,
                                                     self._setting, self._plugins))
        left = asyncio.ensure_future(conn.wait_closed())  # the client left: stop trying keys for it
        await asyncio.wait((opening, left), return_when=asyncio.FIRST_COMPLETED)
        left.cancel()
        if not opening.done():
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            sj.job.note(Note.FAILED, "the client left while the handshake was pending")
            return _response(499, [], b"")  # never sent: the connection is gone
        failure = opening.result()
        if failure is not None:
            return _failure_response(failure)
        assert sj.upstream is not None
        self._open[conn] = sj
        self._spawn(self._close_together(conn, sj, sj.upstream))
        return None

    def _provider_subprotocol(self, conn: ServerConnection, offered):
        sj = self._open.get(conn)
        chosen = sj.upstream.subprotocol if sj is not None and sj.upstream is not None else None
        return chosen if chosen in offered else None

    def _with_provider_headers(self, conn: ServerConnection, request: Request, response: Response) -> None:
        sj = self._open.get(conn)
        if sj is None or response.status_code != 101:
            return
        for name, value in sj.response_headers:
            if name.lower() not in _OWN_HANDSHAKE:
                response.headers[name] = value

    # -- the messages ----------------------------------------------------------------------------------------------

    async def _relay(self, conn: ServerConnection) -> None:
        sj = self._open.get(conn)
        if sj is None or sj.upstream is None:
            return
        await asyncio.gather(_copy(conn, sj.upstream), _copy(sj.upstream, conn))

    async def _close_together(self, conn: ServerConnection, sj: SocketJob, upstream: ClientConnection) -> None:
        """When mitmproxy's side ends for any reason (even before its handshake completed), end the provider's and
        give its key back."""
        try:
            await conn.wait_closed()
        finally:
            self._open.pop(conn, None)
            try:
                await upstream.close()
            finally:
                await sj.release()


async def _copy(src: ServerConnection | ClientConnection, dst: ServerConnection | ClientConnection) -> None:
    try:
        async for message in src:
            await dst.send(message)
    except ConnectionClosed:
        pass
    code = src.close_code if src.close_code is not None else 1005
    await dst.close(_UNSENDABLE_CLOSE.get(code, code), src.close_reason or "")


def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    h = Headers()
    for name, value in headers:
        if name.lower() not in HOP_BY_HOP:
            h[name] = value
    h["Content-Length"] = str(len(body))
    h["Connection"] = "close"
    return Response(status, reason, h, body)


def _failure_response(failure: Failure) -> Response:
    if failure.status is not None:
        return _response(failure.status, failure.headers, failure.body)
    status = 504 if failure.kind.timeout else 502
    body = f"Rotator: the upstream WebSocket handshake failed: {failure.reason}\n".encode()
    return _response(status, [("content-type", "text/plain; charset=utf-8")], body)


def _drop[K](waiting: dict[K, SocketJob], sj: SocketJob | None) -> None:
    """Forget every entry of `waiting` that is `sj`'s."""
    for k in [k for k, v in waiting.items() if v is sj]:
        del waiting[k]
