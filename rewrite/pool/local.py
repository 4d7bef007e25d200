"""A pool's decisions made by this process alone, on the pool's own `KeyState`s (rewrite/pool/decisions.py), and
its books (`LocalBooks`: rests in those states, conversations in its `Bindings`).

A key is ready for `model` when it is neither out, nor resting for it (or whole), nor resting after a stall; free
when it is also below its max_concurrent. The strategy chooses among the free keys (not the one that just failed,
when there is another). When no key is ready, one resting after a stall is used at once, else the one back soonest.

A key over a quota window the request counts in (rewrite/pool/windows.py) is not ready either: it is back at the
window's reset. The key chosen has the request counted in its windows.

A request of a conversation (`affinity`, rewrite/pool/affinity.py) goes to the key its conversation is bound to
(`Bindings.lookup`) while that key is ready, not the one that just failed, and below its max_concurrent; at its cap
the pick waits for it (`patient`); a pin waits for its resting key. Otherwise, and for a new conversation or a
compaction, it is placed among the free keys: the fewest live conversations (capped at LIVE_CAP), then the most
quota headroom (to 0.05), then the strategy among those.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable

from rewrite.pool import recheck, windows
from rewrite.pool.affinity import BOUND, COMPACTED, COMPACTION, LIVE_CAP, MOVED, NEW, Affinity, KeyBinding
from rewrite.pool.decisions import Books, Decisions, Held, Pick, Prefetch, Resting
from rewrite.pool.key_state import KeyState
from rewrite.pool.state_line import StateLine
from rewrite.pool.strategies import strategy_named
from rewrite.pool.windows import NO_NEED, Check, Need, WindowTally

PURGE_AT = 4096  # bindings kept before the expired ones are looked for (then twice as many as are live)
PURGE_LIVE_AT = 64  # a key's conversations kept before its expired ones are looked for (likewise)


class Lease:
    """One attempt's hold on a key (its max_concurrent counts it, `KeyState.in_flight`), and the slot a shared pick
    took (`held`), given back exactly once (a context manager)."""

    __slots__ = ("_decisions", "held", "state")

    def __init__(self, decisions: LocalDecisions | None, state: KeyState | None, held: Held | None = None) -> None:
        self._decisions, self.state, self.held = decisions, state, held

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        decisions, self._decisions = self._decisions, None
        held, self.held = self.held, None
        if decisions is not None and self.state is not None:
            decisions.release(self.state)
        if held is not None:
            held.release()


class LocalDecisions(Decisions):
    books: LocalBooks

    def __init__(self, states: list[KeyState], strategy: str, line: StateLine,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: Callable[[], float] = random.random) -> None:
        self.states = states
        self.alone = len(states) == 1  # a pool of one key takes it without asking the strategy
        self.strategy = strategy_named(strategy)(states, wall)
        self.line = line  # the log line, told when a key's state changes
        self.clock, self.wall, self.rng = clock, wall, rng  # (rng: a re-check's jitter)
        self.books = LocalBooks(states, line, clock, wall)
        self._picks = 0
        self._waiters: list[asyncio.Future] = []  # callers waiting for a lease to come back

    # -- choosing a key --------------------------------------------------------------------------------------

    def pick(self, avoid: str | None, model: str, need: Need = NO_NEED, affinity: Affinity | None = None,
             patient: bool = True) -> Pick:
        now = self.clock()
        if now >= self.line.next_change:  # (a rest ended since: forgotten, and the log's line says so)
            for s in self.states:
                for scope in [scope for scope, r in s.rests.items() if r.until <= now]:
                    del s.rests[scope]
            self.line.changed(now)
        over = self._over(need)
        passed = tuple((s.secret, w) for s, w in over.items())
        ready = [s for s in self.states
                 if s.slow_until <= now and (s.rest_until(model, now) <= now or s.due(model, now)) and s not in over]
        free = [s for s in ready if not s.at_cap()]
        tags: dict = {}
        if affinity is not None:
            bound, tags = self._bound(affinity, avoid, ready, patient)
            if bound is not None:
                b = bound[0]
                wait = 0.0 if b in ready else max(0.0, b.rest_until(model, now) - now, over.get(b, 0.0))
                if bound[1]:  # (waiting for it at its max_concurrent)
                    return Pick(None, busy=True, passed=passed, **tags)
                return self.chosen(b, wait, need=need, passed=passed, model=model, **tags)
        if free:
            if self.alone:  # (a pool of one key: nothing to choose, no order to keep; the pick script says the same)
                return self.chosen(free[0], 0.0, need=need, passed=passed, model=model, **tags)
            candidates = [s for s in free if s.secret != avoid] or free
            choice = self.strategy.choose(self._placed(candidates, need) if affinity is not None else candidates)
            return self.chosen(choice, 0.0, need=need, passed=passed, model=model, **tags)
        if ready:
            return Pick(None, busy=True, passed=passed, **tags)
        # No key is ready: one resting after a stall is used at once, else the one back soonest.
        usable = [s for s in self.states if s.out is None and not s.at_cap()]
        if not usable:
            return Pick(None, math.inf, busy=any(s.out is None for s in self.states), passed=passed, **tags)

        def rank(s: KeyState) -> tuple:
            return (max(0.0, s.rest_until(model, now) - now, over.get(s, 0.0)), max(0.0, s.slow_until - now),
                    s.secret == avoid, s.last_pick)

        best = min(usable, key=rank)
        return self.chosen(best, rank(best)[0], need=need, passed=passed, **tags)

    def _bound(self, affinity: Affinity, avoid: str | None, ready: list[KeyState], patient: bool
               ) -> tuple[tuple[KeyState, bool] | None, dict]:
        """The conversation's bound key if it serves this pick (the key, and whether the pick waits for it at its
        max_concurrent), and the pick's why, bound key and conversation name (rewrite/pool/decisions.py)."""
        found = self.books.bindings.lookup(affinity, self.wall())
        if found is None:
            return None, {"why": NEW, "bind_as": affinity.name}
        binding, compaction = found
        b = self.states[binding.key]
        if compaction:
            return None, {"why": COMPACTION, "bind_as": affinity.name, "bound": b.secret}
        bound = {"why": BOUND, "bind_as": binding.name, "bound": b.secret}
        if b.secret != avoid and b in ready:
            if not b.at_cap():
                return (b, False), bound
            if patient:
                return (b, True), bound
        elif affinity.hard and b.out is None and b.secret != avoid and not b.at_cap():
            return (b, False), bound  # (a pin waits for its resting key)
        return None, {**bound, "why": MOVED}

    def _placed(self, candidates: list[KeyState], need: Need) -> list[KeyState]:
        """The keys a conversation is placed on: the fewest live conversations (capped), then the most quota
        headroom (to 0.05); the strategy chooses among them."""
        wall = self.wall()

        def rank(s: KeyState) -> tuple[int, int]:
            room = windows.headroom(s.windows, need, wall)
            return min(LIVE_CAP, self.books.bindings.live(self.books.index[id(s)], wall)), -math.floor(room * 20 + 0.5)

        ranks = [rank(s) for s in candidates]
        best = min(ranks)
        return [s for s, r in zip(candidates, ranks) if r == best]

    def chosen(self, state: KeyState, wait: float, held: Held | None = None, resting: Resting | None = None,
               need: Need = NO_NEED, passed: tuple[tuple[str, float], ...] = (), why: str = "",
               bound: str | None = None, bind_as: str = "", model: str | None = None) -> Pick:
        """The pick of `state` (also one made elsewhere: the strategies' ties go to the key picked longest ago);
        with a `need`, the request counted in its windows when it goes at once (a pick made elsewhere counted it
        there; one that waits for its key is counted when it goes, `KeyPool.lease`). `bound`: the conversation's
        bound key, named in the pick when it is not `state` or must be waited for. `model`: the pick's, made here: a
        key that rests for it is taken for its re-check (rewrite/pool/recheck.py)."""
        self._picks += 1
        state.last_pick = self._picks
        if need.checks and not wait:
            windows.picked(state.windows, need.checks, self.wall())
        bound = bound if bound != state.secret or wait else None
        pick = Pick(state.secret, wait, held=held, resting=resting, passed=passed, why=why, bound=bound,
                    bind_as=bind_as)
        if state.rests and model is not None and not wait and state.rest_until(model, now := self.clock()) > now:
            pick.recheck = recheck.claim(state, model, now, self.rng)
        return pick

    def _over(self, need: Need) -> dict[KeyState, float]:
        """The keys over a window that counts `need`'s request: seconds until its reset."""
        if not need.checks:
            return {}
        wall = self.wall()
        return {s: w for s in self.states if (w := windows.wait(s.windows, need, wall)) > 0}

    async def take(self, avoid: str | None, model: str, prefetch: Prefetch | None, need: Need = NO_NEED,
                   affinity: Affinity | None = None, patient: bool = True) -> Pick:
        return self.pick(avoid, model, need, affinity, patient)

    def prefetch(self, model: str, need: Need = NO_NEED, affinity: Affinity | None = None, patient: bool = True
                 ) -> Prefetch | None:
        return None

    def resting(self, model: str, pick: Pick | None = None, need: Need = NO_NEED) -> Resting:
        now, over = self.clock(), self._over(need)
        usable = [s for s in self.states if s.out is None]
        if not usable:
            return Resting(math.inf, rejected=True)
        waits = {s: max(0.0, s.rest_until(model, now) - now, over.get(s, 0.0)) for s in usable}
        soonest = min(waits.values())
        busy = soonest == 0 and all(s.at_cap() for s, w in waits.items() if w == 0)
        return Resting(soonest, rejected=False, busy=busy)

    def rests_past(self, seconds: float, model: str, need: Need = NO_NEED) -> bool:
        now, over = self.clock(), self._over(need)
        by = now + seconds
        return all(max(s.rest_until(model, now), s.slow_until, now + over.get(s, 0.0)) > by
                   and not (s.rests and s.slow_until <= by and s not in over and s.due(model, now, by))
                   for s in self.states)

    # -- leases ----------------------------------------------------------------------------------------------

    def lease(self, state: KeyState, held: Held | None) -> Lease:
        """Hold the key for one attempt until the lease is released (with `held`, a shared pick's slot)."""
        state.in_flight += 1
        return Lease(self, state, held)

    def release(self, state: KeyState) -> None:
        """A lease of the key ended (called by `Lease.release`, once): its waiters are told."""
        state.in_flight -= 1
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def returned(self) -> asyncio.Future:
        self._waiters = [w for w in self._waiters if not w.done()]
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter


class LocalBooks(Books):
    """What this process alone keeps account of: rests and windows in the pool's own `KeyState`s, conversations in
    its `Bindings`."""

    def __init__(self, states: list[KeyState], line: StateLine, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.line = line  # the log line, told when a key's state changes
        self.clock, self.wall = clock, wall
        self.index = {id(s): i for i, s in enumerate(states)}
        self.bindings = Bindings(len(states))
        self.recheck_after = 0.0  # a rest longer than this is re-checked after it (rewrite/pool/recheck.py; 0: never)

    # -- rests -----------------------------------------------------------------------------------------------

    def rest(self, state: KeyState, scope: str, seconds: float, why: str, share: bool = True) -> bool:
        now = self.clock()
        current = state.rests.get(scope)
        if current is not None and current.until >= now + max(0.0, seconds):
            return False
        state.rests[scope] = recheck.schedule(current, seconds, why, now, self.wall(), self.recheck_after)
        self.line.changed(now)
        return True

    def renew(self, state: KeyState, scope: str, seconds: float, why: str) -> None:
        now = self.clock()
        state.rests[scope] = recheck.schedule(state.rests.get(scope), seconds, why, now, self.wall(),
                                              self.recheck_after)
        self.line.changed(now)

    def recovered(self, state: KeyState, scope: str) -> None:
        state.rests.pop(scope, None)
        self.line.changed(self.clock())

    # -- conversations (`Bindings`) ---------------------------------------------------------------------------

    def bind(self, state: KeyState, affinity: Affinity, conversation: str, extra: tuple[str, ...] = ()) -> None:
        self.bindings.bind(self.index[id(state)], affinity, conversation, extra, self.wall())

    def unbind(self, state: KeyState, affinity: Affinity) -> None:
        self.bindings.unbind(self.index[id(state)], affinity)

    def live(self, state: KeyState) -> int:
        return self.bindings.live(self.index[id(state)], self.wall())

    # -- quota windows, counts ------------------------------------------------------------------------------

    def spend(self, state: KeyState, checks: tuple[Check, ...], amounts: dict[str, float], wall: float) -> None:
        windows.spend(state.windows, checks, amounts, wall)

    def report(self, state: KeyState, window: str, unit: str, tally: WindowTally) -> None:
        state.windows[windows.field_of(window, unit)] = tally

    def count(self, state: KeyState, model: str, wall: float, **amounts: float) -> None:
        """(The pool's own `KeyState.usage` is all there is to count in.)"""


class Bindings:
    """A pool's conversation bindings as this process alone keeps them (rewrite/pool/affinity.py says what they are):
    id -> `KeyBinding` (the key by its index in the pool, until when on the wall clock), and per key its live
    conversations, name -> until. Expired ones are dropped lazily, when a dict has grown past its bound (then twice
    the live ones): a bind costs the same however many conversations its key holds. Persisted with the pool
    (rewrite/pool/persistence.py): each binding's key by its fingerprint id, never its index or secret."""

    def __init__(self, keys: int) -> None:
        self.ids: dict[str, KeyBinding] = {}
        self.conversations: list[dict[str, float]] = [{} for _ in range(keys)]  # per key: name -> until (wall)
        self._purge_at = PURGE_AT
        self._purge_live_at = [PURGE_LIVE_AT] * keys

    def lookup(self, affinity: Affinity, wall: float) -> tuple[KeyBinding, bool] | None:
        """The binding of the first id looked up that is live and names a key of the pool, and whether the request
        is a compaction (found by its session only, its history far shorter than the bound turn's); the request's
        pin holder in its place when it names another key (under that binding's name)."""
        found = None
        for i in affinity.lookup:
            b = self.ids.get(i)
            if b is not None and b.until > wall and 0 <= b.key < len(self.conversations):
                found = b, i == affinity.session and affinity.depth < COMPACTED * b.depth
                break
        holder = affinity.holder
        if holder is None or not 0 <= holder < len(self.conversations) or (found and found[0].key == holder):
            return found
        return KeyBinding(holder, math.inf, found[0].name if found else affinity.name, affinity.depth), False

    def bind(self, index: int, affinity: Affinity, conversation: str, extra: tuple[str, ...], wall: float) -> None:
        until = wall + affinity.ttl
        binding = KeyBinding(index, until, conversation, affinity.depth)
        for i in (*affinity.bind, *extra):
            self.ids[i] = binding
        for n, live in enumerate(self.conversations):
            if n != index:
                live.pop(conversation, None)
        live = self.conversations[index]
        live[conversation] = until
        if len(live) > self._purge_live_at[index]:
            for name in [n for n, u in live.items() if u <= wall]:
                del live[name]
            self._purge_live_at[index] = max(PURGE_LIVE_AT, 2 * len(live))
        if len(self.ids) > self._purge_at:
            self.ids = {i: b for i, b in self.ids.items() if b.until > wall}
            self._purge_at = max(PURGE_AT, 2 * len(self.ids))

    def unbind(self, index: int, affinity: Affinity) -> None:
        names = {affinity.name}
        for i in (*affinity.lookup, *affinity.bind):
            b = self.ids.get(i)
            if b is not None and b.key == index:
                del self.ids[i]
                names.add(b.name)
        for name in names:
            self.conversations[index].pop(name, None)

    def live(self, index: int, wall: float) -> int:
        return sum(1 for u in self.conversations[index].values() if u > wall)

    # -- persistence -------------------------------------------------------------------------------------------

    def export(self, ids: list[str], wall: float) -> dict[str, object]:
        """The live bindings and conversations, keys by fingerprint id (`ids`, in config order)."""
        return {"ids": {i: [ids[b.key], b.until, b.name, b.depth] for i, b in self.ids.items() if b.until > wall},
                "live": {ids[n]: {c: u for c, u in live.items() if u > wall}
                         for n, live in enumerate(self.conversations) if live}}

    def restore(self, record: object, ids: list[str], wall: float) -> None:
        """Continue from `export`; what does not parse, is past, or names a key no longer configured is ignored."""
        if not isinstance(record, dict):
            return
        index = {fp: n for n, fp in enumerate(ids)}
        kept = record.get("ids")
        for i, b in (kept.items() if isinstance(kept, dict) else ()):
            if (isinstance(b, list) and len(b) == 4 and b[0] in index and _time(b[1]) > wall
                    and isinstance(b[2], str) and isinstance(b[3], int)):
                self.ids[str(i)] = KeyBinding(index[b[0]], float(b[1]), b[2], b[3])
        live = record.get("live")
        for fp, names in (live.items() if isinstance(live, dict) else ()):
            if fp in index and isinstance(names, dict):
                self.conversations[index[fp]].update({str(c): float(u) for c, u in names.items() if _time(u) > wall})


def _time(value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else -math.inf  # type: ignore[arg-type]
