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
from typing import TYPE_CHECKING, Any

import redis.asyncio

from rewrite.state.redis import scripts
from rewrite.state.redis.bind_scripts import BIND, UNBIND
from rewrite.state.redis.client_scripts import SPEND
from rewrite.state.redis.clients import SharedClients
from rewrite.state.redis.connection import ERRORS, TIMEOUT, Breaker, Unavailable, connect, connect_sync
from rewrite.state.redis.decisions import RedisDecisions
from rewrite.state.redis.feed import WRITE, Feed
from rewrite.state.redis.link import LEASE_SECONDS, RedisLink
from rewrite.state.redis.pipe import Pipe
from rewrite.state.redis.window_scripts import WINDOW

if TYPE_CHECKING:
    from rewrite.pool.keypool import KeyPool

__all__ = ["LEASE_SECONDS", "RedisDecisions", "SharedState", "Unavailable"]

logger = logging.getLogger("rotator")

FLUSH_INTERVAL = 1.0  # seconds between batched usage writes
# rewrite/state/redis/scripts.py's, loaded on each connection of the pipe
SCRIPTS = (*scripts.PICKS.values(), scripts.REST, scripts.RECOVERED, scripts.RENEW, scripts.USAGE, WINDOW, BIND, UNBIND,
           WRITE, SPEND)


class SharedState(RedisLink):
    """One process's link to Redis (rewrite/state/redis/link.py) that also makes each pool's shared decisions and
    writes what they counted in the background: merged after an outage, flushed about once a second and at the
    close; every client's figures read about once a second (clients.py); and the conversation store's feed
    (rewrite/state/redis/feed.py), which listens from `start` to the close."""

    def __init__(self, client: redis.asyncio.Redis, breaker: Breaker | None = None,
                 lease_seconds: float = LEASE_SECONDS, flush_interval: float = FLUSH_INTERVAL,
                 timeout: float = 1.2 * TIMEOUT, pipe: Pipe | None = None) -> None:
        super().__init__(client, breaker, lease_seconds, timeout, pipe)
        self.breaker.on_recovered = self._merge_soon
        self.flush_interval = flush_interval
        self.pools: dict[str, RedisDecisions] = {}
        self._retired: list[RedisDecisions] = []  # replaced by a reload, with counts or rests not yet written
        self._flusher: asyncio.Task | None = None
        self.clients: SharedClients | None = None  # who spent what (clients.py), with `clients` configured

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

    def start(self) -> None:
        """Write the counts about every `flush_interval` from now on, and listen to the conversation store's feed
        (once there is an event loop)."""
        super().start()
        if self._flusher is None:
            with contextlib.suppress(RuntimeError):  # (no running loop: the next call from one starts it)
                self._flusher = asyncio.get_running_loop().create_task(self._flush_every())
                self.reach()
        self.started = self._flusher is not None

    def _merge_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # (noticed by a caller without a loop: the flusher merges counts)
            asyncio.get_running_loop()
            self.background(self.merge())

    async def merge(self) -> None:
        """After an outage: this worker's rests and counts of the meantime, into Redis."""
        for pool in [*self._retired, *self.pools.values()]:
            with contextlib.suppress(Unavailable):
                await pool.books.rests.replay()
        await self.flush()

    async def flush(self) -> None:
        for pool in [*self._retired, *self.pools.values()]:
            await pool.leases.flush_given_back()
            with contextlib.suppress(Unavailable):
                await pool.books.usage.flush()
        self._retired = [p for p in self._retired
                         if p.books.usage.batches or p.books.rests.pending or p.leases.given_back]

    async def observe(self) -> None:
        """What every worker did, into each pool's own view: every pool's reads sent at once."""
        reads = [read for pool in list(self.pools.values())
                 for read in (pool.books.rests.observe(), pool.books.usage.observe(), pool.books.windows.observe(),
                              pool.books.bindings.observe(pool.local.wall()))]
        if self.clients is not None:
            reads.append(self.clients.observe())
        for outcome in await asyncio.gather(*reads, return_exceptions=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, Unavailable):
                raise outcome

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            if self.feed is not None:  # (listening again if its task ended: the requests no longer call start)
                self.feed.start()
            await self.flush()
            await self.observe()
            if self.pipe is not None:
                self.pipe.idle()

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
                pool.books.usage.flush_sync(client)
        except ERRORS as e:
            logger.warning("rotator: state.redis: the last usage counts could not be written (%s)", type(e).__name__)
        finally:
            client.close()

    async def aclose(self) -> None:
        """Write what is counted, then close (a restart loses no count that Redis could take). Leases still held
        are left to expire, as a dead worker's would."""
        if self._flusher is not None:
            self._flusher.cancel()
        if self.reaching is not None:
            self.reaching.cancel()
        self.renewer.cancel()
        if self.feed is not None:
            await self.feed.aclose()
        for task in list(self.tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        await self.flush()
        await self.client.aclose()
        if self.pipe is not None:
            self.pipe.drop()
