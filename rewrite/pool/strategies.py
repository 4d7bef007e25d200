"""How a pool chooses among its usable keys: one small class per strategy, registered by name.

A strategy sees only keys that may be used now (not resting, below their max_concurrent, not the key that just
failed when there is another), in config order, and picks one. What it remembers between picks is its position,
saved with the pool's state by key fingerprint (rewrite/state/records.py), so it survives a restart. A pool of one key
takes that key without asking its strategy (rewrite/pool/local.py, and the pick script alike: its position is not
moved).
"""

from __future__ import annotations

import time
from typing import ClassVar

from rewrite.pool.key_state import KeyState

STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    STRATEGIES[cls.name] = cls
    return cls


def strategy_named(name: str) -> type[Strategy]:
    """The strategy the config names; an unknown name is an error, never another strategy."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}: one of {', '.join(STRATEGIES)}") from None


class Strategy:
    name: ClassVar[str]

    def __init__(self, keys: list[KeyState], wall=time.time) -> None:
        self.keys = keys
        self.wall = wall  # the clock usage windows are kept on

    def choose(self, candidates: list[KeyState]) -> KeyState:
        raise NotImplementedError

    def position(self) -> dict:
        """What to save to continue where it was (JSON, keys named by fingerprint)."""
        return {}

    def restore(self, position: dict) -> None:
        """Continue from a saved position; ids of keys no longer configured are ignored."""


@register
class RoundRobin(Strategy):
    """Each key in turn, in config order, skipping keys that cannot be used now."""

    name = "round-robin"

    def __init__(self, keys: list[KeyState], wall=time.time) -> None:
        super().__init__(keys, wall)
        self.next = 0

    def choose(self, candidates: list[KeyState]) -> KeyState:
        usable = {id(k) for k in candidates}
        n = len(self.keys)
        for i in range(n):
            key = self.keys[(self.next + i) % n]
            if id(key) in usable:
                self.next = (self.next + i + 1) % n
                return key
        return candidates[0]

    def position(self) -> dict:
        return {"next": self.keys[self.next].id} if self.keys else {}

    def restore(self, position: dict) -> None:
        self.next = next((i for i, k in enumerate(self.keys) if k.id == position.get("next")), self.next)


@register
class FairCycle(Strategy):
    """Every usable key once per cycle before any is used again; a key back from a rest joins the current cycle."""

    name = "fair-cycle"

    def __init__(self, keys: list[KeyState], wall=time.time) -> None:
        super().__init__(keys, wall)
        self.used: set[str] = set()

    def choose(self, candidates: list[KeyState]) -> KeyState:
        fresh = [k for k in candidates if k.id not in self.used]
        if not fresh:  # every usable key had its turn: a new cycle
            self.used.clear()
            fresh = candidates
        key = fresh[0]
        self.used.add(key.id)
        return key

    def position(self) -> dict:
        return {"used": sorted(self.used)}

    def restore(self, position: dict) -> None:
        ids = {k.id for k in self.keys}
        used = position.get("used")
        if isinstance(used, list):
            self.used = {u for u in used if u in ids}


@register
class LeastUsed(Strategy):
    """The key with the fewest requests in flight, then the fewest tokens in the last hour, then the one chosen
    longest ago."""

    name = "least-used"

    def choose(self, candidates: list[KeyState]) -> KeyState:
        now = self.wall()
        return min(candidates, key=lambda k: (k.in_flight, k.usage.hour(now).tokens, k.last_pick))


@register
class Weighted(Strategy):
    """Keys in proportion to their `weight`, spread out evenly (smooth weighted round-robin, as nginx does it)."""

    name = "weighted"

    def __init__(self, keys: list[KeyState], wall=time.time) -> None:
        super().__init__(keys, wall)
        self.current: dict[str, float] = {}

    def choose(self, candidates: list[KeyState]) -> KeyState:
        total = 0.0
        for k in candidates:
            self.current[k.id] = self.current.get(k.id, 0.0) + k.weight
            total += k.weight
        key = max(candidates, key=lambda k: self.current[k.id])
        self.current[key.id] -= total
        return key

    def position(self) -> dict:
        return {"current": dict(self.current)}

    def restore(self, position: dict) -> None:
        ids = {k.id for k in self.keys}
        current = position.get("current")
        if isinstance(current, dict):
            self.current = {i: float(v) for i, v in current.items()
                            if i in ids and isinstance(v, (int, float)) and not isinstance(v, bool)}


@register
class Priority(Strategy):
    """The keys of the first `tier` (1 before 2), round-robin among them; a later tier only when no key of an
    earlier one can be used (resting, out, or at its max_concurrent)."""

    name = "priority"

    def __init__(self, keys: list[KeyState], wall=time.time) -> None:
        super().__init__(keys, wall)
        self.tiers = {t: RoundRobin([k for k in keys if k.tier == t]) for t in sorted({k.tier for k in keys})}

    def choose(self, candidates: list[KeyState]) -> KeyState:
        tier = min(k.tier for k in candidates)
        return self.tiers[tier].choose([k for k in candidates if k.tier == tier])

    def position(self) -> dict:
        return {str(t): rr.position() for t, rr in self.tiers.items()}

    def restore(self, position: dict) -> None:
        for t, rr in self.tiers.items():
            if isinstance(position.get(str(t)), dict):
                rr.restore(position[str(t)])
