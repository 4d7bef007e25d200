"""Re-checks of long rests: a key resting longer than the pool's `recheck_after` (a quota that does not clear by
waiting, a retry-after of hours, a daily quota) gets one live request once that wait has passed, the next request the
pool would have given it, while every other request keeps avoiding it. Its answer decides: a success ends the rest at
once (for every model of the quota it rested for), a refusal renews it from the new answer, and the wait before the
next re-check doubles (jittered by at most 20 %); a re-check due after the rest's own end is never made.

A rest's schedule is its `check_at` and `interval` (rewrite/pool/key_state.py `Rest`), set when the books take a rest
(`schedule`); a pick that takes a key whose every rest for the model is due claims the re-check (`claim`: the next one
is moved out at once, so that no other pick, of this worker or with `state.redis` of another, makes a second one while
it is in flight) and names its rests in `KeyState.checking` until the answer (`Rechecks`, told by `KeyRests`). None of
this runs for a key that does not rest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol

from protocols.windows import iso
from rewrite.pool.decisions import Decisions
from rewrite.pool.key_state import WHOLE_KEY, KeyState, Rest
from rewrite.pool.windows import Quotas

logger = logging.getLogger("rotator")

JITTER = 0.2  # at most this share of a doubled wait, either way


def schedule(current: Rest | None, seconds: float, why: str, now: float, wall: float, recheck_after: float) -> Rest:
    """The rest of `seconds` from `now` that the books keep: a rest still running keeps when it began and its
    re-checks; a new one longer than `recheck_after` (0: never) is first re-checked after that long."""
    until = now + max(0.0, seconds)
    if current is not None and current.until > now:
        rest = Rest(until, why, current.since, current.check_at, current.interval)
    else:
        rest = Rest(until, why, wall)
    if recheck_after > 0 and seconds > recheck_after and rest.check_at == math.inf:
        rest.check_at, rest.interval = now + recheck_after, recheck_after
    return rest


def claim(state: KeyState, model: str, now: float, rng: Callable[[], float]) -> str:
    """A pick took `state` for a re-check of its rests for `model` (each due): the next re-check of each is moved to
    twice the last wait from now, jittered; returns what the decision trail says of it."""
    scopes = tuple(s for s in ((WHOLE_KEY, model) if model else (WHOLE_KEY,))
                   if (r := state.rests.get(s)) is not None and r.until > now)
    for scope in scopes:
        rest = state.rests[scope]
        rest.interval *= 2
        rest.check_at = now + rest.interval * (1 + JITTER * (2 * rng() - 1))
    state.checking = scopes
    first = state.rests[scopes[0]] if scopes else None
    return said(first.since, first.why) if first is not None else "re-check of a rest"


def said(since: float, why: str) -> str:
    """The decision trail's words for a re-check: "re-check of a rest since T (insufficient_quota)": the vendor's
    name for the quota when the rest's reason gives it ("out of quota (insufficient_quota), status 429"), else the
    reason without its status."""
    reason = why.partition(", status ")[0]
    if reason.endswith(")") and " (" in reason:
        reason = reason[reason.rindex(" (") + 2:-1]
    return f"re-check of a rest since {iso(since)} ({reason})" if since else f"re-check of a rest ({reason})"


def next_check(rest: Rest, now: float, wall: float) -> float | None:
    """When (wall clock) a resting key is next re-checked; None when it is not before its rest ends."""
    return wall + rest.check_at - now if rest.check_at < rest.until else None


class RecheckedPool(Protocol):
    """What a re-check's answer needs of its pool (rewrite/pool/keypool.py's KeyPool)."""

    name: str
    quotas: Quotas
    dirty: bool

    @property
    def decisions(self) -> Decisions: ...
    def clock(self) -> float: ...


class Rechecks:
    """What a re-check's answer does to the rests it tested (`KeyState.checking`), told by `KeyRests`."""

    def __init__(self, pool: RecheckedPool) -> None:
        self.pool = pool

    def _tested(self, state: KeyState, model: str) -> tuple[str, ...]:
        scopes = (WHOLE_KEY, self.pool.quotas.scope(model)) if model else (WHOLE_KEY,)
        return tuple(s for s in state.checking if s in scopes)

    def succeeded(self, state: KeyState, model: str) -> None:
        """The re-check was served: its rests end now."""
        tested, state.checking = self._tested(state, model), ()
        books, now = self.pool.decisions.books, self.pool.clock()
        for scope in tested:  # (with state.redis, this worker may not have seen the rest yet: Redis holds it)
            rest = state.rests.get(scope)
            books.recovered(state, scope)
            self.pool.dirty = True
            known = rest is not None and rest.until > now and rest.since
            since = f" since {iso(rest.since)} ({rest.why})" if known and rest is not None else ""
            logger.info("rotator: %s key %s serves again%s: a re-check ended its rest%s", self.pool.name or "pool",
                        state.masked, f" for {scope}" if scope else "", since)

    def failed(self, state: KeyState, model: str, seconds: float | None, why: str) -> bool:
        """The re-check was answered without service: with a refusal that rests the key (`seconds`), its rests are
        renewed from that answer (their next re-check already moved out by the claim). Returns whether it did."""
        tested, state.checking = self._tested(state, model), ()
        if seconds is None or not tested:
            return False
        for scope in tested:
            self.pool.decisions.books.renew(state, scope, seconds, why)
        self.pool.dirty = True
        return True
