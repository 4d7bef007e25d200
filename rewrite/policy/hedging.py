"""Hedged first tokens (docs/reliability.md, "Hedged first tokens"): the settings (`hedging`, top level and per
provider), each provider's budget of hedges, and the recent times to first token an `auto` delay is read from.

The budget grows by `max_share` with each eligible request and a hedge spends 1 of it, starting from 1: over any
stretch of requests, hedges ≤ max_share × eligible + 1. It holds at most what `WINDOW` eligible requests earn (at
least 1), so a long calm does not save up a burst: the share holds over a rolling window.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

WINDOW = 100  # eligible requests whose share the budget may hold at once
SAMPLES = 200  # times to first token kept per provider and model, for `auto`
MIN_SAMPLES = 20  # before that many, `auto` sends no hedge (no p95 to go by)
AUTO_FLOOR = 1.0  # seconds: an `auto` delay is at least this
AUTO = "auto"


def _switch(v: object) -> object:
    """`on`/`off` as YAML 1.1 reads them too (booleans)."""
    return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v


def _delay(v: object) -> object:
    if v is None or v == AUTO:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError("must be a number of seconds above 0, or auto")
    return float(v)


Switch = Annotated[Literal["on", "off"], BeforeValidator(_switch)]
Delay = Annotated[float | Literal["auto"], BeforeValidator(_delay)]


class HedgingConfig(BaseModel):
    """When a request's first content token is late, the same request is sent once more and the first to answer
    wins (rewrite/plugins/hedging.py)."""

    model_config = ConfigDict(extra="forbid")

    mode: Switch = "off"
    # Seconds without a first content token before the second attempt goes; `auto`: the provider and model's
    # recent p95 time to first token, at least AUTO_FLOOR.
    delay: Delay = 0.5
    max_share: float = Field(0.1, ge=0, le=1)  # of eligible requests per provider, at most, hedged


class HedgingOverride(BaseModel):
    """A provider's own `hedging`: only the fields given replace the top level's."""

    model_config = ConfigDict(extra="forbid")

    mode: Switch | None = None
    delay: Delay | None = None
    max_share: float | None = Field(None, ge=0, le=1)


def merged(top: HedgingConfig, own: HedgingOverride | None) -> HedgingConfig:
    """The top level's settings with a provider's own over them."""
    if own is None:
        return top
    return top.model_copy(update=own.model_dump(exclude_none=True))


class Budget:
    """One provider's hedges still allowed (see the module's docstring)."""

    def __init__(self) -> None:
        self.left = 1.0

    def eligible(self, share: float) -> None:
        """A request that may be hedged came."""
        self.left = min(self.left + share, max(1.0, share * WINDOW))

    def spend(self) -> bool:
        """Whether a hedge may go now (its share is then spent)."""
        if self.left < 1.0:
            return False
        self.left -= 1.0
        return True

    def refund(self) -> None:
        """A hedge allowed was not sent after all (no credential was free)."""
        self.left += 1.0


class Latencies:
    """One provider and model's recent times to first token (seconds from an attempt's send)."""

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=SAMPLES)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def p95(self) -> float | None:
        """The 95th percentile of the samples kept (nearest rank); None before MIN_SAMPLES."""
        if len(self.samples) < MIN_SAMPLES:
            return None
        ordered = sorted(self.samples)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]

    def delay(self) -> float | None:
        """An `auto` delay: the p95, at least AUTO_FLOOR; None while it is not known."""
        p95 = self.p95()
        return None if p95 is None else max(AUTO_FLOOR, p95)
