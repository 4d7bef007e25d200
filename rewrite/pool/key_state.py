"""One pooled key as the pool sees it: its settings, its rests, its leases and its counters."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from dataclasses import dataclass, field

from rewrite.pool.counters import Usage
from rewrite.pool.windows import Tally

WHOLE_KEY = ""  # the scope of a rest that holds for every model
# Names keys until a store gives its own secret (KeyPool.name_keys): a state kept in memory uses this one.
PROCESS_SECRET = os.urandom(32)


def mask(key: str) -> str:
    """A form of a key that identifies it to its owner without revealing it (a cloud key pooled in one region,
    `<key>@<region>`: the key masked, its region shown)."""
    secret, at, region = key.rpartition("@")
    if at and _REGION.match(region):
        return f"{mask(secret)}@{region}"
    if len(key) <= 12:
        return "…" + key[-2:] if len(key) > 6 else "…"
    return f"{key[:4]}…{key[-4:]}"


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+\Z")


def fingerprint(key: str, secret: bytes = PROCESS_SECRET) -> str:
    """How a key is named where it is stored (rewrite/state/records.py), never the key: keyed with the store's secret,
    so that a stored name confirms no guessed key to whoever lacks the secret."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:24]


@dataclass
class Rest:
    until: float  # on the pool's monotonic clock
    why: str


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
    usage: Usage = field(default_factory=Usage)
    windows: dict[str, Tally] = field(default_factory=dict)  # its quota windows, by "window|unit" (windows.py)

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

    def active_rests(self, now: float) -> dict[str, Rest]:
        return {scope: r for scope, r in self.rests.items() if r.until > now}

    def at_cap(self) -> bool:
        return self.max_concurrent is not None and self.in_flight >= self.max_concurrent

    def state(self, now: float) -> str:
        """ready, resting or out (a key resting for some models only is resting)."""
        if self.out is not None:
            return "out"
        return "resting" if self.active_rests(now) or self.slow_until > now else "ready"
