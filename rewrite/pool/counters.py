"""What one pooled key did: requests, tokens and cost, in the last hour and in all.

The hour is kept as minute buckets on the wall clock, so it means the same after a restart
(see rewrite/state/records.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

BUCKET = 60  # seconds
WINDOW = 3600  # the "last hour"


@dataclass
class Counts:
    requests: int = 0  # upstream attempts made with the key
    tokens: int = 0
    cost: float = 0.0  # in dollars, of the answers whose price is known
    unpriced: int = 0  # answers whose cost is unknown (a model missing from the price table): not counted as 0

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.tokens += other.tokens
        self.cost += other.cost
        self.unpriced += other.unpriced

    @classmethod
    def from_json(cls, data) -> Counts:
        if not isinstance(data, dict):
            return cls()
        out = cls()
        for name, kind in (("requests", int), ("tokens", int), ("cost", float), ("unpriced", int)):
            value = data.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                setattr(out, name, kind(value))
        return out


class Usage:
    """One key's counters."""

    def __init__(self) -> None:
        self.total = Counts()
        self.by_model: dict[str, Counts] = {}  # requests, tokens and cost per model, in all
        self._minutes: deque[tuple[int, Counts]] = deque()  # (minute start, counts), oldest first

    def _bucket(self, now: float) -> Counts:
        minute = int(now // BUCKET) * BUCKET
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append((minute, Counts()))
            while self._minutes and self._minutes[0][0] <= minute - WINDOW:
                self._minutes.popleft()
        return self._minutes[-1][1]

    def request(self, model: str, now: float) -> None:
        self.total.requests += 1
        self._bucket(now).requests += 1
        self.by_model.setdefault(model, Counts()).requests += 1

    def answered(self, model: str, tokens: int, cost: float | None, now: float) -> None:
        tokens = max(0, int(tokens))
        counts = Counts(tokens=tokens, cost=cost or 0.0, unpriced=int(cost is None))
        self.total.add(counts)
        self._bucket(now).add(counts)
        self.by_model.setdefault(model, Counts()).add(counts)

    def hour(self, now: float) -> Counts:
        out = Counts()
        for minute, counts in self._minutes:
            if minute > now - WINDOW:
                out.add(counts)
        return out

    def snapshot(self) -> dict:
        return {"total": asdict(self.total), "by_model": {m: asdict(c) for m, c in self.by_model.items()},
                "minutes": [[m, asdict(c)] for m, c in self._minutes]}

    def restore(self, data) -> None:
        if not isinstance(data, dict):
            return
        self.total = Counts.from_json(data.get("total"))
        models = data.get("by_model")
        self.by_model = {str(m): Counts.from_json(c) for m, c in models.items()} if isinstance(models, dict) else {}
        minutes = data.get("minutes")
        self._minutes = deque(
            (int(m[0]), Counts.from_json(m[1])) for m in (minutes if isinstance(minutes, list) else [])
            if isinstance(m, list) and len(m) == 2 and isinstance(m[0], (int, float))
        )
