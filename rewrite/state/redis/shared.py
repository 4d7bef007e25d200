"""The key pools' decisions shared through Redis: one process's link to it (`SharedState`), which makes each pool's
`RedisDecisions` (rewrite/state/redis/decisions.py: one atomic pick per request, which leases the key; rests that
every worker sees; leases that expire by themselves; usage counters written in batches).

Per request: one pick and a share of one batched usage write (about once a second per pool); nothing per streamed
event. When Redis does not answer, the breaker (rewrite/state/redis/connection.py) sends decisions to each pool's own
state: rests set meanwhile are kept and replayed when Redis answers again (ZADD GT cannot shorten a rest), counts are
resent as the same batch (applied once, however often it is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import hiredis
import redis.asyncio
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from rewrite.state.redis import scripts
from rewrite.state.redis.bind_scripts import BIND, UNBIND
from rewrite.state.redis.connection import ERRORS, TIMEOUT, Breaker, Unavailable, connect, connect_sync
from rewrite.state.redis.decisions import RedisDecisions
from rewrite.state.redis.feed import WRITE, Feed
from rewrite.state.redis.leases import Renewer
from rewrite.state.redis.names import SECRET
from rewrite.state.redis.pipe import Pipe, Prepared
from rewrite.state.redis.window_scripts import WINDOW

if TYPE_CHECKING:
    from rewrite.pool.keypool import KeyPool

__all__ = ["LEASE_SECONDS", "RedisDecisions", "SharedState", "Unavailable"]

logger = logging.getLogger("rotator")

LEASE_SECONDS = 30.0  # a lease not renewed this long (its worker died mid-stream) frees its key's slot
FLUSH_INTERVAL = 1.0  # seconds between batched usage writes
# rewrite/state/redis/scripts.py's, loaded on each connection of the pipe
SCRIPTS = (*scripts.PICKS.values(), scripts.REST, scripts.RENEW, scripts.USAGE, WINDOW, BIND, UNBIND, WRITE)
T = TypeVar("T")


class SharedState:
    """One process's link to Redis: the client, the breaker, the fingerprints' secret and the background writes;
    and the conversation store's feed (rewrite/state/redis/feed.py), which listens from `start` to the close."""

    def __init__(self, client: redis.asyncio.Redis, breaker: Breaker | None = None,
                 lease_seconds: float = LEASE_SECONDS, flush_interval: float = FLUSH_INTERVAL,
                 timeout: float = 1.2 * TIMEOUT, pipe: Pipe | None = None) -> None:
        self.client = client
        self.pipe = pipe  # (the per-request calls' connection; without one, they go through `client` too)
        self.url: str | None = None  # (from_url): where close_sync writes the last counts
        self.timeout = timeout  # what one decision may spend on Redis, waiting for a connection included
        self.breaker = breaker or Breaker()
        self.breaker.on_recovered = self._merge_soon
        self.lease_seconds = lease_seconds
        self.flush_interval = flush_interval
        self.scripts: dict[str, AsyncScript] = {}  # (by body: for calls that go through `client`)
        self.pools: dict[str, RedisDecisions] = {}
        self._retired: list[RedisDecisions] = []  # replaced by a reload, with counts or rests not yet written
        self._secret: bytes | None = None
        self._tasks: set[asyncio.Task] = set()
        self.renewer = Renewer(lease_seconds)  # the leases of attempts under way, renewed
        self._flusher: asyncio.Task | None = None
        self.feed: Feed | None = None  # (from_url): the conversation store's writes, heard from every worker

    @classmethod
    def from_url(cls, url: str, socket_timeout: float = TIMEOUT, **kwargs: Any) -> SharedState:
        pipe = Pipe(url, socket_timeout, preload=SCRIPTS)
        state = cls(connect(url, socket_timeout), pipe=pipe, **kwargs)
        state.url = url
        state.feed = Feed(url, socket_timeout)
        return state

    def pool(self, pool: KeyPool) -> RedisDecisions:
        """`pool`'s shared decisions (for `pool.shared`). One it replaces (a config reload) still writes what it
        counted."""
        old = self.pools.get(pool.name)
        if old is not None:
            self._retired.append(old)
        shared = self.pools[pool.name] = RedisDecisions(self, pool.name, pool.local)
        return shared

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()`'s result; Unavailable when the breaker is open or the call fails (which opens it)."""
        if self.breaker.open:
            raise Unavailable
        return await self._decided(asyncio.wait_for(fn(), self.timeout))

    async def script(self, body: str, keys: list[str], args: list[str | int | float]) -> Any:
        """One of rewrite/state/redis/scripts.py's scripts, as `call` (on the pipe when there is one: it bounds
        each call's time itself)."""
        if self.pipe is None:
            script = self.scripts.get(body) or self.scripts.setdefault(body, self.client.register_script(body))
            return await self.call(lambda: script(keys, args))
        if self.breaker.open:
            raise Unavailable
        return await self._decided(self.pipe.script(body, keys, args))

    def ready(self) -> bool:
        """`script_soon` can send now: the pipe is connected and the breaker closed."""
        return self.pipe is not None and not self.breaker.open and self.pipe.connected()

    def script_soon(self, call: Prepared, rest: list[str | int | float], then: Callable[[Any], T],
                    otherwise: Callable[[], T]) -> asyncio.Future[T]:
        """A prepared script call with `rest` for its last arguments, written to the pipe now (when `ready`), its
        reply handed to `then` as it is read: the future's result is `then(reply)`, or `otherwise()` where `script`
        would raise Unavailable. No coroutine or task stands between the reply and the caller (they were a fifth
        of a pick's CPU)."""
        out: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        pipe = self.pipe

        def settle(result: Callable[[], T]) -> None:
            if not out.done():  # (a caller that gave up)
                out.set_result(result())

        def resent(task: asyncio.Task) -> None:
            settle(otherwise if task.cancelled() or task.exception() is not None else lambda: then(task.result()))

        def replied(reply: Any) -> None:
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT") and pipe is not None:
                # (a restarted Redis: `script` sends the script itself)
                resend = self._decided(pipe.script(call.body, call.keys, call.args(rest)))
                asyncio.ensure_future(resend).add_done_callback(resent)
            elif isinstance(reply, BaseException | hiredis.ReplyError):
                self.breaker.failed(reply if isinstance(reply, BaseException) else ResponseError(str(reply)))
                settle(otherwise)
            else:
                self.breaker.worked()
                settle(lambda: then(reply))

        if pipe is None or not pipe.submit(replied, call.command(rest)):
            settle(otherwise)
        return out

    async def _decided(self, work: Awaitable[T]) -> T:
        try:
            result = await work
        except ERRORS as e:  # (a call on the pipe that timed out has dropped its connection already)
            self.breaker.failed(e)
            raise Unavailable from None
        self.breaker.worked()
        return result

    async def secret(self) -> bytes:
        """The fingerprints' secret every worker uses: made by the first one (SET NX), read by the others."""
        if self._secret is None:
            async def fetch() -> Any:
                await self.client.set(SECRET, os.urandom(32).hex(), nx=True)
                return await self.client.get(SECRET)
            value = await self.call(fetch)
            self._secret = bytes.fromhex(value.decode() if isinstance(value, bytes) else str(value))
        return self._secret

    def zrem(self, key: str, member: str) -> Awaitable[Any]:
        """On the pipe, written before this returns (when connected)."""
        if self.pipe is not None:
            return self.pipe.send("ZREM", key, member)
        return self.client.zrem(key, member)

    def background(self, work: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.start()
        return task

    def start(self) -> None:
        """Write the counts about every `flush_interval` from now on, and listen to the conversation store's feed
        (once there is an event loop)."""
        if self.feed is not None:
            self.feed.start()
        if self._flusher is None:
            with contextlib.suppress(RuntimeError):  # (no running loop: the next call from one starts it)
                self._flusher = asyncio.get_running_loop().create_task(self._flush_every())

    def _merge_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # (noticed by a caller without a loop: the flusher merges counts)
            asyncio.get_running_loop()
            self.background(self.merge())

    async def merge(self) -> None:
        """After an outage: this worker's rests and counts of the meantime, into Redis."""
        for pool in [*self._retired, *self.pools.values()]:
            with contextlib.suppress(Unavailable):
                await pool.rests.replay()
        await self.flush()

    async def flush(self) -> None:
        for pool in [*self._retired, *self.pools.values()]:
            await pool.leases.flush_given_back()
            with contextlib.suppress(Unavailable):
                await pool.usage.flush()
        self._retired = [p for p in self._retired if p.usage.batches or p.rests.pending or p.leases.given_back]

    async def observe(self) -> None:
        for pool in list(self.pools.values()):
            with contextlib.suppress(Unavailable):
                await pool.rests.observe()
                await pool.usage.observe()
                await pool.windows.observe()
                await pool.bindings.observe(pool.local.wall())

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()
            await self.observe()

    def close_sync(self) -> None:
        """When the process stops: the counts not yet written, with a blocking client (the event loop is ending).
        Leases still held are left to expire, as a dead worker's would."""
        self.renewer.cancel()
        if self.feed is not None:
            self.feed.stop()
        if self.url is None:
            return
        client = connect_sync(self.url)
        try:
            for pool in [*self._retired, *self.pools.values()]:
                pool.usage.flush_sync(client)
        except ERRORS as e:
            logger.warning("rotator: state.redis: the last usage counts could not be written (%s)", type(e).__name__)
        finally:
            client.close()

    async def aclose(self) -> None:
        """Write what is counted, then close (a restart loses no count that Redis could take). Leases still held
        are left to expire, as a dead worker's would."""
        if self._flusher is not None:
            self._flusher.cancel()
        self.renewer.cancel()
        if self.feed is not None:
            await self.feed.aclose()
        for task in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        await self.flush()
        await self.client.aclose()
        if self.pipe is not None:
            self.pipe.drop()
