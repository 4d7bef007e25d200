"""A provider's key pool: which key serves the next attempt, and how each key's answers rest it.

Kinds of rest:
- a cooldown (rate limited, overloaded, out of quota): the key is not used for that model, or at all, until it is
  due; never shortened by a later, shorter hint;
- out: the vendor refused the key (401/403); not used again until the config is reloaded (a new pool);
- a stall (no first token in time, no connection): the key is used only when no other key is ready (a stall may be
  the vendor's, not the key's, and must not make a request wait).

A `max_concurrent` key is leased for each attempt (`lease`, a context manager) and skipped while at its cap.

With `state.redis`, `shared` (rewrite/state/redis/shared.py) makes these decisions for every worker at once: `take`
picks and leases there, rests and counts are written there too; when Redis does not answer, the pool decides
alone, on what it holds, as it does without Redis.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rewrite.policy.backoff import backoff
from rewrite.policy.retry import Failure
from rewrite.pool.key_state import WHOLE_KEY, KeyState, Rest, fingerprint
from rewrite.pool.prefetch import Prefetch
from rewrite.pool.report import describe, summary
from rewrite.pool.strategies import STRATEGIES

if TYPE_CHECKING:
    from rewrite.state.redis.shared import SharedLease, SharedPool

logger = logging.getLogger("rotator")

ALERT = 21  # mitmproxy.log.ALERT, for what the user must see (rewrite/ does not import mitmproxy)
# A key that stalls rests this long, doubling with each failure in a row up to STALL_REST_MAX.
STALL_REST = 5.0
STALL_REST_MAX = 300.0
# A cooldown whose answer named no delay: this long, doubling with each such answer in a row, with jitter.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 120.0
# With shared state, a request waiting for a key at its max_concurrent looks again this often (seconds).
SHARED_LOOK_AGAIN = 0.1


@dataclass(frozen=True)
class Resting:
    """Why no key of a pool can be used now."""

    seconds: float  # until the soonest key is back (inf: none will be)
    rejected: bool  # every key was refused by the vendor (401/403)
    busy: bool = False  # the keys that may be used are all at their max_concurrent


@dataclass(frozen=True)
class Pick:
    key: str | None  # None: every key that may be used now is at its max_concurrent (busy), or every key is out
    wait: float = 0.0  # seconds until `key` is back from its rest
    busy: bool = False
    held: SharedLease | None = None  # the key's slot, taken by a shared pick (see `take`)
    # Why no key can be used now, as the decision that made this pick saw it when that is not the pool's own state
    # (a shared pick: the rests every worker set, the leases every worker holds); None: `resting` asks the pool.
    resting: Resting | None = None

    def drop(self) -> None:
        """Give back the slot of a pick that is not used."""
        if self.held is not None:
            self.held.release()


class Lease:
    """One attempt's hold on a key, given back exactly once (a context manager)."""

    __slots__ = ("_pool", "held", "state")

    def __init__(self, pool: KeyPool | None, state: KeyState | None, held: SharedLease | None = None) -> None:
        self._pool, self.state, self.held = pool, state, held

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        pool, self._pool = self._pool, None
        held, self.held = self.held, None
        if pool is not None and self.state is not None:
            pool._release(self.state)
        if held is not None:
            held.release()


def _resolve(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class KeyPool:
    def __init__(self, keys: list, strategy: str = "round-robin", name: str = "", clock=time.monotonic,
                 wall=time.time, rng=random.random) -> None:
        """`keys`: strings, or objects with key, weight, tier and max_concurrent (rewrite.config.KeyConfig)."""
        self.name = name
        self.states = [KeyState(k) if isinstance(k, str) else
                       KeyState(k.key, k.weight, k.tier, k.max_concurrent) for k in keys]
        self._by_secret = {s.secret: s for s in self.states}
        self.strategy = STRATEGIES[strategy](self.states, wall)
        self._clock, self._wall, self._rng = clock, wall, rng
        self._picks = 0
        self._waiters: list[asyncio.Future] = []  # callers waiting for a lease to come back
        self._shown: tuple = ()  # the key states last logged
        self._next_change = math.inf  # when the soonest rest ends
        self.dirty = False  # changed since the last snapshot
        self.shared: SharedPool | None = None  # with state.redis: the decisions every worker shares

    @property
    def keys(self) -> list[str]:
        return [s.secret for s in self.states]

    def __len__(self) -> int:
        return len(self.states)

    # -- choosing a key --------------------------------------------------------------------------------------

    def pick(self, avoid: str | None = None, model: str = "", caps: bool = True) -> Pick:
        """The key for the next attempt at `model`; `avoid`: the key that just failed, if another may be used."""
        now = self._clock()
        if now >= self._next_change:
            self._changed(now)
        ready = [s for s in self.states if s.slow_until <= now and s.rest_until(model, now) <= now]
        free = [s for s in ready if not (caps and s.at_cap())]
        if free:
            return self._chosen(self.strategy.choose([s for s in free if s.secret != avoid] or free), 0.0)
        if ready:
            return Pick(None, busy=True)
        # No key is ready: one resting after a stall is used at once, else the one back soonest.
        usable = [s for s in self.states if s.out is None and not (caps and s.at_cap())]
        if not usable:
            return Pick(None, math.inf, busy=any(s.out is None for s in self.states))

        def rank(s: KeyState) -> tuple:
            return (max(0.0, s.rest_until(model, now) - now), max(0.0, s.slow_until - now), s.secret == avoid,
                    s.last_pick)

        best = min(usable, key=rank)
        return self._chosen(best, rank(best)[0])

    def prefetch(self, model: str) -> Prefetch | None:
        """The first attempt's shared pick for `model`, started now (rewrite/pool/prefetch.py); None without shared
        state."""
        if self.shared is None:
            return None
        return Prefetch(self, model, asyncio.ensure_future(self.shared.pick(None, model, self._clock())))

    async def take(self, avoid: str | None = None, model: str = "", prefetch: Prefetch | None = None) -> Pick:
        """`pick` as every worker sharing the state decides it, the key's slot taken there (`Pick.held`, given back
        by `lease`); the pool's own `pick` without shared state, or when Redis does not answer. `prefetch`: the
        request's pick started earlier, used if it was made for this pool and model."""
        if self.shared is not None:
            early = prefetch.take(self, model) if prefetch is not None and avoid is None else None
            shared = await (early or self.shared.pick(avoid, model, self._clock()))
            if shared is not None:
                if shared.state is None:
                    resting = Resting(shared.wait, rejected=not shared.busy and shared.wait == math.inf,
                                      busy=shared.busy)
                    return Pick(None, shared.wait, busy=shared.busy, resting=resting)
                chosen = self._chosen(shared.state, shared.wait)
                return Pick(chosen.key, chosen.wait, held=shared.held,
                            resting=Resting(shared.wait, rejected=False) if shared.wait else None)
        return self.pick(avoid, model)

    def acquire(self, avoid: str | None = None, model: str = "") -> tuple[str, float]:
        """The next key and how long to wait before using it, caps aside (for callers that take no lease)."""
        p = self.pick(avoid, model, caps=False)
        return (p.key, p.wait) if p.key is not None else (self.states[0].secret, math.inf)

    def _chosen(self, state: KeyState, wait: float) -> Pick:
        self._picks += 1
        state.last_pick = self._picks
        self.dirty = True
        return Pick(state.secret, wait)

    def lease(self, key: str, model: str = "", held: SharedLease | None = None) -> Lease:
        """Hold `key` for one attempt (counted as a request, for `model` too); give it back by leaving the `with`
        block. `held`: the slot a shared pick took, given back with it."""
        state = self._by_secret.get(key)
        if held is not None:
            held.hold()
        if state is None:
            return Lease(None, None, held)
        state.in_flight += 1
        wall = self._wall()
        state.usage.request(model, wall)
        if self.shared is not None:
            self.shared.count(state, model, wall, requests=1)
        self.dirty = True
        return Lease(self, state, held)

    def _release(self, state: KeyState) -> None:
        state.in_flight -= 1
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def returned(self) -> asyncio.Future:
        """A future of the caller's own (cancelling it touches no other waiter), resolved when a lease is given
        back: to wait for a key at its max_concurrent."""
        self._waiters = [w for w in self._waiters if not w.done()]
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append(waiter)
        if self.shared is not None:  # (another worker's lease may come back: look again soon)
            loop.call_later(SHARED_LOOK_AGAIN, _resolve, waiter)
        return waiter

    def resting(self, model: str = "", pick: Pick | None = None) -> Resting:
        """How long until a key may serve `model` again (when `pick` says to wait, or that none is free): as the
        decision that made `pick` saw it, if it was not the pool's alone (a shared pick knows every worker's rests)."""
        if pick is not None and pick.resting is not None:
            return pick.resting
        now = self._clock()
        usable = [s for s in self.states if s.out is None]
        if not usable:
            return Resting(math.inf, rejected=True)
        waits = {s: max(0.0, s.rest_until(model, now) - now) for s in usable}
        soonest = min(waits.values())
        busy = soonest == 0 and all(s.at_cap() for s, w in waits.items() if w == 0)
        return Resting(soonest, rejected=False, busy=busy)

    def rests_past(self, seconds: float, model: str = "") -> bool:
        """No key may serve `model` within `seconds`: each is out, cooling down or resting after a stall longer."""
        now = self._clock()
        return all(max(s.rest_until(model, now), s.slow_until) > now + seconds for s in self.states)

    # -- how keys did ----------------------------------------------------------------------------------------

    def succeeded(self, key: str) -> None:
        """The key answered: forget its failures and stalls."""
        state = self._by_secret.get(key)
        if state is None or not (state.failures or state.stalls):
            return
        state.failures = state.stalls = 0
        was_slow, state.slow_until = state.slow_until > self._clock(), 0.0
        self.dirty = True
        if was_slow:
            self._changed(self._clock())

    def failed(self, key: str, failure: Failure, model: str = "") -> float | None:
        """Rest `key` as its failed attempt at `model` deserves. Returns the rest after a stall, if it stalled."""
        if failure.stalled:
            return self.stalled(key)
        rest, state = failure.rest, self._by_secret.get(key)
        if rest is None or state is None:
            return None
        if rest.out:
            self.reject(key, rest.why)
            return None
        state.failures += 1
        seconds = failure.delay if failure.delay is not None else self.backoff(state.failures)
        self.bench(key, seconds, model if rest.per_model else WHOLE_KEY, rest.why)
        return None

    def backoff(self, failures: int) -> float:
        """A cooldown that no answer named: exponential in the failures in a row, jittered so that keys rested
        together do not all come back at once."""
        return backoff(failures - 1, base=BACKOFF_BASE, cap=BACKOFF_MAX, jitter=0.5, rng=self._rng)

    def bench(self, key: str, seconds: float, model: str = WHOLE_KEY, why: str = "rate limited",
              rejected: bool = False, share: bool = True) -> None:
        """Rest `key` for `seconds` (for `model` only, if given); a longer rest it already has stays. `rejected`:
        the vendor refused it (see `reject`; `seconds` does not matter then). `share`: tell the other workers
        (off for a rest learned from them)."""
        if rejected:
            self.reject(key, "rejected by the vendor (401/403)")
            return
        state = self._by_secret.get(key)
        if state is None:
            return
        now = self._clock()
        until = now + max(0.0, seconds)
        current = state.rests.get(model)
        if current is not None and current.until >= until:
            return
        state.rests[model] = Rest(until, why)
        if self.shared is not None and share:
            self.shared.rest(state, model, seconds, why)
        self.dirty = True
        self._changed(now)

    def reject(self, key: str, why: str = "rejected") -> None:
        """The vendor refused the key: out until the config is reloaded; said once, loudly."""
        state = self._by_secret.get(key)
        if state is None or state.out is not None:
            return
        state.out = why
        self.dirty = True
        logger.log(ALERT, "rotator: %s key %s was refused by the vendor (%s): it is not used again until the "
                   "config is reloaded", self.name or "pool", state.masked, why)
        self._changed(self._clock())

    def stalled(self, key: str) -> float:
        """The key produced nothing in time, or could not be reached: rest it, longer for each failure in a row.
        Returns the rest in seconds."""
        state = self._by_secret.get(key)
        if state is None:
            return 0.0
        state.stalls += 1
        rest = backoff(state.stalls - 1, base=STALL_REST, cap=STALL_REST_MAX)
        now = self._clock()
        state.slow_until = now + rest
        self._changed(now)
        return rest

    def record_usage(self, key: str, model: str, tokens: int, cost: float | None) -> None:
        """Count an answer served by `key` (the pooled key itself): its tokens (input, output, reasoning and cache
        tokens, each once) and its cost in dollars, None when the model has no known price."""
        state = self._by_secret.get(key)
        if state is not None:
            wall = self._wall()
            state.usage.answered(model, tokens, cost, wall)
            if self.shared is not None:
                self.shared.count(state, model, wall, tokens=max(0, int(tokens)), cost=cost or 0.0,
                                  unpriced=int(cost is None))
            self.dirty = True

    def describe(self) -> dict:
        """The pool as JSON for `rotator.pools` and the status page (rewrite/pool/report.py)."""
        return describe(self, self._clock(), self._wall())

    # -- the log line ----------------------------------------------------------------------------------------

    def _changed(self, now: float) -> None:
        """Log one summary line when a key's state (or the models it rests for) changed."""
        shown = tuple((s.state(now), tuple(sorted(s.active_rests(now)))) for s in self.states)
        ends = [r.until for s in self.states for r in s.rests.values() if r.until > now]
        ends += [s.slow_until for s in self.states if s.slow_until > now]
        self._next_change = min(ends, default=math.inf)
        if shown != self._shown:
            if self._shown or any(state != "ready" for state, _ in shown):
                logger.info("rotator: %s", summary(self, now, self._wall()))
            self._shown = shown

    # -- persistence (rewrite/state/records.py) ----------------------------------------------------------------------

    def name_keys(self, secret: bytes) -> None:
        """Name each key by its fingerprint under `secret`, the store's, before state is imported or exported."""
        for s in self.states:
            s.id = fingerprint(s.secret, secret)

    def export_state(self) -> dict[str, object]:
        """The pool's state as JSON records by name: rests on the wall clock, keys by fingerprint."""
        now, wall = self._clock(), self._wall()
        records: dict[str, object] = {"strategy": {"name": self.strategy.name, "position": self.strategy.position()}}
        for s in self.states:
            records[f"key:{s.id}"] = {
                "rests": {scope: [wall + r.until - now, r.why] for scope, r in s.active_rests(now).items()},
                "failures": s.failures,
                "usage": s.usage.snapshot(),
            }
        self.dirty = False
        return records

    def import_state(self, records: dict[str, object]) -> None:
        """Continue from `export_state`; what does not parse, or names keys no longer configured, is ignored."""
        now, wall = self._clock(), self._wall()
        strategy = records.get("strategy")
        if (isinstance(strategy, dict) and strategy.get("name") == self.strategy.name
                and isinstance(strategy.get("position"), dict)):
            self.strategy.restore(strategy["position"])
        for s in self.states:
            record = records.get(f"key:{s.id}")
            if not isinstance(record, dict):
                continue
            rests = record.get("rests")
            for scope, rest in (rests.items() if isinstance(rests, dict) else ()):
                if (isinstance(rest, list) and len(rest) == 2 and isinstance(rest[0], (int, float))
                        and math.isfinite(rest[0]) and rest[0] > wall and isinstance(scope, str)):
                    s.rests[scope] = Rest(now + rest[0] - wall, str(rest[1]))
            if isinstance(record.get("failures"), int):
                s.failures = max(0, record["failures"])
            s.usage.restore(record.get("usage"))
        self._changed(now)
