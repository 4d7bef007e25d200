"""Clients' spending: what each client (`clients:`, known by its client key or its proxy credentials:
`job.intake.client`) spent, counted by provider and model (rewrite/accounting/client_book.py), and its budget, limits
and models (rewrite/accounting/client_rules.py) checked before its request's first credential is taken.

The check is made once per request, at its first `paying` (before any key is picked): a request over its client's
budget or limit, or for a model outside its `models`, is answered by this part's payer, which takes no credential
(429 with `retry-after` to the period's end, or 403, in the client's protocol's error shape, as "every key is rate
limited" is): nothing is sent upstream, for any target of its route. A request that passed is never cut: what a
client had in flight when its budget ran out is the overshoot. Counted at `served` (its usage priced as the
accounting plug-in prices it; a login's covered by its plan) and `raced` (a hedge's cancelled attempt, billed all
the same).

Event fields read: `Served.call.provider.name`, `.call.model`, `.usage`, `.payer.covers`,
`.continuation`; `Raced.call.provider.name`, `.call.model`, `.spent`, `.loser`, `.payer.covers`; `Finished` (none);
and of the `RequestView`: `job.intake.client`, `job.records`, `job.route.provider`, `req.asked`, `req.proto`.
"""

from __future__ import annotations

import time
from collections import Counter

from protocols.unified import Usage
from rewrite.accounting.client_book import COVERED, FIGURES, ClientBook, blank
from rewrite.accounting.client_rules import ClientRefusal, ClientRules
from rewrite.lifecycle.events import Finished, Paying, Raced, Served
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.payer import Payer, Unpaid, error_protocol
from rewrite.lifecycle.setting import Setting
from rewrite.lifecycle.views import RequestView
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure

RECORD = "client_check"  # the flow's record of a refusal: flow.metadata["rotator"]["client_check"]


class ClientSpending(Plugin):
    name = "clients"

    def __init__(self, setting: Setting) -> None:
        self.book = ClientBook()
        self.in_flight: Counter[str] = Counter()  # per client: requests that passed its check and are not done
        self.rules: dict[str, ClientRules] = {}
        super().__init__(setting)

    def configure(self, setting: Setting) -> None:
        self.rules = {c.name: ClientRules(c.name, c.budget, c.limits, c.models) for c in setting.config.clients}
        self.active = bool(self.rules)
        self.prices = setting.prices

    def engage(self, ctx: RequestView) -> Part | None:
        rules = self.rules.get(ctx.job.intake.client)
        return ClientSpendingPart(self, ctx, rules) if rules is not None else None


class ClientSpendingPart(Part):
    def __init__(self, plugin: ClientSpending, ctx: RequestView, rules: ClientRules) -> None:
        self.plugin, self.ctx, self.rules = plugin, ctx, rules
        self.checked = False
        self.flying = False
        self.refusing: Refusing | None = None

    def paying(self, e: Paying) -> Payer | None:
        if not self.checked:
            self.checked = True
            if self.rules.holds:
                self._check()
            if self.refusing is None and self.ctx.req is not None:
                self.plugin.in_flight[self.rules.name] += 1
                self.flying = True
        return self.refusing  # (None: the next part, who pays, answers)

    def _check(self) -> None:
        req, plugin, name = self.ctx.req, self.plugin, self.rules.name
        model = req.asked if req is not None and req.proto is not None else None

        def spent(unit: str, per: str | None, now: float) -> float:
            return plugin.book.spent(name, unit, per, now)

        refusal = self.rules.check(model, spent, plugin.in_flight[name], time.time())
        if refusal is not None:
            self.refusing = Refusing(self._failure(refusal))
            self.ctx.job.records[RECORD] = {"client": name, "refused": refusal.figure, "status": refusal.status}

    def _failure(self, refusal: ClientRefusal) -> Failure:
        req = self.ctx.req
        proto = error_protocol(self.ctx.job.route.provider, req.proto if req is not None else None)
        headers = [("content-type", "application/json")]
        if refusal.retry_after:
            headers.append(("retry-after", str(refusal.retry_after)))
        held = "may not use" if refusal.status == 403 else "is over its"
        return Failure(FailureKind.CLIENT_HELD, f"client {self.rules.name} {held} {refusal.figure}", refusal.status,
                       headers, proto.error_body(refusal.status, refusal.message), retryable=False)

    def served(self, e: Served) -> None:
        self._count(e.call.provider.name, e.call.model, e.usage, e.payer.covers, 0 if e.continuation else 1)

    def raced(self, e: Raced) -> None:
        if e.spent is not None and e.loser is not None:
            self._count(e.call.provider.name, e.call.model, e.spent, e.payer.covers, 0)

    def finished(self, e: Finished) -> None:
        if self.flying:
            self.flying = False
            self.plugin.in_flight[self.rules.name] -= 1

    def _count(self, provider: str, model: str, usage: Usage | None, covered: bool, requests: int) -> None:
        figures = blank()
        figures[0] = requests
        if usage is not None:
            cost = None if covered else self.plugin.prices.cost(model, usage)
            figures[1:5] = [usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens]
            figures[5] = cost or 0.0
            figures[COVERED] = requests if covered else 0
            figures[FIGURES.index("unpriced")] = requests if cost is None and not covered else 0
        self.plugin.book.add(self.rules.name, provider, model or "", figures)


class Refusing(Unpaid):
    """A request its client may not send: no credential, and its refusal as the answer, every target of its route
    skipped untried."""

    def skip(self, model: str, tokens: float, within: float) -> Failure | None:
        return self.failure
