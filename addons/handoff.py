"""Hands intercepted flows to the engine in memory rather than over loopback TCP.

mitmproxy streams a response only from a server connection, so Interception points each intercepted flow at
Rotator's loopback server. mitmproxy opens server connections with `asyncio.open_connection`; while this addon
runs, a connection to one of the loopback server's own ports is made in memory instead
(rewrite/intake/memory_pipe.py): the same HTTP/1.1 conversation, without the kernel's send, receive and poll for every
streamed event. Every other connection is opened as before.

The bytes the engine writes also skip the wake-up of mitmproxy's reading task: while that task is idle, they go
straight to its connection handler, as the task would hand them on (`direct_reads`).

Both rely on mitmproxy's internals, checked against the source of mitmproxy 12.2.3 and 12.3.1 (its connection
handler, `mitmproxy/proxy/server.py`, is the same in both). At start-up `internals_mismatch` checks the installed
mitmproxy for each of them (the code itself, not its version number); if one differs, the hand-off stays off and
Rotator uses loopback TCP, as with `rotator_in_memory=false`, after a one-line warning.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import types
from collections.abc import Callable

from mitmproxy import ctx, version
from mitmproxy.connection import Connection
from mitmproxy.proxy import events
from mitmproxy.proxy import server as proxy_server

from rewrite.engine import Engine
from rewrite.intake.loopback import LAST_CHUNK

logger = logging.getLogger(__name__)


class Handoff:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._installed = False

    def load(self, loader) -> None:
        loader.add_option(
            "rotator_in_memory", bool, True,
            "Hand intercepted LLM calls from mitmproxy to Rotator's engine in memory. Off: over a loopback TCP "
            "connection (slower; for comparing or debugging).",
        )

    def configure(self, updated: set[str]) -> None:
        if "rotator_in_memory" in updated:
            self._install() if ctx.options.rotator_in_memory else self._uninstall()

    def done(self) -> None:
        self._uninstall()

    def _install(self) -> None:
        if self._installed:
            return
        if differs := internals_mismatch():
            logger.warning("rotator: in-memory hand-off off: mitmproxy %s differs from what it uses (%s); using "
                           "loopback TCP", version.VERSION, differs)
            return
        server = self.engine.server
        opening = asyncio.open_connection

        async def open_connection(host=None, port=None, **kwargs):
            if host == "127.0.0.1" and port in server.ports and not kwargs.get("local_addr"):
                # Suspend once, as a real connect does: mitmproxy may run this eagerly, and records the connection
                # as opening only after this first suspension.
                await asyncio.sleep(0)
                reader, writer = server.connect_in_memory(port)
                reader.sink = direct_reads(*_opening_connection())
                return reader, writer
            return await opening(host, port, **kwargs)

        # A copy of the asyncio module seen by mitmproxy's connection handler only: nothing else changes.
        shim = types.ModuleType("asyncio")
        shim.__dict__.update(asyncio.__dict__)
        shim.open_connection = open_connection
        proxy_server.asyncio = shim
        self._installed = True

    def _uninstall(self) -> None:
        if self._installed:
            proxy_server.asyncio = asyncio
            self._installed = False


def internals_mismatch() -> str | None:
    """The first of mitmproxy's internals the hand-off uses that the installed mitmproxy does not have as expected;
    None when it has them all."""
    handler, fields = proxy_server.ConnectionHandler, dataclasses.fields
    checks = {
        "its connection handler's module imports asyncio": lambda: proxy_server.asyncio is asyncio,
        "ConnectionHandler.open_connection(self, command) calls asyncio.open_connection": lambda: _coroutine(
            handler.open_connection, ["self", "command"], "asyncio", "open_connection", "transports"),
        "ConnectionHandler.handle_connection passes what it reads to server_event as DataReceived": lambda: _coroutine(
            handler.handle_connection, ["self", "connection"], "read", "server_event", "DataReceived"),
        "ConnectionHandler.server_event(self, event) holds _server_event_lock": lambda: _coroutine(
            handler.server_event, ["self", "event"], "_server_event_lock"),
        "ConnectionHandler sets transports and _server_event_lock": lambda: _uses(
            handler.__init__, "transports", "_server_event_lock"),
        "ConnectionIO.writer": lambda: "writer" in {f.name for f in fields(proxy_server.ConnectionIO)},
        "events.DataReceived(connection, data)": lambda: [f.name for f in fields(events.DataReceived)] == [
            "connection", "data"],
    }
    for what, holds in checks.items():
        try:
            if not holds():
                return what
        except (AttributeError, TypeError, ValueError):
            return what
    return None


def _coroutine(function, parameters: list[str], *names: str) -> bool:
    return (inspect.iscoroutinefunction(function) and list(inspect.signature(function).parameters) == parameters
            and _uses(function, *names))


def _uses(function, *names: str) -> bool:
    """Whether `function`'s code names each of `names` (a global, an attribute or a method it uses)."""
    return set(names) <= set(function.__code__.co_names)


def _opening_connection() -> tuple[object, Connection | None]:
    """The connection handler and the server connection being opened, from the task that opens it (mitmproxy runs
    `ConnectionHandler.open_connection(command)` as its own task)."""
    task = asyncio.current_task()
    frame = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    names = frame.f_locals if frame is not None else {}
    command = names.get("command")
    return names.get("self"), getattr(command, "connection", None)


def direct_reads(handler, connection: Connection | None) -> Callable[[bytes], bool] | None:
    """A PipeReader sink doing what mitmproxy's reading task does with a read (`handle_connection`: the handler's
    `server_event(DataReceived)`, then draining its writers), at once, in the writer's call: one task wake-up and
    one event-loop turn less per streamed event.

    It declines (the bytes then wait for the task) whenever the task's way could differ: the handler is inside an
    event already (its lock is held: never re-entered), the connection is no longer the handler's, or a writer has
    bytes waiting (the task would wait for them to drain: back-pressure stays with it); and the end of a response
    always waits for the task. None when this mitmproxy's handler does not look as expected."""
    lock = getattr(handler, "_server_event_lock", None)
    transports = getattr(handler, "transports", None)
    if (connection is None or not isinstance(lock, asyncio.Lock) or not isinstance(transports, dict)
            or not hasattr(lock, "_locked")):
        return None

    def sink(data: bytes) -> bool:
        # (per streamed event: asyncio.Lock's and StreamWriter's attributes read directly, not through their methods)
        # the noqa below: mitmproxy's lock: the version check at start-up
        if lock._locked or lock._waiters or connection not in transports:  # noqa: SLF001
            return False  # (a waiter woken by the lock's release goes first: acquiring now would suspend)
        if data.endswith(LAST_CHUNK):
            # The end of a response: mitmproxy runs its `response` hooks on it (eagerly, in this call), and those read
            # what the engine records about the flow just after writing it; they run when the task reads it.
            return False
        for io in transports.values():
            writer = io.writer
            if writer is not None:
                # the noqa below: the StreamWriter's transport
                transport = writer._transport if type(writer) is asyncio.StreamWriter else getattr(  # noqa: SLF001
                    writer, "transport", None)
                if transport is None or transport.get_write_buffer_size():
                    return False
        handling = handler.server_event(events.DataReceived(connection, data))
        try:
            handling.send(None)
        except StopIteration:
            return True
        handling.close()  # (cannot happen: with the lock free, server_event runs through without suspending)
        raise RuntimeError("mitmproxy's server_event suspended")

    return sink
