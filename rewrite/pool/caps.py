"""The quota caps a provider's config sets on each of its keys (its `windows:`), validated, and what each counts.

A cap counts, on each key, the requests, tokens (all, input or output) or dollars of the models its globs match
(on the model's name or its quota group's; none: every model of the key, together) in a calendar period on UTC:
the minute, hour, day, week (from Monday) or month under way; it resets when the next one starts. Or it keeps back
a share of the vendor's own window of a unit (`tokens: {share: 0.8}`: a key is passed over once 80% of the limit its
answers report is used), which needs no period of its own.
"""

from __future__ import annotations

import calendar
import fnmatch
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from protocols.windows import UNITS

PERIODS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 0}
DOLLARS = "dollars"
CAP_UNITS = (*UNITS, DOLLARS)
MONDAY = 4 * 86400  # the epoch's first Monday (1970-01-01 was a Thursday): weeks start 7 days apart from it


@dataclass(frozen=True)
class Share:
    share: float  # of the limit the vendor's answers report, above 0 and up to 1


AMOUNT = "must be a number above 0, or {share: S} with S above 0 and up to 1 (a share of the vendor's limit)"


def amount(value: object, shares: bool = True) -> float | Share | None:
    """A cap's amount as written: a number above 0, or (`shares`) a share of the vendor's limit."""
    if value is None:
        return None
    if isinstance(value, Share):
        return value
    if shares and isinstance(value, dict) and set(value) == {"share"}:
        share = value["share"]
        if isinstance(share, (int, float)) and not isinstance(share, bool) and 0 < share <= 1:
            return Share(float(share))
        raise ValueError(AMOUNT)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    if isinstance(value, dict) and not shares:
        raise ValueError("no vendor reports a dollar limit to take a share of: give an amount above 0")
    raise ValueError(AMOUNT if shares else "must be a number above 0")


class CapConfig(BaseModel):
    """One entry of a provider's `windows:` (docs/pools-and-usage.md, "Quota windows")."""

    model_config = ConfigDict(extra="forbid")

    # Globs on the model, or its quota group; none: every model of the key, counted together.
    models: list[Annotated[str, Field(min_length=1)]] = []
    requests: float | Share | None = None
    tokens: float | Share | None = None
    input_tokens: float | Share | None = None
    output_tokens: float | Share | None = None
    dollars: float | None = None
    # (last: validated once the amounts are known)
    per: Literal["minute", "hour", "day", "week", "month"] | None = Field(None, validate_default=True)

    @field_validator(*UNITS, mode="plain")
    @classmethod
    def _amount(cls, v: object) -> float | Share | None:
        return amount(v)

    @field_validator(DOLLARS, mode="plain")
    @classmethod
    def _dollars(cls, v: object) -> float | Share | None:
        return amount(v, shares=False)

    @field_validator("per")
    @classmethod
    def _period(cls, v: str | None, info: ValidationInfo) -> str | None:
        amounts = [info.data.get(u) for u in CAP_UNITS]
        absolute = [u for u, a in zip(CAP_UNITS, amounts) if isinstance(a, (int, float))]
        shares = [u for u, a in zip(CAP_UNITS, amounts) if isinstance(a, Share)]
        if v is None and absolute:
            raise ValueError(f"required with an amount ({absolute[0]}): minute, hour, day, week or month")
        if v is not None and shares:
            raise ValueError(f"a share ({shares[0]}) counts in the vendor's own window, which has no period: put "
                             "shares in an entry without `per`")
        return v

    @model_validator(mode="after")
    def _counts_something(self) -> CapConfig:
        if all(getattr(self, u) is None for u in CAP_UNITS):
            raise ValueError(f"a window needs one of {', '.join(CAP_UNITS)}")
        return self


@dataclass(frozen=True)
class PoolCap:
    """A cap as the pool uses it: its window id (the same in every worker, from what it counts), the models it
    covers, its absolute amounts by unit (counted in its own window) and its shares (kept back of the vendor's)."""

    id: str
    per: str | None
    models: tuple[str, ...]
    amounts: tuple[tuple[str, float], ...]
    shares: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, config: CapConfig) -> PoolCap:
        amounts = tuple((u, float(a)) for u in CAP_UNITS if isinstance(a := getattr(config, u), (int, float)))
        shares = tuple((u, a.share) for u in UNITS if isinstance(a := getattr(config, u), Share))
        models = tuple(config.models)
        tag = hashlib.sha1("\n".join(models).encode()).hexdigest()[:8] if models else ""
        return cls(f"#{config.per or 'share'}{':' + tag if tag else ''}", config.per, models, amounts, shares)

    def covers(self, model: str, group: str) -> bool:
        return not self.models or any(fnmatch.fnmatchcase(model, g) or fnmatch.fnmatchcase(group, g)
                                      for g in self.models)

    @property
    def label(self) -> str:
        """What it covers, in words: "per day", "claude-opus-* per minute"."""
        return " ".join([", ".join(self.models), f"per {self.per}" if self.per else "of the vendor's"]).strip()


def period_end(per: str, wall: float) -> float:
    """When the calendar period (UTC) under way at `wall` ends."""
    if per == "month":
        at = datetime.fromtimestamp(wall, UTC)
        year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
        return float(calendar.timegm((year, month, 1, 0, 0, 0)))
    length = PERIODS[per]
    offset = MONDAY if per == "week" else 0
    return (int((wall - offset) // length) + 1) * length + offset
