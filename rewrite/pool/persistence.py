"""A pool's state kept over a restart (rewrite/state/records.py stores it): rests and quota windows on the wall
clock, failures, usage, the strategy's position and the conversation bindings, each key by its fingerprint id."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rewrite.pool.key_state import Rest
from rewrite.pool.windows import WindowTally

if TYPE_CHECKING:
    from rewrite.pool.keypool import KeyPool


def export_state(pool: KeyPool) -> dict[str, object]:
    """The pool's state as JSON records by name: rests and conversation bindings on the wall clock, keys by
    fingerprint (with `state.redis`, the bindings every worker follows are Redis's; these are this worker's)."""
    now, wall = pool.clock(), pool.wall()
    records: dict[str, object] = {"strategy": {"name": pool.strategy.name, "position": pool.strategy.position()}}
    for s in pool.states:
        records[f"key:{s.id}"] = {
            "rests": {scope: [wall + r.until - now, r.why, r.since, wall + min(r.check_at, r.until) - now, r.interval]
                      for scope, r in s.active_rests(now).items()},
            "failures": s.failures,
            "usage": s.usage.snapshot(),
            "windows": {f: [t.left, t.limit, t.reset, t.reserve] for f, t in s.windows.items() if t.reset > wall},
        }
    records["bindings"] = pool.local.books.bindings.export([s.id for s in pool.states], wall)
    pool.dirty = False
    return records


def import_state(pool: KeyPool, records: dict[str, object]) -> None:
    """Continue from `export_state`; what does not parse, or names keys no longer configured, is ignored."""
    now, wall = pool.clock(), pool.wall()
    strategy = records.get("strategy")
    if (isinstance(strategy, dict) and strategy.get("name") == pool.strategy.name
            and isinstance(strategy.get("position"), dict)):
        pool.strategy.restore(strategy["position"])
    for s in pool.states:
        record = records.get(f"key:{s.id}")
        if not isinstance(record, dict):
            continue
        rests = record.get("rests")
        for scope, rest in (rests.items() if isinstance(rests, dict) else ()):
            if (isinstance(rest, list) and len(rest) in (2, 5) and all(_number(v) for v in rest[:1] + rest[2:])
                    and rest[0] > wall and isinstance(scope, str)):
                s.rests[scope] = Rest(now + rest[0] - wall, str(rest[1]))
                if len(rest) == 5 and rest[3] < rest[0]:  # (its re-checks, rewrite/pool/recheck.py)
                    s.rests[scope].since, s.rests[scope].check_at = rest[2], now + rest[3] - wall
                    s.rests[scope].interval = rest[4]
        if isinstance(record.get("failures"), int):
            s.failures = max(0, record["failures"])
        s.usage.restore(record.get("usage"))
        kept = record.get("windows")
        for name, t in (kept.items() if isinstance(kept, dict) else ()):
            if (isinstance(t, list) and len(t) == 4 and all(isinstance(v, (int, float)) for v in t)
                    and all(map(math.isfinite, t)) and t[2] > wall):
                s.windows[str(name)] = WindowTally(*map(float, t))
    pool.local.books.bindings.restore(records.get("bindings"), [s.id for s in pool.states], wall)
    pool.line.changed(now)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
