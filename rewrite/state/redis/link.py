"""One process's link to Redis (`RedisLink`): the client, the pipe the per-request calls go on, the breaker that
bounds each call's time and stops calling while Redis does not answer, the fingerprints' secret, and the writes it
does in the background. Every part of the shared state talks to Redis through it (rewrite/state/redis/shared.py's
`SharedState` is one, which also makes and flushes each pool's shared decisions).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

import hiredis
import redis.asyncio
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from rewrite.state.redis.connection import ERRORS, START_SECONDS, TIMEOUT, Breaker, Unavailable, timed_out
from rewrite.state.redis.feed import Feed
from rewrite.state.redis.names import SECRET
from rewrite.state.redis.pipe import Pipe, Prepared, silent

LEASE_SECONDS = 30.0  # a lease not renewed this long (its worker died mid-stream) frees its key's slot
RETRY_AFTER = 0.1  # seconds between a starting worker's attempts at its first contact (`reach`)
_FAILED = (BaseException, hiredis.ReplyError)  # what the pipe hands a call that did not work
T = TypeVar("T")


class Renewable(Protocol):
    """A lease renewed while its attempt lives (rewrite/state/redis/leases.py's `SharedLease`)."""

    async def renew(self) -> None: ...


class Renewer:
    """Every third of the lease time, while any lease of the process is held: renew them. (It looks first after
    that time: a lease given back at once does not end it, to be started again by the next.)"""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self.held: dict[Renewable, None] = {}  # the leases of attempts under way
        self._task: asyncio.Task | None = None

    def hold(self, lease: Renewable) -> None:
        self.held[lease] = None
        if self._task is None:
            self._task = asyncio.ensure_future(self._renew_held())

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _renew_held(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                if not self.held:
                    return
                for lease in list(self.held):
                    with contextlib.suppress(Unavailable):
                        await lease.renew()
        finally:
            self._task = None


class RedisLink:
    def __init__(self, client: redis.asyncio.Redis, breaker: Breaker | None = None,
                 lease_seconds: float = LEASE_SECONDS, timeout: float = 1.2 * TIMEOUT, pipe: Pipe | None = None
                 ) -> None:
        self.client = client
        self.pipe = pipe  # (the per-request calls' connection; without one, they go through `client` too)
        self.url: str | None = None  # (from_url): where close_sync writes the last counts
        self.timeout = timeout  # what one decision may spend on Redis, waiting for a connection included
        self.breaker = breaker or Breaker()
        self.lease_seconds = lease_seconds
        self.scripts: dict[str, AsyncScript] = {}  # (by body: for calls that go through `client`)
        self._secret: bytes | None = None
        self.tasks: set[asyncio.Task] = set()  # the background writes under way
        self.renewer = Renewer(lease_seconds)  # the leases of attempts under way, renewed
        self.feed: Feed | None = None  # (from_url): the conversation store's writes, heard from every worker
        self.started = False  # `start` ran from an event loop: what the requests add is written in the background
        self.reaching: asyncio.Task | None = None  # the first contact, under way (`reach`): calls wait for it

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()`'s result; Unavailable when the breaker is open or the call fails (which opens it)."""
        return await self._admitted(lambda: asyncio.wait_for(fn(), self.timeout))

    async def _admitted(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work()` (started only then) once the first contact is over, as `call`: every call's way to Redis."""
        if self.reaching is not None:
            await asyncio.wait((self.reaching,))
        breaker = self.breaker
        if _unanswered(self.pipe) or not breaker.admit():
            raise Unavailable
        return await _decided(breaker, work(), probe=breaker.probing)

    async def script(self, body: str, keys: list[str], args: list[str | int | float]) -> Any:
        """One of rewrite/state/redis/scripts.py's scripts, as `call` (on the pipe when there is one: it bounds
        each call's time itself)."""
        pipe = self.pipe
        if pipe is None:
            script = self.scripts.get(body) or self.scripts.setdefault(body, self.client.register_script(body))
            return await self.call(lambda: script(keys, args))
        return await self._admitted(lambda: pipe.script(body, keys, args))

    async def read(self, *commands: tuple[str | int | float, ...]) -> list[Any]:
        """The replies to `commands`, sent together, as `call`: the once-a-second reads of what the other workers
        did. On the pipe when there is one (written together at once, the replies read by hiredis: through
        redis-py's pipeline these reads cost a worker with three pools 7 ms of CPU a second doing nothing); a bulk
        string comes back as bytes, pairs in either shape (`pairs` reads both)."""
        pipe = self.pipe
        if pipe is None:
            async def through_client() -> list[Any]:
                batch = self.client.pipeline(transaction=False)
                for command in commands:
                    batch.execute_command(*command)
                return await batch.execute()

            return await self.call(through_client)
        return await self._admitted(lambda: _all_of(pipe.send_all(commands)))

    def ready(self) -> bool:
        """`script_soon` can send now: the pipe is connected and the breaker closed."""
        return self.pipe is not None and not self.breaker.open and self.pipe.connected()

    def script_soon(self, call: Prepared, rest: Sequence[str | int | float], then: Callable[[Any], T],
                    otherwise: Callable[[], T], unwanted: Callable[[Any], object] | None = None
                    ) -> asyncio.Future[T]:
        """A prepared script call with `rest` for its last arguments, written to the pipe now (when `ready`), its
        reply handed to `then` as it is read: the future's result is `then(reply)`, or `otherwise()` where `script`
        would raise Unavailable; the reply to a caller that gave up (the future cancelled) goes to `unwanted`. No
        coroutine or task stands between the reply and the caller (they were a fifth of a pick's CPU)."""
        soon = _Soon(self, call, rest, then, otherwise, unwanted)
        pipe = self.pipe
        if (pipe is None or not pipe.connected() or silent(pipe) or not self.breaker.admit()
                or not pipe.submit(soon, call.command(rest))):
            soon.settle(otherwise)
        return soon.out

    async def secret(self) -> bytes:
        """The fingerprints' secret every worker uses: made by the first one (SET NX), read by the others."""
        return self._secret if self._secret is not None else await self.call(self._fetch_secret)

    async def _fetch_secret(self) -> bytes:
        if self._secret is None:
            await self.client.set(SECRET, os.urandom(32).hex(), nx=True)
            value = await self.client.get(SECRET)
            self._secret = bytes.fromhex(value.decode() if isinstance(value, bytes) else str(value))
        return self._secret

    def reach(self, seconds: float = START_SECONDS) -> None:
        """Make the first contact now, in the background (from an event loop): the secret, and the pipe connected
        with its scripts loaded, so that the first request's decision finds them. Calls made meanwhile wait for it."""
        if self.reaching is None and self._secret is None:
            self.reaching = asyncio.ensure_future(self._reach(seconds))
            self.reaching.add_done_callback(self._reached)

    async def _reach(self, seconds: float) -> None:
        # A worker still starting keeps its event loop busy (its first handshakes, modules loaded on first use), so
        # that a reply which came in time can be read after the call's short timeout: not an outage. A first
        # contact that timed out is tried again for `seconds` before the breaker hears of it (decisions then go
        # local for a while); a refused one is an outage at once.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            try:
                await asyncio.wait_for(self._fetch_secret(), self.timeout)
                if self.pipe is not None:
                    await self.pipe.call("PING")
                return
            except ERRORS as e:
                if not timed_out(e) or loop.time() + RETRY_AFTER >= deadline:
                    self.breaker.failed(e)
                    return
            await asyncio.sleep(RETRY_AFTER)

    def _reached(self, _: asyncio.Task) -> None:
        self.reaching = None

    def zrem(self, key: str, member: str) -> Awaitable[Any]:
        """On the pipe, written before this returns (when connected)."""
        if self.pipe is not None:
            return self.pipe.send("ZREM", key, member)
        return self.client.zrem(key, member)

    def background(self, work: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.start()
        return task

    def start(self) -> None:
        """Listen to the conversation store's feed (once there is an event loop)."""
        if self.feed is not None:
            self.feed.start()


def _unanswered(pipe: Pipe | None) -> bool:
    """A call on the pipe has waited far longer than Redis takes to answer (pipe.py's `silent`): Redis may have just
    frozen, and the calls under way will find out when the first times out. Until then, a new call is not sent to
    wait beside them: its decision is made locally at once (the breaker is left to the calls under way)."""
    return pipe is not None and silent(pipe)


async def _decided[R](breaker: Breaker, work: Awaitable[R], probe: bool = False) -> R:
    """`work`'s result, the breaker told how it went; Unavailable when it failed. A `probe` (the call that tries
    Redis again after an outage) cancelled leaves the next call to try."""
    try:
        result = await work
    except ERRORS as e:  # (a call on the pipe that timed out has dropped its connection already)
        breaker.failed(e)
        raise Unavailable from None
    except BaseException:
        if probe:
            breaker.abandoned()
        raise
    breaker.worked()
    return result


async def _all_of(sent: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    try:
        return [await reply for reply in sent]
    finally:
        for reply in sent:  # (those never awaited: the connection failed before them)
            reply.close()


def pairs(reply: Any) -> list[tuple[Any, Any]]:
    """A reply of pairs (a hash's fields, a sorted set's members with scores) as (name, value) pairs, whichever
    shape it came in: the flat list Redis sent (the pipe), a dict or a list of pairs (redis-py's client)."""
    if isinstance(reply, dict):
        return list(reply.items())
    if reply and isinstance(reply[0], list | tuple):
        return [(name, value) for name, value in reply]
    return list(zip(reply[::2], reply[1::2]))


class _Soon:
    """One call of `RedisLink.script_soon` under way: its reply settles `out` (one object, not a closure each)."""

    __slots__ = ("call", "link", "otherwise", "out", "rest", "then", "unwanted")

    def __init__(self, link: RedisLink, call: Prepared, rest: Sequence[str | int | float], then: Callable[[Any], Any],
                 otherwise: Callable[[], Any], unwanted: Callable[[Any], object] | None = None) -> None:
        self.link, self.call, self.rest, self.then, self.otherwise = link, call, rest, then, otherwise
        self.unwanted = unwanted
        self.out: asyncio.Future = asyncio.get_running_loop().create_future()

    def __call__(self, reply: Any) -> None:
        """The pipe's reply (a hiredis.ReplyError for an error reply), or the exception that ended the call."""
        if not isinstance(reply, _FAILED):
            self.link.breaker.worked()
            self._answered(reply)
        elif isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT") and self.link.pipe:
            # (a restarted Redis: `script` sends the script itself)
            call = self.call
            resend = _decided(self.link.breaker, self.link.pipe.script(call.body, call.keys, call.args(self.rest)))
            asyncio.ensure_future(resend).add_done_callback(self._resent)
        else:
            self.link.breaker.failed(reply if isinstance(reply, BaseException) else ResponseError(str(reply)))
            self.settle(self.otherwise)

    def _answered(self, reply: Any) -> None:
        if not self.out.done():
            self.out.set_result(self.then(reply))
        elif self.unwanted is not None:  # (a caller that gave up: what the call took is given back)
            self.unwanted(reply)

    def settle(self, result: Callable[[], Any]) -> None:
        if not self.out.done():  # (a caller that gave up)
            self.out.set_result(result())

    def _resent(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            self.settle(self.otherwise)
        else:
            self._answered(task.result())
