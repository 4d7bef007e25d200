"""What a client may spend (`clients:` entries' `budget`, `limits` and `models`), validated, and the check of one
request against what the client spent so far (rewrite/accounting/client_book.py).

A budget is dollars per calendar period on UTC (minute, hour, day, week from Monday, month, as the key windows'
periods: rewrite/pool/caps.py), or in all without `per`; a limit is requests or tokens per period (a token counts
input, cached included, and output). `models` are globs on the model the client asks for (none: any). Pure.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewrite.pool.caps import period_end

Period = Literal["minute", "hour", "day", "week", "month"]


class BudgetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dollars: float = Field(gt=0)
    per: Period | None = None  # none: in all


class LimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per: Period
    requests: int | None = Field(None, gt=0)
    tokens: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_figure(self) -> LimitConfig:
        if (self.requests is None) == (self.tokens is None):
            raise ValueError("a limit counts one of requests or tokens")
        return self


@dataclass(frozen=True, slots=True)
class ClientRefusal:
    """Why a client's request is not sent: its HTTP status (429: a budget or limit, 403: a model), the figure that
    refused it (for the flow and the trail), the message its client reads, and the seconds until the period ends
    (0: none ends)."""

    status: int
    figure: str
    message: str
    retry_after: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    """One figure a client is held to: `unit` dollars, requests or tokens, `per` a period (None: in all)."""

    unit: str
    amount: float
    per: str | None

    @property
    def label(self) -> str:
        amount = f"${self.amount:g}" if self.unit == "dollars" else f"{self.amount:g} {self.unit}"
        kind = "budget" if self.unit == "dollars" else "limit"
        return f"{kind} of {amount} {'per ' + self.per if self.per else 'in all'}"


class ClientRules:
    """One client's budget, limits and models, from its config entry."""

    def __init__(self, name: str, budget: BudgetConfig | None, limits: list[LimitConfig], models: list[str]) -> None:
        self.name = name
        self.models = tuple(models)
        rules = [Rule("dollars", budget.dollars, budget.per)] if budget is not None else []
        rules += [Rule("requests" if lim.requests else "tokens", float(lim.requests or lim.tokens or 0), lim.per)
                  for lim in limits]
        self.rules = tuple(rules)

    @property
    def holds(self) -> bool:
        """Whether it holds its client to anything (else its requests are only counted)."""
        return bool(self.rules or self.models)

    def check(self, model: str | None, spent, in_flight: int, now: float) -> ClientRefusal | None:
        """The refusal of a request for `model` (None: a call that names none), given `spent(unit, per, now)`, what
        the client spent in the period under way, and its requests in flight; None: it may go."""
        if self.models and model is not None and not any(fnmatch.fnmatchcase(model, g) for g in self.models):
            allowed = ", ".join(self.models)
            return ClientRefusal(403, f"model {model} outside models",
                           f"Rotator: client {self.name} may not use the model {model}; its models are: {allowed}")
        for rule in self.rules:
            used = spent(rule.unit, rule.per, now) + (in_flight if rule.unit == "requests" else 0)
            if used >= rule.amount:
                return self.refused(rule, used, now)
        return None

    def refused(self, rule: Rule, used: float, now: float) -> ClientRefusal:
        """The refusal by `rule`, of which the client used `used` in the period under way at `now`."""
        left = math.ceil(period_end(rule.per, now) - now) if rule.per else 0
        until = f"; try again in {left} s" if left else ""
        shown = f"${used:.4g}" if rule.unit == "dollars" else f"{used:g} {rule.unit}"
        return ClientRefusal(429, rule.label, f"Rotator: client {self.name} is over its {rule.label} (spent "
                       f"{shown}){until}", max(left, 1) if rule.per else 0)


@dataclass(slots=True)
class ClientHold:
    """A client's budget and limits handed to a shared key pick (`Need.client`), checked there as client-wide
    windows in the same step as the key is picked (rewrite/state/redis/client_scripts.py): `flight` names the
    request among the client's requests in flight, `ends` when each period under way ends (epoch seconds);
    `refusal` is what the pick said, when it refused, and `failing` makes the request's answer of it."""

    rules: ClientRules
    flight: str
    ends: dict[str, float]
    failing: Callable[[ClientRefusal], Any]
    refusal: ClientRefusal | None = None


def client_budgets(clients: list, spent, now: float) -> list[dict]:
    """Each configured client (`clients:` entries) with what it used of its budget and each limit in the period under
    way, for the status page; `spent(client, unit, per, now)` as the clients' book counts it. "hour" and "day": its
    requests this hour and its cost today (UTC), held to anything or not."""
    out = []
    for c in clients:
        rules = ClientRules(c.name, c.budget, c.limits, c.models).rules
        shown = [{"kind": "budget" if r.unit == "dollars" else "limit", "unit": r.unit, "amount": r.amount,
                  "per": r.per, "used": round(spent(c.name, r.unit, r.per, now), 6), "label": r.label,
                  "resets_in": math.ceil(period_end(r.per, now) - now) if r.per else None} for r in rules]
        out.append({"client": c.name, "models": list(c.models), "rules": shown,
                    "hour": {"requests": int(spent(c.name, "requests", "hour", now))},
                    "day": {"requests": int(spent(c.name, "requests", "day", now)),
                            "cost": round(spent(c.name, "dollars", "day", now), 6)}})
    return out
