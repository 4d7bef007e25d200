"""The decision trail: for every attempt of a pooled request, which keys were candidates, which one was taken and
why (the conversation bound to it, a hard pin, the strategy's order, the most quota headroom), and why each other
one was passed over (resting until when and why, out after the vendor refused it, over a quota window or cap, at its
max_concurrent, not holding the conversation's state), as this worker knew the pool at the pick. Recorded in the
flow's `rotator.trail` (saved flows carry it) and shown in the LLM view's header; keys masked, as everywhere.

Built only on the spine's events (`picked`, `ended`, `raced`): it is the proof that a concern plugs in without a line
in the spine."""

from __future__ import annotations

import time

from protocols.windows import iso
from rewrite.lifecycle.events import Ended, Picked, Raced
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.setting import Setting
from rewrite.lifecycle.views import RequestView
from rewrite.pool.affinity import BOUND, COMPACTION, MOVED, NEW, Affinity
from rewrite.pool.decisions import Pick
from rewrite.pool.key_state import KeyState
from rewrite.pool.keypool import KeyPool, masked_in

TRAIL = "trail"  # its name in the flow's `rotator` metadata


class DecisionTrail(Plugin):
    name = TRAIL

    def configure(self, setting: Setting) -> None:
        # A pool of one key has no choice to explain: without a pool of several, no request engages the trail.
        router = setting.router
        self.active = router is None or any(p.pool is not None and len(p.pool.states) > 1 for p in router.providers)

    def engage(self, ctx: RequestView) -> Part | None:
        return Trail(ctx)


class Trail(Part):
    def __init__(self, ctx: RequestView) -> None:
        self.job = ctx.job
        self.records: dict[int, dict] = {}  # by id() of the ticket

    def picked(self, e: Picked) -> None:
        pick, pool = e.ticket.pick, e.provider.pool
        if pick is None or pool is None or pick.key is None:
            return
        now, wall = pool.clock(), time.time()
        affinity = e.ask.affinity
        passed = dict(pick.passed)
        record = {
            "attempt": e.attempt + 1,
            "target": f"{e.provider.name}/{e.model}" if e.model else e.provider.name,
            "candidates": [s.masked for s in pool.states],
            "taken": masked_in(pool, pick.key),
            "why": (taken(pick, pool, affinity, e.ask.patient) if e.ask.prefer is None
                    else raced(pick, pool, e.ask.prefer)),
            "passed": [{"key": s.masked, "why": passed_over(s, pick, pool, affinity, e.model, e.ask.avoid,
                                                            passed.get(s.secret), now, wall)}
                       for s in pool.states if s.secret != pick.key],
        }
        self.job.records.setdefault(TRAIL, []).append(record)
        self.records[id(e.ticket)] = record

    def ended(self, e: Ended) -> None:
        record = self.records.get(id(e.ticket))
        if record is not None:
            record["outcome"] = "served" if e.failure is None else f"failed: {e.failure.reason}"

    def raced(self, e: Raced) -> None:
        record = self.records.get(id(e.loser)) if e.loser is not None else None
        if record is not None:
            record["outcome"] = "cancelled: the attempt raced beside it answered first"


def taken(pick: Pick, pool: KeyPool, affinity: Affinity | None, patient: bool) -> str:
    """Why the pick took its key, in words."""
    if pick.why == BOUND and affinity is not None:
        if affinity.hard:
            return f"a hard pin: its account holds the conversation's {affinity.said}"
        return f"the conversation is bound to it ({affinity.said})"
    if pick.why == NEW:
        return "a new conversation: placed on the key with the fewest live conversations and the most quota headroom"
    if pick.why == MOVED:
        gone = f"its bound key {masked_in(pool, pick.bound)}" if pick.bound else "its bound key"
        return f"the conversation moved here: {gone} could not serve" + ("" if patient else " (busy past the wait)")
    if pick.why == COMPACTION:
        return "the conversation was compacted: placed again as a new one"
    if pick.wait:
        return f"every key rests: this one is back first (in {pick.wait:.1f} s)"
    return f"the strategy's order ({pool.strategy.name})"


def raced(pick: Pick, pool: KeyPool, first: str) -> str:
    """Why a race's second attempt took its key, in words."""
    if pick.key == first:
        return "a second attempt raced beside the first, on the same key (its prompt cache is there)"
    return (f"a second attempt raced beside the first: the first's key {masked_in(pool, first)} could take no other "
            "request now")


def passed_over(state: KeyState, pick: Pick, pool: KeyPool, affinity: Affinity | None, model: str,
                avoid: str | None, window_reset: float | None, now: float, wall: float) -> str:
    """Why a key other than the one taken was not taken, in words."""
    if state.out is not None:
        return f"out: {state.out}"
    until = state.rest_until(pool.quotas.scope(model), now)
    if until > now:
        rest = next((r for r in state.active_rests(now).values() if r.until == until), None)
        return f"resting until {iso(wall + until - now)}" + (f" ({rest.why})" if rest is not None else "")
    if state.slow_until > now:
        return f"resting after a stall until {iso(wall + state.slow_until - now)}"
    if window_reset is not None:
        return f"over a quota window or cap the request counts in (resets {iso(wall + window_reset)})"
    if state.at_cap():
        return f"at its max_concurrent ({state.max_concurrent})"
    if state.secret == avoid:
        return "it just failed this request"
    if affinity is not None and affinity.hard and pick.why == BOUND:
        return "it does not hold the conversation's state (another account's)"
    if pick.why == BOUND:
        return "ready, but the conversation is bound to another key"
    if pick.why in (NEW, COMPACTION):
        return "ready, with more live conversations or less quota headroom"
    return "ready, not next in the strategy's order"
