"""The connection a worker's scripts (the pick, rests, renewals, the batched usage write) and a capped key's release
share: commands pipelined on one socket, replies read in order by hiredis, Redis's own parser. The pick, once
connected, is written at once from a prepared call and its reply handed to a callback (`submit`, `Prepared`).

Why not redis-py's client for these: its pooled path (checkout, nested timeouts, its parser layers) cost about
three times the CPU of the call itself, which was most of what a shared pick added to a request
(docs/benchmark-history.md, "Where a Redis pick's time goes"). The once-a-second reads (rests, usage) and the
fingerprints' secret still go through redis-py.

No retries and no reconnect loop: a call that fails or times out raises (the breaker decides what then) and drops
the connection, so that a reply late from a frozen server is never taken for another call's; the next call
connects again.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

SILENT = 0.1  # of the timeout: a call without a reply this long means Redis has likely stopped answering (`silent`)

# (hiredis's stub types its argument as a one-item tuple: any number of arguments is what it takes)
_pack = cast(Callable[[tuple], bytes], hiredis.pack_command)


class _Replies(asyncio.BufferedProtocol):
    # Read into one buffer of its own: asyncio's plain Protocol reads into a fresh 256 KiB bytes object each time,
    # which glibc maps and unmaps (measured: half the CPU of a round trip on this machine kind).
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.buffer = memoryview(bytearray(1 << 16))
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future | Callable[[Any], None]] = collections.deque()
        self.deadlines: collections.deque[float] = collections.deque()  # each waiting call's
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._watch: asyncio.TimerHandle | None = None
        self._held: list[bytes] = []  # commands written with the next write, or at the end of this loop turn
        # The oldest call under way had no reply SILENT of the timeout after it was sent: seen by the watch, which
        # runs after the loop has read what came (a loop too busy to read is not taken for a silent Redis).
        self.silent = False
        self._listening = False  # the watch is armed for when the oldest call turns silent (`_listen`)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def expect(self, packed: bytes) -> asyncio.Future:
        """Send one command; its reply's future, failed with TimeoutError (and the connection with it) when the
        reply is not there within the timeout. One timer watches every call under way (a timer per call, as
        asyncio.wait_for makes, was a tenth of a pick's CPU)."""
        waiter = self._loop.create_future()
        self.send(packed, waiter)
        return waiter

    def expect_all(self, packed: bytes, count: int) -> list[asyncio.Future]:
        """`expect` for `count` commands packed together, written with whatever else is sent in this turn of the
        event loop (the once-a-second reads of every pool: one write, not one each)."""
        waiters = [self._loop.create_future() for _ in range(count)]
        self.send(packed, *waiters, hold=True)
        return waiters

    def send(self, packed: bytes, *waiters: asyncio.Future | Callable[[Any], None], hold: bool = False) -> None:
        """Send the commands in `packed`: each one's reply (or the error that ended it) goes to its waiter, a future
        or a function. Written now (after any held before it: the replies come in the order they were sent), or
        with `hold`, at the end of this turn of the event loop."""
        if self.transport is None:
            raise RedisConnectionError("not connected to Redis")
        deadline = self._loop.time() + self.timeout
        for waiter in waiters:
            self.waiting.append(waiter)
            self.deadlines.append(deadline)
        if hold:
            if not self._held:
                self._loop.call_soon(self._write_held)
            self._held.append(packed)
        elif self._held:
            self._held.append(packed)
            self._write_held()
        else:
            self.transport.write(packed)
        if self._watch is None:
            self._watch = self._loop.call_at(self.deadlines[0], self._check)
        elif not hold and len(self.waiting) > len(waiters):
            self._listen()

    def _listen(self) -> None:
        """A call sent while an earlier one waits: the watch looks when the oldest turns silent, if it is not silent
        yet (only then: a lone call's watch stays armed at its deadline, not armed again for each)."""
        if self.silent or self._listening or self._watch is None:
            return
        self._watch.cancel()
        self._listening = True
        self._watch = self._loop.call_at(self.deadlines[0] - (1 - SILENT) * self.timeout, self._check)

    def _write_held(self) -> None:
        held, self._held = self._held, []
        if held and self.transport is not None:
            self.transport.write(b"".join(held))

    def unwatch(self) -> None:
        """No timer left to fire while no call is under way (a pick keeps the one there: arming a timer for each
        would cost every request more than the one wake-up it saves)."""
        if not self.waiting and self._watch is not None:
            self._watch.cancel()
            self._watch, self._listening = None, False

    def _check(self) -> None:
        self._watch, listened, self._listening = None, self._listening, False
        if not self.deadlines:
            return
        now = self._loop.time()
        if self.deadlines[0] <= now:
            self.fail(TimeoutError(f"no reply from Redis within {self.timeout:g} s"))
            return
        self.silent = self.silent or (listened and self.deadlines[0] - (1 - SILENT) * self.timeout <= now)
        self._watch = self._loop.call_at(self.deadlines[0], self._check)
        if len(self.waiting) > 1:
            self._listen()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.reader.feed(self.buffer, 0, nbytes)  # type: ignore[arg-type]  # (any buffer will do; its stub: bytes)
        while (reply := self.reader.gets()) is not False:
            if not self.waiting:  # (a reply nobody asked for: the stream can no longer be trusted)
                self.fail(RedisConnectionError("an unexpected reply from Redis"))
                return
            waiter = self.waiting.popleft()
            self.deadlines.popleft()
            self.silent = False
            if not isinstance(waiter, asyncio.Future):
                waiter(reply)
            elif not waiter.done():  # (a caller that gave up: its reply is read and dropped)
                waiter.set_result(reply)
        if self._listening and not self.waiting:  # (the silence it listened for did not come)
            self.unwatch()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Redis closed the connection ({exc or 'EOF'})"))

    def fail(self, error: Exception) -> None:
        self._held = []
        self.silent = False
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch, self._listening = None, False
        self.deadlines.clear()
        while self.waiting:
            waiter = self.waiting.popleft()
            if not isinstance(waiter, asyncio.Future):
                waiter(error)
            elif not waiter.done():
                waiter.set_exception(error)
                # Marked as seen: a caller still awaiting it gets the error all the same, and a call whose caller
                # is gone (never awaited, or behind a set-up call that failed first) leaves no "never retrieved" log.
                waiter.exception()


class Pipe:
    """`await pipe.call("ZREM", key, member)`, `await pipe.script(body, keys, args)`: one round trip each, any number
    under way at once."""

    def __init__(self, url: str, timeout: float, preload: tuple[str, ...] = ()) -> None:
        options: dict[str, Any] = dict(parse_url(url))
        self.preload = preload  # scripts loaded on each connection: a call sent at once is then never NOSCRIPT
        self.host, self.port = options.get("host", "localhost"), int(options.get("port", 6379))
        self.path: str | None = options.get("path")  # (a unix:// URL: Redis's Unix socket)
        self.timeout = timeout
        self.hello = _hello(options)
        self.ssl = _ssl_context(options) if options.get("connection_class") is SSLConnection else None
        self._replies: _Replies | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future | None = None
        self._shas: dict[str, str] = {}

    async def call(self, *args: str | int | float | bytes) -> Any:
        replies = self._up() or await self._connect()
        return _reply(await replies.expect(_pack(args)))

    def send(self, *args: str | int | float | bytes) -> Coroutine[Any, Any, Any]:
        """`call`, with the command written before this returns when the connection is up: it reaches Redis before
        anything sent after it (then awaited or not)."""
        replies = self._up()
        return self.call(*args) if replies is None else _replied(replies.expect(_pack(args)))

    def send_all(self, commands: Sequence[tuple[str | int | float | bytes, ...]]) -> list[Coroutine[Any, Any, Any]]:
        """`send` for several commands, written together (with any others sent in this turn of the event loop)
        when the connection is up."""
        replies = self._up()
        if replies is None:
            return [self.call(*command) for command in commands]
        waiters = replies.expect_all(b"".join([_pack(command) for command in commands]), len(commands))
        return [_replied(waiter) for waiter in waiters]

    def submit(self, on_reply: Callable[[Any], None], command: bytes) -> bool:
        """Write the packed command now, and call `on_reply` with its reply (a hiredis.ReplyError for an error
        reply) or the exception that ended the call, without a coroutine or a future in between; False (nothing
        written) when the connection is not up: `call` connects."""
        replies = self._up()
        if replies is None:
            return False
        replies.send(command, on_reply)
        return True

    def sha(self, body: str) -> str:
        sha = self._shas.get(body)
        if sha is None:
            sha = self._shas[body] = hashlib.sha1(body.encode()).hexdigest()
        return sha

    def prepare(self, body: str, keys: list[str], fixed: list[str | int | float]) -> Prepared:
        return Prepared(body, keys, fixed, self.sha(body))

    def connected(self) -> bool:
        return self._up() is not None

    def idle(self) -> None:
        """The worker is about to sleep: the reply watch, with nothing left to watch, would wake it for nothing (a
        wake-up after a long sleep costs a process far more CPU than the watch's own work)."""
        if self._replies is not None:
            self._replies.unwatch()

    def _up(self) -> _Replies | None:
        """The connection, when it is open and on this event loop."""
        replies = self._replies
        if replies is None or replies.transport is None or self._loop is not asyncio.get_running_loop():
            return None
        return replies

    async def script(self, body: str, keys: list[str], args: list[str | int | float]) -> Any:
        """EVALSHA, or EVAL when the server does not know the script (a restarted Redis): it keeps it then."""
        try:
            return await self.call("EVALSHA", self.sha(body), len(keys), *keys, *args)
        except ResponseError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        return await self.call("EVAL", body, len(keys), *keys, *args)

    def drop(self) -> None:
        """Forget the connection (after a call timed out: its reply may still come, and must not be taken for the
        next call's)."""
        if self._replies is not None:
            self._replies.fail(RedisConnectionError("dropped after a call that timed out"))
            self._replies = None

    async def _connect(self) -> _Replies:
        """One connection for every caller that needs it now (they wait for the same one)."""
        loop = asyncio.get_running_loop()
        if self._connecting is None or self._connecting.get_loop() is not loop:
            self.drop()
            self._loop = loop
            self._connecting = loop.create_task(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, task: asyncio.Future) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:  # (an error: each waiting caller has raised it)
            self._replies = task.result()

    async def _open(self) -> _Replies:
        loop = asyncio.get_running_loop()
        def made() -> _Replies:
            return _Replies(self.timeout)

        opening = (loop.create_unix_connection(made, self.path) if self.path is not None else
                   loop.create_connection(made, self.host, self.port, ssl=self.ssl,
                                          server_hostname=self.host if self.ssl else None))
        _, replies = await asyncio.wait_for(opening, self.timeout)
        try:
            for command in self.hello:
                _reply(await replies.expect(_pack(command)))
            for loaded in [replies.expect(_pack(("SCRIPT", "LOAD", body))) for body in self.preload]:
                _reply(await loaded)
        except BaseException as e:
            replies.fail(RedisConnectionError(f"Redis refused the connection's set-up ({type(e).__name__})"))
            raise
        return replies


def silent(pipe: Pipe) -> bool:
    """The oldest call under way on `pipe` has had no reply for SILENT of the timeout (a round trip takes a few
    hundred microseconds; this is some 25 ms), told by its reply watch: Redis has likely stopped answering."""
    replies = pipe._replies
    return replies is not None and replies.silent


class Prepared:
    """A script call whose keys and leading arguments are the same each time, packed once: a call sends only its
    own arguments' packing (run once a request, in a process whose caches the request's other work has filled,
    packing all ~25 arguments cost about 15 us of CPU)."""

    def __init__(self, body: str, keys: list[str], fixed: list[str | int | float], sha: str) -> None:
        self.body, self.keys, self.fixed = body, keys, fixed
        head = _pack(("EVALSHA", sha, len(keys), *keys, *fixed))
        self._count = 3 + len(keys) + len(fixed)
        self._head = head[head.index(b"\r\n") + 2:]  # (without the "*<count>" line: the count is the whole call's)
        self._heads: dict[int, bytes] = {}  # by the number of a call's own arguments: the head with its count

    def command(self, rest: Sequence[str | int | float]) -> bytes:
        """EVALSHA with the fixed arguments, then `rest`. A pick's are a few strings, written here with the string
        formatting the rest of a request keeps warm (hiredis's packing runs libc's sprintf, cold each time)."""
        head = self._heads.get(len(rest))
        if head is None:
            head = self._heads[len(rest)] = b"*%d\r\n%b" % (self._count + len(rest), self._head)
        try:  # (`str.__len__`: a number or bytes raises here, and goes to hiredis's packing)
            text = "".join([f"${str.__len__(arg)}\r\n{arg}\r\n" for arg in rest])  # type: ignore[arg-type]
        except TypeError:
            text = None
        if text is not None and len(packed := text.encode()) == len(text):  # (ASCII: each length counted its bytes)
            return head + packed
        packed = _pack(tuple(rest))
        return head + packed[packed.index(b"\r\n") + 2:]

    def args(self, rest: Sequence[str | int | float]) -> list[str | int | float]:
        return [*self.fixed, *rest]


def _reply(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        raise ResponseError(str(reply))
    return reply


async def _replied(waiter: asyncio.Future) -> Any:
    return _reply(await waiter)


def _hello(options: dict) -> list[tuple]:
    """AUTH and SELECT, as the URL asks."""
    commands: list[tuple] = []
    if options.get("password") is not None:
        user = options.get("username")
        commands.append(("AUTH", user, options["password"]) if user else ("AUTH", options["password"]))
    if int(options.get("db") or 0):
        commands.append(("SELECT", int(options["db"])))
    return commands


def _ssl_context(options: dict) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", str(int(ssl.CERT_NONE))):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
