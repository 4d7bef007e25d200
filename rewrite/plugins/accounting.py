"""Accounting: each answer's usage (normalised by its protocol's reader: rewrite/accounting/usage.py) priced
(rewrite/accounting/prices.py), put on the flow, logged, and counted for the credential that served it (its payer's
`reported`: a pooled key's counters and quota windows, a login's plan). An answer a plan covers is not priced. A cut
answer's continuations add to the flow's usage and cost. An attempt cancelled because another raced beside it
answered first (a hedge) is counted for its own credential, as far as its vendor reported it (`raced`): the vendor
bills it, though the client never sees it."""

from __future__ import annotations

import logging

from protocols.unified import Usage
from rewrite.accounting.usage import as_dict, describe
from rewrite.lifecycle.events import Raced, Served
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.views import RequestView

logger = logging.getLogger("rotator")
# What it records of the flow (`Job.records`, the flow's metadata): its usage, its cost, and whether a plan covered it.
USAGE, COST, COVERED = "usage", "cost", "covered"
PLAN = "plan"


class Accounting(Plugin):
    name = "accounting"

    def engage(self, ctx: RequestView) -> Part | None:
        return Counting(ctx) if ctx.req is not None else None


class Counting(Part):
    def __init__(self, ctx: RequestView) -> None:
        self.job, self.prices = ctx.job, ctx.setting.prices

    def served(self, e: Served) -> None:
        usage: Usage | None = e.usage
        if usage is None:
            return
        job, model, prices = self.job, e.call.model, self.prices
        covered = e.payer.plan
        cost = None if covered else prices.cost(model, usage)
        logger.info("rotator: %s %s: usage: %s: %s", e.call.provider.name, job.id[:8], model or "model not named",
                    describe(usage, cost, covered))
        cold = prices.cold_cost(model, usage) if cost is not None else None
        e.payer.reported(e.ticket, model, usage, cost, cold or 0.0)
        records, spent = job.records, as_dict(usage)
        before = records.get(USAGE)
        if e.continuation and before is not None:  # the flow's usage is the sum over every attempt
            spent = {k: before.get(k, 0) + v for k, v in spent.items()}
            # (what a plan covered costs nothing here; all of it covered, the flow says so rather than $0)
            covered_before = records.get(COVERED) == PLAN
            earlier, now = (0.0 if covered_before else records.get(COST)), (0.0 if covered else cost)
            covered = covered_before and covered
            cost = None if covered or earlier is None or now is None else earlier + now
        # (normalised: rewrite/accounting/usage.py; the cost in USD, None when the model's price is unknown)
        records[USAGE], records[COST] = spent, cost
        if covered:  # a subscription login's answer: its cost is covered by the plan
            records[COVERED] = PLAN
        else:
            records.pop(COVERED, None)

    def raced(self, e: Raced) -> None:
        usage: Usage | None = e.spent
        if usage is None or e.loser is None:
            return
        model, job = e.call.model, self.job
        cost = None if e.payer.plan else self.prices.cost(model, usage)
        logger.info("rotator: %s %s: usage of the attempt cancelled in a race: %s: %s", e.call.provider.name,
                    job.id[:8], model or "model not named", describe(usage, cost, e.payer.plan))
        cold = self.prices.cold_cost(model, usage) if cost is not None else None
        e.payer.reported(e.loser, model, usage, cost, cold or 0.0)
