"""Hedged first tokens (issue 38; docs/reliability.md): when a generation request's first content token is late, the
same request is sent once more, and the first attempt to answer wins (the race is the spine's:
rewrite/exchange/race.py). This plug-in is the policy: which requests may be hedged (`hedging`), after how long (a
fixed delay, or `auto`: the provider and model's recent p95 time to first token, rewrite/policy/hedging.py), whether
the provider's budget still allows one when that time comes (`hedge`), and what the flow, the status page and the
metrics are told (`raced`: a `hedged` note with who won, the loser's key and usage in `rotator.hedge`).

Not hedged: a request not streamed upstream, a continuation of a cut answer, one that makes state at its vendor
(protocols' `makes_state`: a stored or background Responses request), one whose conversation's state only its key
holds (a hard pin), a subscription login's (unless its provider's own `hedging` turns it on), and any once the
provider's `max_share` is spent.
"""

from __future__ import annotations

from rewrite.lifecycle.events import Ended, FirstToken, Hedge, Hedging, Raced
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.payer import Payer
from rewrite.lifecycle.setting import Setting
from rewrite.lifecycle.views import RequestView
from rewrite.policy.hedging import AUTO, Budget, HedgingConfig, Latencies
from rewrite.policy.outcomes import Note

RECORD = "hedge"  # its name in the flow's `rotator` metadata
MAX_TIMED = 1000  # providers and models whose times to first token are kept (model names come from clients)
WHO = ("the first", "the second")


class HedgedFirstTokens(Plugin):
    name = "hedging"

    def configure(self, setting: Setting) -> None:
        config = setting.config
        self.on = self.active = config.hedging.mode == "on" or any(
            p.hedging is not None and p.hedging.mode == "on" for p in config.providers.values())
        self.budgets: dict[str, Budget] = getattr(self, "budgets", {})  # by provider
        self.latencies: dict[tuple[str, str], Latencies] = getattr(self, "latencies", {})  # by provider and model

    def engage(self, ctx: RequestView) -> Part | None:
        if not self.on or ctx.req is None or ctx.req.proto is None:
            return None
        return Hedger(self, ctx)

    def _settings(self, provider, payer: Payer) -> HedgingConfig | None:
        """The provider's settings when its requests are hedged, else None (a payer's plan is hedged only when its
        provider's own settings say so: `Payer.hedged_unasked`)."""
        settings, own = self.setting.config.hedging_for(provider.name)
        if settings.mode != "on" or settings.max_share <= 0 or not (own or payer.hedged_unasked):
            return None
        return settings

    def _latency(self, provider: str, model: str) -> Latencies:
        found = self.latencies.get((provider, model))
        if found is None:
            found = Latencies()
            if len(self.latencies) < MAX_TIMED:
                self.latencies[(provider, model)] = found
        return found

    def _budget(self, provider: str) -> Budget:
        found = self.budgets.get(provider)
        if found is None:
            found = self.budgets[provider] = Budget()
        return found


class Hedger(Part):
    """One request's hedges."""

    def __init__(self, plugin: HedgedFirstTokens, ctx: RequestView) -> None:
        assert ctx.req is not None  # (engaged for a generation call alone)
        self.plugin, self.ctx, self.req = plugin, ctx, ctx.req
        self.counted: set[str] = set()  # the providers this request counted as eligible at
        self.sent = 0.0  # when the attempt under way was sent (the loop's time)
        self.ttft: float | None = None  # its time to first token, once it came
        self.timed = False  # whether its provider's requests are hedged (then its time to first token is kept)
        self.delay = 0.0

    def hedging(self, e: Hedging) -> float | None:
        call, req = e.call, self.req
        self.sent, self.ttft = self.ctx.clock.loop.time(), None
        settings = self.plugin._settings(call.provider, call.payer)
        self.timed = settings is not None
        if (settings is None or not call.upstream_stream or call.asking is not None or call.protocol is None
                or req.proto is None or req.proto.makes_state(req.body)
                or (e.ask.affinity is not None and e.ask.affinity.hard)):
            return None
        name = call.provider.name
        if name not in self.counted:  # (a request counts once, however many attempts it takes)
            self.counted.add(name)
            self.plugin._budget(name).eligible(settings.max_share)
        delay = self.plugin._latency(name, call.model).delay() if settings.delay == AUTO else settings.delay
        if delay is None:
            return None
        self.delay = float(delay)
        return self.delay

    def hedge(self, e: Hedge) -> bool:
        return self.plugin._budget(e.call.provider.name).spend()

    def first_token(self, e: FirstToken) -> None:
        if e.call.asking is not None:  # (a continuation's: asked no `hedging`, its send is not `sent`)
            return
        self.ttft = self.ctx.clock.loop.time() - self.sent  # (a race's second: from its own send, see `raced`)

    def raced(self, e: Raced) -> None:
        call, job = e.call, self.ctx.job
        if e.second is None:  # (no credential was free at once: nothing was sent, nothing spent)
            self.plugin._budget(call.provider.name).refund()
            return
        if e.won == 1:  # (announced before the winner's first token: its time counts from its own send)
            self.sent += e.after
        won = WHO[e.won] if e.won is not None else "neither"
        where = f"key {e.second.shown}" if e.second.shown else "the client's own credential"
        same = e.second.key is not None and e.second.key == e.first.key
        spent = e.spent.input_tokens if e.spent is not None else None
        record = {"after": e.after, "delay": self.delay, "won": ("first", "second")[e.won] if e.won is not None
                  else None, "key": e.second.shown, "same_key": same,
                  "loser_key": e.loser.shown if e.loser is not None else None, "loser_input_tokens": spent}
        job.records.setdefault(RECORD, []).append(record)
        answered = f"{won} answered first" if e.won is not None else "neither answered"
        job.note(Note.HEDGED, f"second attempt after {e.after:g} s: {answered} ({where}"
                 f"{', the first’s' if same else ''})", provider=call.provider.name, won=record["won"],
                 key=e.second.shown, after=e.after)

    def ended(self, e: Ended) -> None:
        if e.failure is None and self.timed and self.ttft is not None and e.call is not None:
            self.plugin._latency(e.call.provider.name, e.call.model).add(self.ttft)
            self.ttft = None
