"""Small statistics helpers shared by the client and the report."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of `values` (need not be sorted); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def pcts(values: Sequence[float], ps: Sequence[float]) -> list[float | None]:
    if not values:
        return [None for _ in ps]
    s = sorted(values)
    out = []
    for p in ps:
        k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
        out.append(s[k])
    return out


def median(values: Sequence[float]) -> float | None:
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def summary(values: Sequence[float | None]) -> dict:
    """Median, min and max over repetitions (None values are ignored)."""
    v = [x for x in values if x is not None]
    if not v:
        return {"median": None, "min": None, "max": None, "reps": list(values)}
    return {"median": median(v), "min": min(v), "max": max(v), "reps": list(values)}
