"""The log's summary line of a pool's keys (`StateLine`): how many are ready, resting and out, and why each that is not
ready is not, written when it changes. Keys appear masked only.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable

from rewrite.pool.key_state import KeyState

logger = logging.getLogger("rotator")


def _clock_time(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def active_rests(s: KeyState, now: float, wall: float) -> list[dict]:
    """Each rest running: its model (None: the whole key), end and reason on the wall clock, and when the key is next
    re-checked, when that is before the end (rewrite/pool/recheck.py)."""
    rests = [{"model": scope or None, "until": wall + r.until - now, "why": r.why,
              **({"recheck": wall + r.check_at - now} if r.check_at < r.until else {})}
             for scope, r in sorted(s.active_rests(now).items())]
    if s.slow_until > now:
        rests.append({"model": None, "until": wall + s.slow_until - now, "why": "stalled (used if no other key is)"})
    return rests


def _rest_text(rest: dict, wall: float) -> str:
    model = f" for {rest['model']}" if rest["model"] else ""
    recheck = (f", re-checked at {_clock_time(rest['recheck'])} (in {max(0, round(rest['recheck'] - wall))} s)"
               if "recheck" in rest else "")
    return (f"resting{model} until {_clock_time(rest['until'])} (in {max(0, round(rest['until'] - wall))} s): "
            f"{rest['why']}{recheck}")


def state_text(s: KeyState, now: float, wall: float) -> str:
    if s.out is not None:
        return f"out: {s.out}"
    return "; ".join(_rest_text(r, wall) for r in active_rests(s, now, wall)) or "ready"


def summary(name: str, states: list[KeyState], now: float, wall: float) -> str:
    """One line: how many keys are ready, resting and out, and why each key that is not ready is not."""
    counts = Counter(s.state(now) for s in states)
    head = f"{name or 'pool'} keys: {counts['ready']} ready, {counts['resting']} resting, {counts['out']} out"
    details = [f"{s.masked} {state_text(s, now, wall)}" for s in states if s.state(now) != "ready"]
    return head + ("; " + "; ".join(details) if details else "")


class StateLine:
    """The log's summary line of a pool, written once each time a key's state (or the models it rests for) changes:
    when told (`changed`), and when a rest has ended by the time of a pick (which reads `next_change`, a plain
    attribute: a pick calls `changed` only then)."""

    def __init__(self, name: str, states: list[KeyState], wall: Callable[[], float] = time.time) -> None:
        self.name, self.states, self._wall = name, states, wall
        self._shown: tuple = ()  # the key states last logged
        self.next_change = math.inf  # when the soonest rest ends (monotonic clock)

    def changed(self, now: float) -> None:
        shown = tuple((s.state(now), tuple(sorted(s.active_rests(now)))) for s in self.states)
        ends = [r.until for s in self.states for r in s.rests.values() if r.until > now]
        ends += [s.slow_until for s in self.states if s.slow_until > now]
        self.next_change = min(ends, default=math.inf)
        if shown != self._shown:
            if self._shown or any(state != "ready" for state, _ in shown):
                logger.info("rotator: %s", summary(self.name, self.states, now, self._wall()))
            self._shown = shown
