"""The key pools' decisions shared through Redis: one atomic pick per request (it leases the key), rests that every
worker sees, leases that expire by themselves, and usage counters written in batches.

Per request: one pick (which also gives back the leases of uncapped keys this worker ended since its last pick; a
capped key's lease is given back at once) and a share of one batched usage write (about once a second per pool);
nothing per streamed event. When Redis does not answer, the breaker (rewrite/state/redis/connection.py) sends
decisions to the pool's own state: rests set meanwhile are kept here and replayed when Redis answers again (ZADD GT
cannot shorten a rest), counts are resent as the same batch (applied once, however often it is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import hiredis
import redis
import redis.asyncio
from redis.exceptions import ResponseError

from rewrite.pool.key_state import WHOLE_KEY, KeyState, fingerprint
from rewrite.state.redis import scripts
from rewrite.state.redis.connection import ERRORS, TIMEOUT, Breaker, connect, connect_sync
from rewrite.state.redis.names import SECRET, PoolNames
from rewrite.state.redis.pipe import Pipe, Prepared
from rewrite.state.redis.usage import UsageBatches

if TYPE_CHECKING:
    from rewrite.pool.keypool import KeyPool

logger = logging.getLogger("rotator")

LEASE_SECONDS = 30.0  # a lease not renewed this long (its worker died mid-stream) frees its key's slot
FLUSH_INTERVAL = 1.0  # seconds between batched usage writes
SCRIPTS = ("PICK", "REST", "RENEW", "USAGE")  # rewrite/state/redis/scripts.py's
T = TypeVar("T")


class Unavailable(Exception):
    """Redis did not answer, or the breaker is open: decide locally."""


@dataclass(frozen=True)
class SharedPick:
    state: KeyState | None
    wait: float  # seconds; inf: no key will be back
    busy: bool
    held: SharedLease | None


class SharedState:
    """One process's link to Redis: the client, the breaker, the fingerprints' secret and the background writes."""

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
        self.scripts = {name: client.register_script(getattr(scripts, name)) for name in SCRIPTS}
        self.pools: dict[str, SharedPool] = {}
        self._retired: list[SharedPool] = []  # replaced by a reload, with counts or rests not yet written
        self._secret: bytes | None = None
        self._lease_prefix, self._leases = os.urandom(6).hex() + ".", itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self.held: dict[SharedLease, None] = {}  # the leases of attempts under way, renewed by `_renewer`
        self._renewer: asyncio.Task | None = None
        self._flusher: asyncio.Task | None = None

    @classmethod
    def from_url(cls, url: str, socket_timeout: float = TIMEOUT, **kwargs: Any) -> SharedState:
        pipe = Pipe(url, socket_timeout, preload=tuple(getattr(scripts, name) for name in SCRIPTS))
        state = cls(connect(url, socket_timeout), pipe=pipe, **kwargs)
        state.url = url
        return state

    def pool(self, pool: KeyPool) -> SharedPool:
        """`pool`'s shared decisions. One it replaces (a config reload) still writes what it counted."""
        old = self.pools.get(pool.name)
        if old is not None:
            self._retired.append(old)
        shared = self.pools[pool.name] = SharedPool(self, pool)
        return shared

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()`'s result; Unavailable when the breaker is open or the call fails (which opens it)."""
        if self.breaker.open:
            raise Unavailable
        return await self._decided(asyncio.wait_for(fn(), self.timeout))

    async def script(self, name: str, keys: list[str], args: list[str | int | float]) -> Any:
        """One of rewrite/state/redis/scripts.py's scripts, as `call` (on the pipe when there is one: it bounds
        each call's time itself)."""
        if self.pipe is None:
            return await self.call(lambda: self.scripts[name](keys, args))
        if self.breaker.open:
            raise Unavailable
        return await self._decided(self.pipe.script(getattr(scripts, name), keys, args))

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

    def lease_id(self) -> str:
        """An id no other worker's lease has: this process's random part and a count."""
        return f"{self._lease_prefix}{next(self._leases)}"

    def background(self, work: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.start()
        return task

    def start(self) -> None:
        """Write the counts about every `flush_interval` from now on (once there is an event loop)."""
        if self._flusher is None:
            with contextlib.suppress(RuntimeError):  # (no running loop: the next call from one starts it)
                self._flusher = asyncio.get_running_loop().create_task(self._flush_every())

    def hold(self, lease: SharedLease) -> None:
        self.held[lease] = None
        if self._renewer is None:
            self._renewer = asyncio.ensure_future(self._renew_held())

    async def _renew_held(self) -> None:
        """Every third of the lease time, while any lease is held: renew them. (It looks first after that time: a
        lease given back at once does not end it, to be started again by the next.)"""
        try:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                if not self.held:
                    return
                for lease in list(self.held):
                    with contextlib.suppress(Unavailable):
                        await lease.pool.renew(lease.index, lease.lease_id)
        finally:
            self._renewer = None

    def _merge_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # (noticed by a caller without a loop: the flusher merges counts)
            asyncio.get_running_loop()
            self.background(self.merge())

    async def merge(self) -> None:
        """After an outage: this worker's rests and counts of the meantime, into Redis."""
        for pool in self._every_pool():
            with contextlib.suppress(Unavailable):
                await pool.replay_rests()
        await self.flush()

    async def flush(self) -> None:
        for pool in self._every_pool():
            await pool.flush_given_back()
            with contextlib.suppress(Unavailable):
                await pool.flush_usage()
        self._retired = [p for p in self._retired if p.unwritten()]

    async def observe(self) -> None:
        for pool in list(self.pools.values()):
            with contextlib.suppress(Unavailable):
                await pool.observe()
                await pool.observe_usage()

    def _every_pool(self) -> list[SharedPool]:
        return [*self._retired, *self.pools.values()]

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()
            await self.observe()

    def close_sync(self) -> None:
        """When the process stops: the counts not yet written, with a blocking client (the event loop is ending).
        Leases still held are left to expire, as a dead worker's would."""
        if self._renewer is not None:
            self._renewer.cancel()
        if self.url is None:
            return
        client = connect_sync(self.url)
        try:
            for pool in self._every_pool():
                pool.flush_usage_sync(client)
        except ERRORS as e:
            logger.warning("rotator: state.redis: the last usage counts could not be written (%s)", type(e).__name__)
        finally:
            client.close()

    async def aclose(self) -> None:
        """Write what is counted, then close (a restart loses no count that Redis could take). Leases still held
        are left to expire, as a dead worker's would."""
        if self._flusher is not None:
            self._flusher.cancel()
        if self._renewer is not None:
            self._renewer.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        await self.flush()
        await self.client.aclose()
        if self.pipe is not None:
            self.pipe.drop()


class SharedPool:
    """One key pool's shared decisions. Keys are indexed as the pool's states are (config order)."""

    def __init__(self, shared: SharedState, pool: KeyPool) -> None:
        self.shared, self.pool = shared, pool
        self.names = PoolNames(pool.name)
        self._fps: list[str] = []
        self._index = {id(s): i for i, s in enumerate(pool.states)}
        self._pending_rests: dict[tuple[int, str], tuple[float, str]] = {}  # (key, scope) -> (until, why)
        self.usage = UsageBatches(self.names)
        self._given_back: list[str] = []  # leases of uncapped keys given back since the last pick: "i:lease id"
        self._keys: list[str] | None = None  # the pick's Redis keys (the fingerprints do not change)
        self._fixed: list[str | int | float] = []  # the pick's arguments that do not change
        self._call: Prepared | None = None  # the pick on the pipe, its unchanging part packed once

    async def fingerprints(self) -> list[str]:
        if not self._fps:
            secret = await self.shared.secret()
            self._fps = [fingerprint(s.secret, secret) for s in self.pool.states]
        return self._fps

    def pick(self, avoid: str | None, model: str, now: float) -> Awaitable[SharedPick | None]:
        """The key every worker would agree on, leased; None: Redis did not answer (decide locally). Sent before
        this returns when the connection is up (then a future, else a coroutine that connects first)."""
        if self._call is None or not self.shared.ready():
            return self._pick_connecting(avoid, model, now)
        given_back, lease_id, rest = self._pick_args(avoid, model, now)
        return self.shared.script_soon(self._call, rest, then=lambda reply: self._picked(reply, lease_id),
                                       otherwise=lambda: self._unpicked(given_back))

    async def _pick_connecting(self, avoid: str | None, model: str, now: float) -> SharedPick | None:
        try:
            fps = await self.fingerprints()
        except Unavailable:
            return None
        if self._keys is None:
            states = self.pool.states
            self._keys = [self.names.rests, self.names.turn, self.names.lru] + [self.names.leases(fp) for fp in fps]
            self._fixed = [self.pool.strategy.name, int(self.shared.lease_seconds * 1000), len(states)]
            for s, fp in zip(states, fps):
                self._fixed += (fp, s.weight, s.tier, s.max_concurrent or 0)
            if self.shared.pipe is not None:
                self._call = self.shared.pipe.prepare(scripts.PICK, self._keys, self._fixed)
        given_back, lease_id, rest = self._pick_args(avoid, model, now)
        try:
            reply = await self.shared.script("PICK", self._keys, self._fixed + rest)
        except Unavailable:
            return self._unpicked(given_back)
        return self._picked(reply, lease_id)

    def _pick_args(self, avoid: str | None, model: str, now: float) -> tuple[list[str], str, list[str | int | float]]:
        """(the leases given back with this pick, the new lease's id, the pick's own arguments: scripts.PICK)."""
        states = self.pool.states
        given_back, self._given_back = self._given_back, []
        avoided = next((i + 1 for i, s in enumerate(states) if s.secret == avoid), 0) if avoid else 0
        lease_id = self.shared.lease_id()
        odd = ",".join(f"{i}:{int(s.out is not None)}:{int(max(0.0, s.slow_until - now) * 1000)}"
                       for i, s in enumerate(states, 1) if s.out is not None or s.slow_until > now)
        return given_back, lease_id, [model, avoided, lease_id, ",".join(given_back), odd]

    def _picked(self, reply: Any, lease_id: str) -> SharedPick:
        chosen, wait_ms, busy = reply
        wait = float("inf") if wait_ms < 0 else wait_ms / 1000
        if not chosen:
            return SharedPick(None, wait, bool(busy), None)
        return SharedPick(self.pool.states[chosen - 1], wait, False, SharedLease(self, chosen - 1, lease_id))

    def _unpicked(self, given_back: list[str]) -> SharedPick | None:
        """Redis did not answer: the leases given back go with the next pick that goes through (or expire)."""
        self._given_back[:0] = given_back
        return None

    def rest(self, state: KeyState, scope: str, seconds: float, why: str) -> None:
        """Rest the key for every worker. Written at once when connected, so that no pick sent after this (by any
        request of this worker) reaches Redis before the rest; else in the background (the caller goes on)."""
        index, until = self._index[id(state)], time.monotonic() + seconds
        if not self._fps or not self.shared.ready():
            self.shared.background(self._rest(index, scope, until, why))
            return
        pipe = self.shared.pipe
        assert pipe is not None  # (ready)
        keys, member = self._rest_of(self._fps, index, scope)
        self.shared.script_soon(pipe.prepare(scripts.REST, keys, []), [member, int(max(0.0, seconds) * 1000), why],
                                then=lambda _: None, otherwise=lambda: self._pend(index, scope, until, why))

    async def _rest(self, index: int, scope: str, until: float, why: str) -> None:
        try:
            keys, member = self._rest_of(await self.fingerprints(), index, scope)
            ms = int(max(0.0, until - time.monotonic()) * 1000)
            await self.shared.script("REST", keys, [member, ms, why])
        except Unavailable:
            self._pend(index, scope, until, why)

    def _rest_of(self, fps: list[str], index: int, scope: str) -> tuple[list[str], str]:
        """The REST script's keys and member for key `index`, whole or for one model."""
        member = fps[index] if scope == WHOLE_KEY else f"{fps[index]}|{scope}"
        return [self.names.rests, self.names.why(member)], member

    def _pend(self, index: int, scope: str, until: float, why: str) -> None:
        """A rest Redis did not take: kept here, replayed when it answers again."""
        pending = self._pending_rests.get((index, scope))
        if pending is None or pending[0] < until:
            self._pending_rests[(index, scope)] = (until, why)

    async def replay_rests(self) -> None:
        pending, self._pending_rests = self._pending_rests, {}
        now = time.monotonic()
        for (index, scope), (until, why) in pending.items():
            if until > now:
                await self._rest(index, scope, until, why)

    async def observe(self) -> None:
        """Learn the rests other workers set: the pool's own state then shows them (the status page,
        `rotator.pools`) and still holds them if Redis stops answering."""
        fps = await self.fingerprints()

        async def read() -> Any:
            pipe = self.shared.client.pipeline(transaction=False)
            pipe.time()
            pipe.zrange(self.names.rests, 0, -1, withscores=True)
            return await pipe.execute()

        (seconds, micros), rests = await self.shared.call(read)
        server_now, by_fp = seconds + micros / 1e6, dict(zip(fps, self.pool.states))
        learned = []
        for member, until_ms in rests:
            fp, _, scope = member.decode().partition("|")
            left = until_ms / 1000 - server_now
            if fp in by_fp and left > 0:
                learned.append((by_fp[fp], scope, left, member.decode()))
        if not learned:
            return
        whys = await self.shared.call(lambda: self.shared.client.mget([self.names.why(m) for *_, m in learned]))
        now = time.monotonic()  # (the pool's clock)
        for (state, scope, left, _), why in zip(learned, whys):
            mine = state.rests.get(scope)
            if mine is not None and mine.until - now > left - 1.0:
                continue  # this worker's own rest (Redis's end is its own a few ms later)
            reason = why.decode() if isinstance(why, bytes) else "resting"
            self.pool.bench(state.secret, left, scope, f"{reason} (seen by another worker)", share=False)

    def unwritten(self) -> bool:
        return bool(self.usage or self._pending_rests or self._given_back)

    def count(self, state: KeyState, model: str, wall: float, **amounts: float) -> None:
        """Add to the key's counters (requests, tokens, cost, unpriced), in all, for `model` and for this minute;
        written with the next batch."""
        self.usage.add(self._index[id(state)], model, wall, amounts)
        self.shared.start()

    async def flush_usage(self) -> None:
        """Send the counts in one script call; a batch that did not go is sent again as it was, under its id."""
        batch = self.usage.batch(await self.fingerprints(), time.time())
        if batch is not None:
            await self.shared.script("USAGE", *batch)
            self.usage.sent()

    def flush_usage_sync(self, client: redis.Redis) -> None:
        """The same with a blocking client, when the process stops (and its event loop with it)."""
        batch = self.usage.batch(self._fps, time.time()) if self._fps else None
        if batch is not None and not self.shared.breaker.open:
            client.eval(scripts.USAGE, len(batch[0]), *batch[0], *batch[1])
            self.usage.sent()

    async def observe_usage(self) -> None:
        """Every worker's counts, into the pool's own view (the status page, `rotator.pools`, least-used)."""
        fps = await self.fingerprints()

        async def read() -> Any:
            pipe = self.shared.client.pipeline(transaction=False)
            for fp in fps:
                pipe.hgetall(self.names.usage(fp))
                pipe.hgetall(self.names.usage(fp, hour=True))
            return await pipe.execute()

        hashes = await self.shared.call(read)
        for index, state in enumerate(self.pool.states):
            state.usage.restore(self.usage.snapshot(index, hashes[2 * index], hashes[2 * index + 1]))

    async def renew(self, index: int, lease_id: str) -> None:
        fps = await self.fingerprints()
        await self.shared.script("RENEW", [self.names.leases(fps[index])],
                                 [lease_id, int(self.shared.lease_seconds * 1000)])

    def give_back(self, index: int, lease_id: str) -> None:
        """A lease ends. A capped key's slot is freed at once (another worker may be waiting for it); any other
        key's lease is given back with this worker's next pick, or within a second (the flusher)."""
        if self.pool.states[index].max_concurrent:
            # Sent now, not from a task: a request of this worker waiting for the slot picks as soon as it is woken,
            # and its pick must reach Redis after the slot was freed.
            if not self.shared.breaker.open:  # (else the lease expires by itself)
                zrem = self.shared.zrem(self.names.leases(self._fps[index]), lease_id)
                self.shared.background(self._settle(zrem))
        else:
            self._given_back.append(f"{index + 1}:{lease_id}")
            self.shared.start()

    async def flush_given_back(self) -> None:
        """The leases given back since the last pick, when no pick took them along (while the breaker is open,
        none is written: they expire by themselves)."""
        given_back, self._given_back = self._given_back, []
        for index, lease_id in (item.split(":", 1) for item in given_back):
            if self.shared.breaker.open:
                return
            await self._release(int(index) - 1, lease_id)

    async def _settle(self, zrem: Awaitable[Any]) -> None:
        try:
            await self.shared.call(lambda: zrem)
        except Unavailable:
            if inspect.iscoroutine(zrem):  # (the breaker opened meanwhile: never awaited, the lease expires)
                zrem.close()

    async def _release(self, index: int, lease_id: str) -> None:
        fps = await self.fingerprints()
        await self._settle(self.shared.zrem(self.names.leases(fps[index]), lease_id))


class SharedLease:
    """A key's slot taken by the pick: renewed while the attempt lives (from `hold`: a pick never used expires
    within the lease time), given back once."""

    def __init__(self, pool: SharedPool, index: int, lease_id: str) -> None:
        self.pool, self.index, self.lease_id = pool, index, lease_id
        self._released = False

    def hold(self) -> None:
        """The attempt begins: renew the lease until it is released (one renewer for all of a process's)."""
        if not self._released:
            self.pool.shared.hold(self)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self.pool.shared.held.pop(self, None)
        self.pool.give_back(self.index, self.lease_id)
