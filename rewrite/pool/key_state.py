"""One pooled key as the pool sees it: its settings, its rests, its leases and its counters.

Its counters (`KeyCounters`): what it did, requests, tokens and cost, in the last hour and in all; and how its prompts
met the vendor's prompt cache (input tokens, those read from the cache, those written to it, and what the writes cost
above reading them: what its cold prefixes cost). The hour is kept as minute buckets on the wall clock, so it means
the same after a restart (see rewrite/state/records.py).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields

from rewrite.pool.windows import WindowTally

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


class KeyCounters:
    """One key's counters."""

    def __init__(self) -> None:
        self.total = Counts()
        self.by_model: dict[str, Counts] = {}  # requests, tokens and cost per model, in all
        self._minutes: deque[tuple[int, Counts]] = deque()  # (minute start, counts), oldest first
        self.changes = 0  # how many times the counters changed (counted or restored): has this view moved since

    def _bucket(self, now: float) -> Counts:
        minute = int(now // BUCKET) * BUCKET
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append((minute, Counts()))
            while self._minutes and self._minutes[0][0] <= minute - WINDOW:
                self._minutes.popleft()
        return self._minutes[-1][1]

    def request(self, model: str, now: float) -> None:
        self.changes += 1
        self.total.requests += 1
        self._bucket(now).requests += 1
        self.by_model.setdefault(model, Counts()).requests += 1

    def answered(self, model: str, counts: Counts, now: float) -> None:
        """An answer's tokens and cost (`counts`, its `requests` 0: the attempt was counted by `request`)."""
        self.changes += 1
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
        self.changes += 1
        self.total = Counts.from_json(data.get("total"))
        models = data.get("by_model")
        self.by_model = {str(m): Counts.from_json(c) for m, c in models.items()} if isinstance(models, dict) else {}
        minutes = data.get("minutes")
        self._minutes = deque(
            (int(m[0]), Counts.from_json(m[1])) for m in (minutes if isinstance(minutes, list) else [])
            if isinstance(m, list) and len(m) == 2 and isinstance(m[0], (int, float))
        )


WHOLE_KEY = ""  # the scope of a rest that holds for every model
# Names keys until a store gives its own secret (KeyPool.name_keys): a state kept in memory uses this one.
PROCESS_SECRET = os.urandom(32)


SHOWN_AT_MOST = 8  # characters of a key a mask shows, and never more than a quarter of it
SHOWN_TAIL = 4  # of which at its end: what tells a pool's keys apart (a vendor's dashboard names a key by its end)


def mask(key: str) -> str:
    """A form of a key that identifies it to its owner without revealing it: at most a quarter of its characters
    and never more than 8: its end (`…wxyz`, fewer under 16 characters), and its start where two or more more fit
    (`sk…wxyz` from 24 characters, `sk-p…wxyz` from 32); a cloud key pooled in one region, `<key>@<region>`: the key
    masked, its region shown."""
    secret, at, region = key.rpartition("@")
    if at and _REGION.match(region):
        return f"{mask(secret)}@{region}"
    shown = min(len(key) // 4, SHOWN_AT_MOST)
    tail = min(shown, SHOWN_TAIL)
    head = shown - tail if shown - tail >= 2 else 0
    return f"{key[:head]}…{key[len(key) - tail:] if tail else ''}"


def distinguish(states: list[KeyState]) -> None:
    """A pool's keys that mask alike (short keys, or keys that end alike) are told apart by their place in the
    pool's `keys` (`…a01 #2`): the form the status page, the flows and the logs show of each."""
    alike = Counter(s.masked for s in {s.secret: s for s in states}.values())
    for i, s in enumerate(states):
        if alike[s.masked] > 1:
            s.masked = f"{s.masked} #{i + 1}"


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+\Z")


def fingerprint(key: str, secret: bytes = PROCESS_SECRET) -> str:
    """How a key is named where it is stored (rewrite/state/records.py), never the key: keyed with the store's secret,
    so that a stored name confirms no guessed key to whoever lacks the secret."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:24]


@dataclass
class Rest:
    until: float  # on the pool's monotonic clock
    why: str
    since: float = 0.0  # when it began, on the wall clock
    # A long rest's re-check (rewrite/pool/recheck.py): when one live request is next let through to the key (on the
    # monotonic clock; inf: never), and the wait before it, doubled at each re-check.
    check_at: float = math.inf
    interval: float = 0.0


@dataclass(eq=False)
class KeyState:
    secret: str
    weight: float = 1.0
    tier: int = 1
    max_concurrent: int | None = None
    id: str = ""  # fingerprint(secret)
    masked: str = ""
    in_flight: int = 0  # leases out
    rests: dict[str, Rest] = field(default_factory=dict)  # by model, WHOLE_KEY for every model
    out: str | None = None  # why the vendor refused it; then it is not used until the config is reloaded
    failures: int = 0  # answers in a row that rested it without naming a delay, or with one (for the backoff)
    stalls: int = 0  # stalls in a row (see KeyRests.stalled)
    slow_until: float = 0.0  # resting after a stall: used only when no other key is ready
    last_pick: int = 0  # the pool's pick counter when it was last chosen
    usage: KeyCounters = field(default_factory=KeyCounters)
    windows: dict[str, WindowTally] = field(default_factory=dict)  # its quota windows, by "window|unit" (windows.py)
    checking: tuple[str, ...] = ()  # the scopes of the rests its re-check in flight tests (rewrite/pool/recheck.py)

    def __post_init__(self) -> None:
        self.id = self.id or fingerprint(self.secret)
        self.masked = self.masked or mask(self.secret)

    def rest_until(self, model: str, now: float) -> float:
        """When the key may serve `model` again (0 when it may now); inf when it is out."""
        if self.out is not None:
            return math.inf
        until = 0.0
        for scope in (WHOLE_KEY, model) if model else (WHOLE_KEY,):
            rest = self.rests.get(scope)
            if rest is not None and rest.until > now:
                until = max(until, rest.until)
        return until

    def due(self, model: str, now: float, by: float | None = None) -> bool:
        """It rests for `model` and each of those rests is due a re-check (by `by`, else now): one live request may go
        (rewrite/pool/recheck.py)."""
        if self.out is not None:
            return False
        by = now if by is None else by
        resting = False
        for scope in (WHOLE_KEY, model) if model else (WHOLE_KEY,):
            rest = self.rests.get(scope)
            if rest is not None and rest.until > now:
                if rest.check_at > by:
                    return False
                resting = True
        return resting

    def active_rests(self, now: float) -> dict[str, Rest]:
        return {scope: r for scope, r in self.rests.items() if r.until > now}

    def at_cap(self) -> bool:
        return self.max_concurrent is not None and self.in_flight >= self.max_concurrent

    def state(self, now: float) -> str:
        """ready, resting or out (a key resting for some models only is resting)."""
        if self.out is not None:
            return "out"
        return "resting" if self.active_rests(now) or self.slow_until > now else "ready"
