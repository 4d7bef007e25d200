"""What one pooled key did: requests, tokens and cost, in the last hour and in all; and how its prompts met the
vendor's prompt cache (input tokens, those read from the cache, those written to it, and what the writes cost above
reading them: what its cold prefixes cost).

The hour is kept as minute buckets on the wall clock, so it means the same after a restart
(see rewrite/state/records.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, fields

BUCKET = 60  # seconds
WINDOW = 3600  # the "last hour"


@dataclass
class Counts:
    requests: int = 0  # upstream attempts made with the key
    tokens: int = 0
    cost: float = 0.0  # in dollars, of the answers whose price is known
    unpriced: int = 0  # answers whose cost is unknown (a model missing from the price table): not counted as 0
    input_tokens: int = 0  # of `tokens`: the prompts', cached or not
    cache_read_tokens: int = 0  # of `input_tokens`: read from the vendor's prompt cache
    cache_write_tokens: int = 0  # of `input_tokens`: written to it (a prefix the cache did not hold)
    cold_cost: float = 0.0  # dollars the cache writes cost above reading the same tokens from the cache

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.tokens += other.tokens
        self.cost += other.cost
        self.unpriced += other.unpriced
        self.input_tokens += other.input_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cold_cost += other.cold_cost

    def cache_share(self) -> float | None:
        """The share of the input read from the prompt cache; None before any input."""
        return self.cache_read_tokens / self.input_tokens if self.input_tokens else None

    @classmethod
    def from_json(cls, data) -> Counts:
        if not isinstance(data, dict):
            return cls()
        out = cls()
        for f in COUNTED:
            value = data.get(f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                setattr(out, f.name, float(value) if f.type == "float" else int(value))
        return out


COUNTED = fields(Counts)
NAMES = tuple(f.name for f in COUNTED)  # (a name ending in "cost" counts dollars: rewrite/state/redis/usage.py)


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

    def answered(self, model: str, counts: Counts, now: float) -> None:
        """An answer's tokens and cost (`counts`, its `requests` 0: the attempt was counted by `request`)."""
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
