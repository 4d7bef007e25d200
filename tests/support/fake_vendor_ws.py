"""The fake vendor's WebSocket side: the Responses API over WebSocket (and any other path), scriptable per key.

    ws_vendor = FakeWebSocketVendor().start()      # background thread with its own event loop, 127.0.0.1
    ws_vendor.script(WsFault.stall(5), key="sk-pool-1")                 # that key's next handshake stalls 5 s
    ws_vendor.always(WsFault.status(429, headers={"retry-after": "0"}), key="sk-pool-1")
    ws_vendor.handshakes, ws_vendor.keys(), ws_vendor.wait_for(2)
    base = ws_vendor.with_http(fake_vendor.port)   # one address for upgrades (here) and HTTP (the fake vendor)

Which fault a handshake gets: the queue scripted for its credential, else the rule for it, else the shared queue,
else `WsFault.ok()`. An accepted socket answers each `response.create` message with the Responses stream events
as text frames (the same JSON objects the HTTP fake vendor sends as SSE `data:`), and echoes anything else back
as `{"echo": <message as JSON, or as text>}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.support.egress_proxy import splice
from tests.support.fake_vendor import Ctx, Fault, credential_of, responses_events

_QUIET = logging.getLogger("fake_vendor_ws")
_QUIET.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class WsFault:
    """How one handshake is answered. The default accepts it."""

    stall_seconds: float = 0.0
    status_code: int | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def ok(cls) -> WsFault:
        return cls()

    @classmethod
    def stall(cls, seconds: float) -> WsFault:
        """Say nothing for `seconds` after the upgrade request, then accept it (if the client is still there)."""
        return cls(stall_seconds=seconds)

    @classmethod
    def status(cls, code: int, headers: dict[str, str] | None = None) -> WsFault:
        """Refuse the upgrade with this status and an OpenAI-shaped error body."""
        return cls(status_code=code, headers=tuple((headers or {}).items()))


@dataclass
class Handshake:
    """One upgrade request as the vendor received it, and what became of it."""

    index: int
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    credential: str | None
    fault: WsFault
    received_at: float
    status: int | None = None  # 101, or the refusal's status
    outcome: str | None = None  # accepted, refused, client-gone, closed
    messages: list[str | bytes] = field(default_factory=list)  # what the client sent on the socket
    done: threading.Event = field(default_factory=threading.Event, repr=False)  # answered (or abandoned)


class FakeWebSocketVendor:
    def __init__(self) -> None:
        self.port = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._handshakes: list[Handshake] = []
        self._queue: list[WsFault] = []
        self._key_queues: dict[str, list[WsFault]] = {}
        self._key_rules: dict[str, WsFault] = {}
        self._by_conn: dict[ServerConnection, Handshake] = {}
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._fronts: list[asyncio.Server] = []

    # --- scripting and records (thread-safe)

    def script(self, *faults: WsFault, key: str | None = None) -> FakeWebSocketVendor:
        with self._lock:
            (self._key_queues.setdefault(key, []) if key is not None else self._queue).extend(faults)
        return self

    def always(self, fault: WsFault | None, key: str) -> FakeWebSocketVendor:
        with self._lock:
            if fault is None:
                self._key_rules.pop(key, None)
            else:
                self._key_rules[key] = fault
        return self

    def reset(self) -> None:
        with self._lock:
            self._handshakes.clear()
            self._queue.clear()
            self._key_queues.clear()
            self._key_rules.clear()

    @property
    def handshakes(self) -> list[Handshake]:
        with self._lock:
            return list(self._handshakes)

    def keys(self) -> list[str | None]:
        return [h.credential for h in self.handshakes]

    def wait_for(self, n: int, timeout: float = 10.0, done: bool = True) -> list[Handshake]:
        """Wait until at least `n` handshakes arrived (and, with `done`, were answered or abandoned)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                got = list(self._handshakes)
                if len(got) >= n and (not done or all(h.done.is_set() for h in got[:n])):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(h.path, h.credential, h.status, h.outcome) for h in got]
                    raise TimeoutError(f"fake WebSocket vendor: wanted {n} handshakes in {timeout}s; got {seen}")
                self._changed.wait(min(left, 0.05))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def with_http(self, http_port: int) -> str:
        """The URL of a front on 127.0.0.1 that passes each upgrade to this vendor and any other request to the HTTP
        fake vendor on `http_port`: one base_url for a provider's WebSockets and HTTP requests, as a real one has."""

        async def split(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                upgrade = b"\r\nupgrade: websocket\r\n" in head.lower()
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port if upgrade else http_port)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                writer.close()
                return
            up_writer.write(head)
            await splice(reader, writer, up_reader, up_writer)

        async def serve() -> asyncio.Server:
            return await asyncio.start_server(split, "127.0.0.1", 0)

        front = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        self._fronts.append(front)
        return f"http://127.0.0.1:{front.sockets[0].getsockname()[1]}"

    # --- lifecycle

    def start(self) -> FakeWebSocketVendor:
        threading.Thread(target=self._loop.run_forever, name="fake-vendor-ws", daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):  # (a connection still open is closed by the server; best effort)
                asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _close(self) -> None:
        for front in self._fronts:
            front.close()
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self) -> None:
        self._server = await serve(
            self._session, "127.0.0.1", 0, process_request=self._handshake, open_timeout=None, ping_interval=None,
            logger=_QUIET,  # a client that leaves during a stalled handshake is expected here, not an error
        )
        self.port = self._server.sockets[0].getsockname()[1]

    # --- the server side

    def _pick(self, credential: str | None) -> WsFault:
        with self._lock:
            if credential is not None:
                if self._key_queues.get(credential):
                    return self._key_queues[credential].pop(0)
                if credential in self._key_rules:
                    return self._key_rules[credential]
            return self._queue.pop(0) if self._queue else WsFault()

    def _finish(self, hs: Handshake, status: int | None, outcome: str) -> None:
        hs.status, hs.outcome = status, outcome
        hs.done.set()
        with self._changed:
            self._changed.notify_all()

    async def _handshake(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        credential, _ = credential_of(headers, dict(parse_qsl(query)))
        fault = self._pick(credential)
        with self._lock:
            hs = Handshake(len(self._handshakes), path, query, headers, credential, fault, time.time())
            self._handshakes.append(hs)
            self._changed.notify_all()
        deadline = time.monotonic() + fault.stall_seconds
        while time.monotonic() < deadline:
            if conn.transport.is_closing():
                self._finish(hs, None, "client-gone")
                return None
            await asyncio.sleep(0.02)  # stays: a handshake that stalls for real, watching for the client leaving
        if fault.status_code is not None:
            body = json.dumps({"error": {"message": f"fake WebSocket refusal {fault.status_code}",
                                         "type": "fake_error", "param": None, "code": None}}).encode()
            h = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                         ("x-fake-vendor-handshake", str(hs.index)), *fault.headers])
            self._finish(hs, fault.status_code, "refused")
            return Response(fault.status_code, "Refused", h, body)
        self._by_conn[conn] = hs
        self._finish(hs, 101, "accepted")
        return None

    async def _session(self, conn: ServerConnection) -> None:
        hs = self._by_conn.pop(conn)
        try:
            async for message in conn:
                hs.messages.append(message)
                await self._answer(conn, hs, message)
        except ConnectionClosed:
            pass
        hs.outcome = "closed"

    async def _answer(self, conn: ServerConnection, hs: Handshake, message: str | bytes) -> None:
        try:
            body = json.loads(message)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("type") == "response.create":
            request = {k: v for k, v in body.items() if k != "type"}
            ctx = Ctx(hs.index, request.get("model") or "fake-model", int(time.time()), request, Fault())
            for ev in responses_events(ctx):
                await conn.send(json.dumps(ev.payload))
            return
        if body is None and isinstance(message, bytes):
            await conn.send(message)
            return
        await conn.send(json.dumps({"echo": body if body is not None else message}))
