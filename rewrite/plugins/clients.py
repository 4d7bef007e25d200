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

With `state.redis` (rewrite/state/redis/clients.py) every worker counts into one figure per client: the book is
Redis's, read about once a second, and what a request spent is written there once it is done (`finished`). Its
budget and limits are then checked twice: here, against that book (a client over them is refused without a round
trip), and for a target whose pool is shared by its first pick (`asking` hands them to the ask), in the same step as
its key is picked, against what every worker counted and every request of the client in flight: two workers do not
both spend the last dollar. A request refused there is answered as one refused here (the pooled key's payer asks
the ask's `ClientHold`), for every target of its route. No early pick is started for such a client (`holding`): its
first pick carries its rules.

Event fields read: `Served.call.provider.name`, `.call.model`, `.usage`, `.payer.plan`,
`.continuation`; `Raced.call.provider.name`, `.call.model`, `.spent`, `.loser`, `.payer.plan`; `Asking.ask`,
`.call.provider.pool`; `Finished` (none); `Arrival.client`; and of the `RequestView`: `job.id`, `job.intake.client`,
`job.records`, `job.route.provider`, `req.asked`, `req.proto`.
"""

from __future__ import annotations

import time
from collections import Counter

from protocols.unified import Usage
from rewrite.accounting.client_book import COVERED, FIGURES, ClientBook, Figures, blank
from rewrite.accounting.client_rules import ClientHold, ClientRefusal, ClientRules
from rewrite.lifecycle.events import Arrival, Asking, Finished, Paying, Raced, Served
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.payer import Payer, Unpaid, error_protocol
from rewrite.lifecycle.setting import Setting
from rewrite.lifecycle.views import RequestView
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure
from rewrite.state.redis.clients import SharedClients
from rewrite.state.redis.shared import SharedState

RECORD = "client_check"  # the flow's record of a refusal: flow.metadata["rotator"]["client_check"]


class ClientSpending(Plugin):
    name = "clients"

    def __init__(self, setting: Setting) -> None:
        self.book = ClientBook()
        self.in_flight: Counter[str] = Counter()  # per client: requests that passed its check and are not done
        self.rules: dict[str, ClientRules] = {}
        self._shared: SharedState | None = None
        super().__init__(setting)

    def configure(self, setting: Setting) -> None:
        self.rules = {c.name: ClientRules(c.name, c.budget, c.limits, c.models) for c in setting.config.clients}
        self.limited = frozenset(name for name, rules in self.rules.items() if rules.rules)
        self.active = bool(self.rules)
        self.prices = setting.prices
        self._read_shared()

    def share(self, url: str | None, shared: SharedState | None = None) -> None:
        """With `state.redis`, every worker counts into one figure per client there, and reads them all about once a
        second into this book (rewrite/state/redis/clients.py); None: this process's own."""
        self._shared = shared
        self.book.shared = SharedClients(shared, self.book) if shared is not None else None
        self._read_shared()

    def _read_shared(self) -> None:
        """Every worker's figures are read into the book only while `clients` are configured (a reload may add the
        first or take the last)."""
        if self._shared is not None:
            self._shared.clients = self.book.shared if self.rules else None

    def holding(self, arrival: Arrival, provider, model: str) -> bool:
        """A client's budget and limits go with its first shared pick: none is started early without them."""
        return arrival.client in self.limited and self.book.shared is not None

    def engage(self, ctx: RequestView) -> Part | None:
        rules = self.rules.get(ctx.job.intake.client)
        if rules is None:
            return None
        shared = rules.rules and self.book.shared is not None  # (its first shared pick checks them too)
        return (SharedSpendingPart if shared else ClientSpendingPart)(self, ctx, rules)


class ClientSpendingPart(Part):
    def __init__(self, plugin: ClientSpending, ctx: RequestView, rules: ClientRules) -> None:
        self.plugin, self.ctx, self.rules = plugin, ctx, rules
        self.checked = False
        self.flying = False
        self.refusing: Refusing | None = None
        self.hold: ClientHold | None = None  # the rules handed to the first shared pick
        self.spent: dict[tuple[str, str], Figures] = {}  # what the request spent, for every worker's figures

    def paying(self, e: Paying) -> Payer | None:
        if self.refusing is None and self.hold is not None and self.hold.refusal is not None:
            self.refusing = Refusing(self._refused(self.hold.refusal))  # (the shared pick refused it: every target)
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
            self.refusing = Refusing(self._refused(refusal))

    def _refused(self, refusal: ClientRefusal) -> Failure:
        """The request's answer when `refusal` holds it back, said on its flow."""
        self.ctx.job.records[RECORD] = {"client": self.rules.name, "refused": refusal.figure, "status": refusal.status}
        return self._failure(refusal)

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
        self._count(e.call.provider.name, e.call.model, e.usage, e.payer.plan, 0 if e.continuation else 1)

    def raced(self, e: Raced) -> None:
        if e.spent is not None and e.loser is not None:
            self._count(e.call.provider.name, e.call.model, e.spent, e.payer.plan, 0)

    def finished(self, e: Finished) -> None:
        if self.flying:
            self.flying = False
            self.plugin.in_flight[self.rules.name] -= 1
        shared, hold = self.plugin.book.shared, self.hold
        flight = self.ctx.job.id if hold is not None and hold.refusal is None else ""
        if shared is not None and (self.spent or flight):
            shared.spend(self.rules.name, flight, self.spent, time.time())

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
        if self.plugin.book.shared is not None:
            row = self.spent.setdefault((provider, model or ""), blank())
            for i, v in enumerate(figures):
                row[i] += v


class SharedSpendingPart(ClientSpendingPart):
    """A client with a budget or limits whose figures every worker shares (`state.redis`): its first shared pick
    checks them too."""

    def asking(self, e: Asking) -> None:
        """Hand the client's budget and limits to its first pick when that pick is shared (checked there, in the same
        step); none to the attempts after it."""
        hold = self.hold
        if hold is None:
            pool = e.call.provider.pool if e.call is not None else None
            if self.flying and pool is not None and pool.shared is not None:
                self.hold = e.ask.client = ClientHold(self.rules, self.ctx.job.id, self.plugin.book.ends(time.time()),
                                                      self._refused)
        elif hold.refusal is None:
            e.ask.client = None


class Refusing(Unpaid):
    """A request its client may not send: no credential, and its refusal as the answer, every target of its route
    skipped untried."""

    def skip(self, model: str, tokens: float, within: float) -> Failure | None:
        return self.failure
