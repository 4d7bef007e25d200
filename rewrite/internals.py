"""Every access Rotator makes to private attributes of asyncio, mitmproxy and httpx, and nothing else: a new one
goes here too (tests/test_private_access.py scans addons/ and rewrite/ for any outside this module).

What they buy, measured with `scripts/bench --quick --no-litellm` on mitmproxy 12.3.1 (2 cores shared with other
work, so rough: compare the ratios to bare mitmdump, measured in the same run):
- mitmproxy's connection handler, for the in-memory hand-off (addons/handoff.py: `install_open_connection`,
  `opening_connection`, `direct_reads`): proxy CPU per sequential stream 1.29× bare mitmdump's in memory against
  1.49× over loopback TCP (`--set rotator_in_memory=false`), per paced streamed event 1.00× against 1.67× (5
  streams) and 1.21× against 1.38× (10 streams); non-stream calls about the same either way. Checked against the
  source of mitmproxy 12.2.3 and 12.3.1 (`mitmproxy/proxy/server.py` is the same in both); at start-up
  `internals_mismatch` checks the installed mitmproxy's code (not its version number), and the hand-off stays off,
  with a warning, where it differs.
- asyncio's StreamReader buffer and waiter (`buffered`, `take_buffered`, `arrival`, `PipeReader`, `PushingReader`,
  `PushingProtocol`): a peek StreamReader has no public way to make (is a reused connection stale; did bytes come
  before a reset), and streamed pieces handed over in the connection's data callback instead of waking a reader
  task each (the lean transport's push, rewrite/upstream/transport.py, and the in-memory pipe's sink): the largest
  single share of a streamed event's cost in Rotator's own code when it was measured (not measured apart here; the
  pipe's sink is part of the hand-off's figure above). Checked on Python 3.12's asyncio (`asyncio/streams.py`).
- httpx's table of the content decoders it has (`content_decoder`): br and zstd when their packages are installed,
  decoded as httpx would. No speed: what httpx already decodes, without a second list.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import inspect
import types
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from mitmproxy.connection import Connection
from mitmproxy.proxy import events
from mitmproxy.proxy import server as proxy_server

# -- asyncio streams


def buffered(reader: asyncio.StreamReader) -> bytearray:
    """The bytes that arrived at `reader` and that nobody has read yet (StreamReader has no public peek)."""
    return reader._buffer  # type: ignore[attr-defined]


def take_buffered(reader: asyncio.StreamReader, size: int) -> bytes:
    """Up to `size` of those bytes, taken out of the reader (after a reset: asyncio's `read` raises it at once,
    dropping what had arrived before it)."""
    held = reader._buffer  # type: ignore[attr-defined]
    data = bytes(held[:size])
    del held[:size]
    return data


def arrival(reader: asyncio.StreamReader) -> asyncio.Future:
    """A future done once bytes, the end or an error arrive at `reader` (at once if they are there). Nothing reads
    them: this is StreamReader's own wait (asyncio wakes its `_waiter` on each), without a task per request to run
    a read that is then cancelled. `end_arrival` when done with it."""
    arrived = asyncio.get_running_loop().create_future()
    inner: Any = reader
    waiting = inner._waiter is not None  # (a reader it is not ours to wait on: nothing to watch)
    if inner._buffer or getattr(reader, "held", None) or reader.at_eof() or reader.exception() is not None or waiting:
        arrived.set_result(None)
    else:
        inner._waiter = arrived  # (woken as the reader's own wait is)
    return arrived


def end_arrival(reader: asyncio.StreamReader, arrived: asyncio.Future) -> None:
    inner: Any = reader
    if inner._waiter is arrived:
        inner._waiter = None
    arrived.cancel()


HELD_FROM = 1 << 20  # bytes of one write that a PipeReader keeps as it came
PIECE_HELD_FROM = 16 << 10  # bytes of a write kept as it came after others kept so (a large body's pieces)
HELD_MOST = 16 << 20  # bytes a PipeReader keeps so at most (past them, its buffer and its writer's pause again)


class PipeReader(asyncio.StreamReader):
    """A StreamReader whose bytes can be taken by `sink` as they arrive, while its reading task is idle waiting for
    them (nothing buffered): the sink does what that task would do with them, without waking it. `sink` returns
    False when it cannot; the bytes are then buffered for the task as usual (rewrite/intake/memory_pipe.py).

    A write of HELD_FROM bytes or more (a large request body, which mitmproxy writes whole), one of PIECE_HELD_FROM
    bytes or more that finds nothing buffered (a large body's pieces, which mitmproxy writes as they arrive), and
    any write while one is held, is `held` as the object it is, after what is buffered (HELD_MOST bytes at most); a
    `read` while nothing is buffered takes the first held object when it asks for all of it, and `take_held` the
    others: the body reaches the engine by reference, not copied into the buffer and out again (2 copies of 8 MiB).
    Any other read, or the end of the stream, puts them in the buffer first, as they would have been."""

    sink: Callable[[bytes], bool] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: collections.deque[bytes] = collections.deque()
        self.held_size = 0

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]
        sink = self.sink
        inner: Any = self
        if (sink is not None and inner._waiter is not None and not inner._buffer and not self.held and not inner._eof
                and sink(data)):
            return
        size = len(data)
        if (type(data) is bytes and not inner._eof and self.held_size + size <= HELD_MOST
                and (self.held or size >= HELD_FROM or size >= PIECE_HELD_FROM and not inner._buffer)):
            self.held.append(data)
            self.held_size += size
            inner._wakeup_waiter()
            return
        self._unhold()
        super().feed_data(data)

    def _unhold(self) -> None:
        held = self.held
        while held:
            super().feed_data(held.popleft())
        self.held_size = 0

    def take_held(self, n: int, into: list[bytes]) -> int:
        """The objects held, in order, put in `into` while nothing is buffered before them and they come to at most
        `n` bytes; how many bytes they came to."""
        held, taken = self.held, 0
        if self._buffer:  # type: ignore[attr-defined]
            return 0
        while held and len(held[0]) <= n - taken:
            piece = held.popleft()
            self.held_size -= len(piece)
            taken += len(piece)
            into.append(piece)
        return taken

    async def read(self, n: int = -1) -> bytes:
        inner: Any = self
        if not self.held and n and not inner._buffer and not inner._eof and inner._exception is None:
            # Waited for here, not in StreamReader.read: woken there by a write that is held, it would read the
            # empty buffer and return b"", which every reader takes for the end of the stream (mitmproxy then
            # closes the connection with the rest of a response unread).
            await super()._wait_for_data("read")  # type: ignore[misc]
        held = self.held
        if held and not self._buffer:  # type: ignore[attr-defined]
            if n >= len(held[0]):  # (all of one, not read to the end: that is the buffer's, with all held)
                self.held_size -= len(held[0])
                return held.popleft()
            self._unhold()
        return await super().read(n)

    async def _wait_for_data(self, func_name: str) -> None:
        if self.held:
            self._unhold()
            return
        await super()._wait_for_data(func_name)  # type: ignore[misc]

    def feed_eof(self) -> None:
        self._unhold()
        super().feed_eof()

    def at_eof(self) -> bool:
        return not self.held and super().at_eof()


class Pushed(Protocol):
    """What a PushingReader hands arriving bytes to (the lean transport's body, while it pushes)."""

    def arrived(self, data: bytes) -> None: ...

    def stop_push(self, error: BaseException | None = None) -> None: ...


class PushingReader(asyncio.StreamReader):
    """A StreamReader that hands arriving bytes straight to `pushing` instead of buffering them for a reader task to
    wake up for, while nothing is buffered (bytes stay in order)."""

    pushing: Pushed | None = None

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]
        body = self.pushing
        if body is None or self._buffer:  # type: ignore[attr-defined]
            super().feed_data(data)
        else:
            body.arrived(data)

    def feed_eof(self) -> None:
        if self.pushing is not None:
            self.pushing.stop_push()
        super().feed_eof()

    def set_exception(self, exc: Exception) -> None:
        if self.pushing is not None:
            self.pushing.stop_push()
        super().set_exception(exc)


class PushingProtocol(asyncio.StreamReaderProtocol):
    """The protocol of a PushingReader, handing bytes to its body in one call less."""

    def __init__(self, reader: PushingReader, **kwargs: Any) -> None:
        super().__init__(reader, **kwargs)
        self._reader = reader  # (StreamReaderProtocol keeps it behind a property: a call per piece)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        body = reader.pushing
        if body is not None and not reader._buffer:  # type: ignore[attr-defined]
            body.arrived(data)
        else:
            reader.feed_data(data)


# -- httpx


def content_decoder(name: str) -> Any | None:
    """A new decoder of httpx's for this content-encoding (its `decode(bytes)` and `flush()`), if httpx has one."""
    decoder = httpx._decoders.SUPPORTED_DECODERS.get(name)
    return decoder() if decoder is not None else None


# -- mitmproxy's connection handler (mitmproxy/proxy/server.py)


def install_open_connection(open_connection: Callable[..., Any] | None) -> None:
    """Have mitmproxy's connection handler, and nothing else, open its server connections with `open_connection`
    in place of asyncio's (None: asyncio's again): the handler's module sees a copy of the asyncio module."""
    if open_connection is None:
        proxy_server.asyncio = asyncio
        return
    shim = types.ModuleType("asyncio")
    shim.__dict__.update(asyncio.__dict__)
    shim.open_connection = open_connection  # type: ignore[attr-defined]
    proxy_server.asyncio = shim


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


def opening_connection() -> tuple[object, Connection | None]:
    """The connection handler and the server connection being opened, from the task that opens it (mitmproxy runs
    `ConnectionHandler.open_connection(command)` as its own task): that coroutine's frame locals."""
    task = asyncio.current_task()
    frame = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    names = frame.f_locals if frame is not None else {}
    command = names.get("command")
    return names.get("self"), getattr(command, "connection", None)


_RESPONSE_HEAD = b"HTTP/"


def direct_reads(handler, connection: Connection | None, response_end: bytes) -> Callable[[bytes], bool] | None:
    """A PipeReader sink doing what mitmproxy's reading task does with a read (`handle_connection`: the handler's
    `server_event(DataReceived)`, then draining its writers), at once, in the writer's call: one task wake-up and
    one event-loop turn less per streamed event.

    It declines (the bytes then wait for the task) whenever the task's way could differ: the handler is inside an
    event already (its lock is held: never re-entered), the connection is no longer the handler's, a writer has
    bytes waiting (the task would wait for them to drain: back-pressure stays with it); and a response's head and
    bytes ending with `response_end` (a response's end) always wait for the task. None when this mitmproxy's handler
    does not look as expected."""
    lock = getattr(handler, "_server_event_lock", None)
    transports = getattr(handler, "transports", None)
    if (connection is None or not isinstance(lock, asyncio.Lock) or not isinstance(transports, dict)
            or not hasattr(lock, "_locked")):
        return None

    def sink(data: bytes) -> bool:
        # (per streamed event: asyncio.Lock's and StreamWriter's attributes read directly, not through their methods)
        if lock._locked or lock._waiters or connection not in transports:
            return False  # (a waiter woken by the lock's release goes first: acquiring now would suspend)
        if data.endswith(response_end):
            # The end of a response: mitmproxy runs its `response` hooks on it (eagerly, in this call), and those read
            # what the engine records about the flow just after writing it; they run when the task reads it.
            return False
        if data.startswith(_RESPONSE_HEAD):
            # A response's head: mitmproxy builds the flow's Response from it, whose type checks raise and keep
            # TypeErrors (mitmproxy/utils/typecheck.py). A kept traceback keeps every frame of the stack it was
            # raised under, with their locals: in the writer's call, the engine's whole request (~300 objects, its
            # parsed body's too) would wait for the garbage collector instead of being freed when it ends.
            return False
        for io in transports.values():
            writer = io.writer
            if writer is not None:
                transport = writer._transport if type(writer) is asyncio.StreamWriter else getattr(  # type: ignore
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
