"""One pool's rests in Redis: a sorted set of end times on the Redis server's clock, for a whole key (`fp`) or one
model (`fp|model`), and each rest's reason. A rest is never shortened (ZADD GT), whichever worker saw it. A rest
Redis did not take is kept and replayed when it answers again; the rests other workers set are read about once a
second into the pool's own view (the status page, `rotator.pools`, and the decisions made alone while Redis does not
answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewrite.pool.key_state import WHOLE_KEY, KeyState, Rest
from rewrite.pool.local import LocalBooks
from rewrite.state.redis import scripts
from rewrite.state.redis.connection import Unavailable
from rewrite.state.redis.link import pairs
from rewrite.state.redis.names import PoolKeys

if TYPE_CHECKING:
    from rewrite.state.redis.link import RedisLink


SEEN = " (seen by another worker)"  # the end of the reason of a rest learned from Redis


class SharedRests:
    def __init__(self, shared: RedisLink, keys: PoolKeys, local: LocalBooks) -> None:
        self.shared, self.keys, self.local = shared, keys, local
        self.pending: dict[tuple[int, str], tuple[float, str]] = {}  # (key, scope) -> (until, why), not yet taken

    def write(self, state: KeyState, scope: str, seconds: float, why: str, renew: bool = False) -> None:
        """Rest the key for every worker (`renew`: from a refused re-check's answer, shorter or longer). Written at
        once when connected, so that no pick sent after this (by any request of this worker) reaches Redis before the
        rest; else in the background (the caller goes on)."""
        index, until = self.keys.index[id(state)], self.local.clock() + seconds
        pipe = self.shared.pipe
        if not self.keys.fps or pipe is None or not self.shared.ready():
            self.shared.background(self._write(index, scope, until, why, renew))
            return
        keys, member = self._rest_of(self.keys.fps, index, scope)
        args: list[str | int | float] = [member, int(max(0.0, seconds) * 1000), why, self._recheck_ms(), int(renew)]
        self.shared.script_soon(pipe.prepare(scripts.REST, keys, []), args,
                                then=lambda _: None, otherwise=lambda: self._pend(index, scope, until, why))

    async def _write(self, index: int, scope: str, until: float, why: str, renew: bool = False) -> None:
        try:
            keys, member = self._rest_of(await self.keys.fingerprints(), index, scope)
            ms = int(max(0.0, until - self.local.clock()) * 1000)
            await self.shared.script(scripts.REST, keys, [member, ms, why, self._recheck_ms(), int(renew)])
        except Unavailable:
            self._pend(index, scope, until, why)

    def _recheck_ms(self) -> int:
        return int(self.local.recheck_after * 1000)

    def recovered(self, state: KeyState, scope: str) -> None:
        """A re-check was served: the rest ends for every worker (if Redis does not answer, it runs its course there,
        and is re-checked again)."""
        self.shared.background(self._recovered(self.keys.index[id(state)], scope))

    async def _recovered(self, index: int, scope: str) -> None:
        self.pending.pop((index, scope), None)
        try:
            keys, member = self._rest_of(await self.keys.fingerprints(), index, scope)
            await self.shared.script(scripts.RECOVERED, keys, [member])
        except Unavailable:
            pass

    def _rest_of(self, fps: list[str], index: int, scope: str) -> tuple[list[str], str]:
        """The REST script's keys and member for key `index`, whole or for one model."""
        member = fps[index] if scope == WHOLE_KEY else f"{fps[index]}|{scope}"
        names = self.keys.names
        return [names.rests, names.why(member), names.rechecks], member

    def _pend(self, index: int, scope: str, until: float, why: str) -> None:
        """A rest Redis did not take: kept here, replayed when it answers again."""
        pending = self.pending.get((index, scope))
        if pending is None or pending[0] < until:
            self.pending[(index, scope)] = (until, why)

    async def replay(self) -> None:
        pending, self.pending = self.pending, {}
        now = self.local.clock()
        for (index, scope), (until, why) in pending.items():
            if until > now:
                await self._write(index, scope, until, why)

    def _ended_there(self, index: int, scope: str, rest: Rest, now: float) -> bool:
        """A rest this worker holds that Redis no longer does ended there: one learned from Redis, or one a worker
        may have re-checked since (its re-check was due once). Another of its own may be on its way there."""
        if (index, scope) in self.pending:
            return False
        rechecked = rest.check_at < rest.until and (rest.check_at <= now or rest.interval > self.local.recheck_after)
        return rest.why.endswith(SEEN) or rechecked

    async def observe(self) -> None:
        """Learn the rests other workers set, and when each is next re-checked: the pool's own view then shows them
        (the status page, `rotator.pools`) and still holds them if Redis stops answering; a rest learned so that a
        re-check has ended since is dropped."""
        fps, names = await self.keys.fingerprints(), self.keys.names
        (seconds, micros), listed, checks = await self.shared.read(
            ("TIME",), ("ZRANGE", names.rests, 0, -1, "WITHSCORES"), ("HGETALL", names.rechecks))
        server_now, by_fp = int(seconds) + int(micros) / 1e6, dict(zip(fps, self.keys.states))
        learned, running = [], set()
        for member, until_ms in pairs(listed):
            fp, _, scope = member.decode().partition("|")
            left = float(until_ms) / 1000 - server_now
            if fp in by_fp and left > 0:
                learned.append((by_fp[fp], scope, left, member.decode()))
                running.add((id(by_fp[fp]), scope))
        now = self.local.clock()
        for index, state in enumerate(self.keys.states):
            for scope, rest in list(state.rests.items()):
                gone = (id(state), scope) not in running and rest.until > now
                if gone and self._ended_there(index, scope, rest, now):
                    self.local.recovered(state, scope)
        if not learned:
            return
        [whys] = await self.shared.read(("MGET", *[names.why(m) for *_, m in learned]))
        for (state, scope, left, _), why in zip(learned, whys):
            mine = state.rests.get(scope)
            if mine is not None and mine.until - now > left - 1.0:
                continue  # this worker's own rest (Redis's end is its own a few ms later)
            reason = why.decode() if isinstance(why, bytes) else "resting"
            self.local.rest(state, scope, left, f"{reason}{SEEN}", share=False)
        scheduled = dict(pairs(checks))
        for state, scope, _, member in learned:
            value, kept = scheduled.get(member.encode()), state.rests.get(scope)
            parts = value.decode().split("|", 3) if value is not None else []
            if kept is not None and len(parts) == 4:
                kept.check_at = now + int(parts[0]) / 1000 - server_now
                kept.interval, kept.since = int(parts[1]) / 1000, int(parts[2]) / 1000
