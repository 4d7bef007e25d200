"""The target (fallback) loop: which targets a request goes to, in order (one, the called provider, unless a route
names others); a target that fails before the client's first token hands the request to the next; a target known
unable to serve (its payer says: every key resting, a plan used up) is skipped while others remain; when none
served, the last failure is the honest answer. `Legs` says how the request is put to each target: in the client's
protocol (`native_leg`) or translated (`translated_leg`, its `Translation`: rewrite/exchange/leg.py), in the
protocol the target speaks for it (`upstream_protocol`)."""

from __future__ import annotations

import logging

import protocols
from protocols.base import Protocol
from protocols.translate import TranslationError
from protocols.translate.base import across_vendors
from protocols.unified import Answer, Request
from protocols.urls import UnsafeURLValue
from rewrite.exchange.answers import Answers
from rewrite.exchange.attempt import Attempt
from rewrite.exchange.context import Context
from rewrite.exchange.job import error_protocol
from rewrite.exchange.keys import KeyAttempts
from rewrite.exchange.leg import Crossing, Leg, RequestRefused, Translation, crossing
from rewrite.exchange.pump import Pump
from rewrite.exchange.resume import Resume
from rewrite.exchange.target import Target, translated_request
from rewrite.intake.big_json import TOO_DEEP
from rewrite.lifecycle.events import KeptAnswer, Paying, Served, Shaping, TargetsChosen
from rewrite.lifecycle.hooks import PluginFailed
from rewrite.lifecycle.payer import AS_IT_CAME, Payer, Ticket, Unpaid
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure
from rewrite.providers import Provider

logger = logging.getLogger("rotator")


def upstream_protocol(provider: Provider, client: Protocol, called: bool) -> Protocol:
    """What `provider` speaks for a request of `client`'s protocol. The provider whose host the client called
    speaks the client's protocol (it is what the client chose); others speak their family's (the one their
    `protocol` chooses, else the family's first: an openai-kind one Chat Completions unless it says responses; the
    built-in openai provider the client's own when the client speaks an OpenAI protocol)."""
    if called and client.family in provider.families:  # (a login's host may speak several families)
        return client
    if client.family in provider.guest_families and provider.protocol is None:  # (a platform's too)
        return client
    return protocols.registry.speaking(provider.family, provider.protocol)


def native_leg(provider: Provider, model: str, proto: Protocol, called: bool, path: str, query: str,
               body: dict, asked: str) -> Leg:
    """A target speaking the client's protocol: the client's request, with the target's model if it differs."""
    leg = Leg(provider, model, proto, called, path, query, body, adapters=provider.adapters_for(model))
    if model != asked:
        leg.unchanged = False
        if proto.model_in_path:
            leg.path = proto.with_model(path, model)
        else:
            leg.body = {**body, "model": model}
    if not called:
        leg.query = proto.foreign_query(query)  # the client's query may carry its credential for the vendor it called
    return leg


def translated_leg(provider: Provider, model: str, upstream: Protocol, called: bool, crossing: Crossing,
                   request: Request, forwards_user_id: bool = False) -> Leg:
    """A target speaking `upstream`, another protocol than the client's (`crossing`), asked `request`, the client's
    unified, as it may travel there (`across_vendors`: the client's end-user id stays with its vendor family unless
    `forwards_user_id`)."""
    request = across_vendors(request, crossing.same_family, forwards_user_id)
    leg = Leg(provider, model, upstream, called, "", "", None, unchanged=False, adapters=provider.adapters_for(model))
    leg.translation = Translation(crossing, leg, request)
    return leg


def record_of(leg: Leg, client: Protocol | None) -> dict:
    out = {"provider": leg.provider.name, "model": leg.model, "protocol": leg.protocol.name if leg.protocol else None}
    if leg.translation is not None and client is not None:
        out["translated"] = f"{client.name} → {out['protocol']}"
    return out


class Legs:
    """The request's targets, and how it is put to each (no router: the called provider serves)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.req = ctx.req
        self.router = ctx.setting.router
        self.routed = False  # a route chose the targets
        self._ir: Request | None = None  # the client's request, unified (for translated targets)

    def targets(self) -> list[tuple[Provider, str]]:
        """The providers that serve the request, in order, each with the model it is asked for: the called one with
        the model asked unless a route (with routes configured) names others."""
        req = self.req
        native = [(req.called, req.asked)]
        if self.router is None or req.proto is None or not self.router.routes.routes:
            return native
        chosen = [(p, t.model_for(req.asked)) for p, t in self.router.targets(req.called, req.asked)]
        self.routed = chosen != native
        return chosen

    def payer(self, provider: Provider, model: str, more: bool = False) -> Payer:
        """Who pays for the target (the plug-in that answers `paying`; none: the request goes as it came); `more`:
        another target follows it."""
        try:
            payer = self.ctx.hooks.decide(Paying, provider, model, provider is self.req.called, more)
        except PluginFailed as failed:  # (its attempts fail, in the protocol's error shape; the next target may serve)
            body = error_protocol(provider, self.req.proto).error_body(502, f"Rotator: {failed}")
            return Unpaid(Failure(FailureKind.BAD_REQUEST, str(failed), 502, [("content-type", "application/json")],
                                  body, retryable=False))
        return payer or AS_IT_CAME

    def sent_as_it_came(self, chosen: list[tuple[Provider, str]], first: Target | None) -> bool:
        """Whether the client's body goes upstream untouched (the skeleton of a large one is then enough): one
        target (`first`), the called provider with the model asked, in the client's protocol, with nothing to
        rewrite."""
        req, proto = self.req, self.req.proto
        if proto is None:  # not a generation call: forwarded as it came, never rewritten
            return True
        if len(chosen) != 1 or first is None:
            return False
        provider = first.provider
        if provider is not req.called or first.model != req.asked:
            return False
        # Asked upstream as a stream (forced, or for the usage chunk): its members are spliced into the upload.
        streamed = req.meter.ask_upstream or (provider.force_upstream_stream and not req.client_stream)
        return (upstream_protocol(provider, proto, True) is proto
                and not provider.adapters_for(req.asked).adapters
                and not first.lessons.params
                and not (streamed and not req.body.keys() <= proto.as_stream("", "", req.body)[2].keys())
                and not self.ctx.hooks.wants(Shaping))  # (a plug-in reads the whole body: the conversation state)

    def target(self, provider: Provider, model: str, more: bool, refused: list[str]) -> Target:
        """The target `provider` asked for `model`, and who pays for it; `more`: another target follows it."""
        return Target(self.ctx, provider, model, self.payer(provider, model, more), more, refused)

    def leg(self, target: Target, held_elsewhere: bool = False) -> Leg:
        """How the request is put to `target` (`held_elsewhere`: see `Shaping`). RequestRefused when a plug-in
        refuses it."""
        req, provider, model, payer = self.req, target.provider, target.model, target.payer
        called = provider is req.called
        proto = req.proto
        if proto is None:  # not a generation call (or a body that is not JSON): forwarded as it came
            leg = Leg(provider, model, None, called, req.path, req.query, None)
        elif payer.sealed:  # a body its client signed, to the vendor it signed it for: as it came
            leg = native_leg(provider, model, proto, called, req.path, req.query, req.body, req.asked)
            leg.sealed = True
        else:
            leg = self._leg_for(provider, model, called, proto, req.body)
            body, keep_answer = self._shaped(leg, proto, held_elsewhere)
            body = payer.body(body)
            if body is not req.body:
                leg = self._leg_for(provider, model, called, proto, body)
                leg.unchanged = False
            leg.wants_answer, leg.asked = keep_answer, req.body
            if leg.translation is not None:  # a request the target's protocol cannot take is refused now
                forced = provider.force_upstream_stream and not target.lessons.stream
                translated_request(req, leg, leg.translation, req.client_stream or forced, self.ctx.hooks)
                leg.wants_answer = leg.wants_answer or leg.translation.keep_answer
                if dropped := proto.held_by_vendor(req.body):  # (its answer starts over there: said on the flow)
                    leg.record["dropped"] = dropped
        if self.routed:
            leg.record.update(record_of(leg, proto))
            self.ctx.job.targets.append(leg.record)
        return leg

    def _shaped(self, leg: Leg, proto: Protocol, held_elsewhere: bool) -> tuple[dict, bool]:
        """The client's body as the plug-ins shape it for `leg`'s target (`Shaping`), and whether one keeps the
        answer. RequestRefused when one refuses it."""
        body = self.req.body
        assert leg.protocol is not None  # (a generation call's)
        e = self.ctx.hooks.pass_along(Shaping, "body", leg.provider, leg.model, proto, leg.protocol, body,
                                      held_elsewhere)
        if e is None:
            return body, False
        if e.refused is not None:
            raise RequestRefused(*e.refused)
        return e.body, e.keep_answer

    def _leg_for(self, provider: Provider, model: str, called: bool, proto: Protocol, body: dict) -> Leg:
        """The leg of a generation call in the client's `proto`, with `body` (the client's, or a hook's)."""
        req = self.req
        upstream = upstream_protocol(provider, proto, called)
        if upstream is proto:
            return native_leg(provider, model, upstream, called, req.path, req.query, body, req.asked)
        way = crossing(provider, model, proto, upstream)
        if body is not req.body:
            ir = way.client.read_request(body, req.asked, req.client_stream)
        else:
            if self._ir is None:
                self._ir = way.client.read_request(body, req.asked, req.client_stream)
            ir = self._ir
        forwards_user_id = self.router is not None and self.router.config.translation.forward_user_id
        return translated_leg(provider, model, upstream, called, way, ir, forwards_user_id)


class Fallback:
    """The target loop of one request, with the parts every target shares."""

    def __init__(self, ctx: Context, legs: Legs, answers: Answers, pump: Pump, resume: Resume | None = None) -> None:
        self.ctx = ctx
        self.req = ctx.req
        self.legs = legs
        self.answers = answers
        self.pump = pump
        self.job = ctx.job
        self.refused: list[str] = []  # the parameters this request was sent again without (over its targets)
        self.resume = resume  # when cut answers are continued (rewrite/exchange/resume.py)
        self.chosen: list[tuple[Provider, str]] = []  # the request's targets, in order, each with its model
        self.serving = 0  # the index of the one that served
        self.served: Leg | None = None  # its leg
        self.call: Target | None = None  # the call of the target being tried (or that served)
        self.keys: KeyAttempts | None = None  # its attempts (their last credential: the one answering)

    async def run(self) -> None:
        """Try the request's targets in order; a target that fails before the client's first token hands the
        request to the next."""
        req, answers, hooks = self.req, self.answers, self.ctx.hooks
        refusal = req.refusal or req.unsafe_url()
        if refusal is not None:
            answers.refuse(refusal)
            return
        chosen = self.chosen = self.legs.targets()
        hooks.announce(TargetsChosen, chosen)
        first = None
        if req.skeletal:  # (asked only of a large body's skeleton)
            first = self.legs.target(*chosen[0], len(chosen) > 1, self.refused) if len(chosen) == 1 else None
            if not self.legs.sent_as_it_came(chosen, first):
                req.parse_whole()
                if req.refusal is not None:
                    answers.refuse(req.refusal)
                    return
        failure: Failure | None = None
        for n, (provider, model) in enumerate(chosen):
            more = n + 1 < len(chosen)
            call = first if n == 0 and first is not None else self.legs.target(provider, model, more, self.refused)
            try:
                leg = self.legs.leg(call)
            except (TranslationError, UnsafeURLValue) as e:
                answers.refuse(str(e))
                return
            except RecursionError:
                answers.refuse(TOO_DEEP)
                return
            except RequestRefused as e:
                answers.now(e.status, e.body, e.reason)
                return
            call.take(leg)
            self.job.provider, self.job.model = provider, model
            failure = call.payer.skip(model, req.tokens, self.ctx.streaming.first_token_timeout) if more else None
            failure = failure or await self._serve(call)
            if failure is not None and failure.pinned and self._whole(call, failure):
                leg = call.leg
                failure = await self._serve(call)
            if failure is None:
                self.serving = n
                self._served(call)
                return
            leg.record.update(outcome="left" if more else "failed", reason=failure.reason)
            if more:
                after, after_model = chosen[n + 1]
                how = "was not asked" if failure.kind is FailureKind.PLAN_EXHAUSTED else "failed before the first token"
                self.job.note(Note.FALLBACK, f"{call.name} {how} ({failure.reason}); trying "
                              f"{after.name}{'/' + after_model if after_model != req.asked else ''}",
                              provider=after.name, left=call.name, reason=failure.reason)
        assert failure is not None
        answers.give_up(failure)

    def _whole(self, call: Target, failure: Failure) -> bool:
        """When the key holding the stored state the request continues rests too long (the pool answered 429 for
        it), the request as the target would resolve it, for any key: its lineage, kept by Rotator's continuity
        (with a route configured), in front of its input, put to the target (`expanded`). False when it cannot be
        (nothing kept, or nothing named)."""
        if not self.ctx.hooks.wants(Shaping):
            return False
        try:
            whole = self.legs.leg(call, held_elsewhere=True)
        except (RequestRefused, TranslationError, UnsafeURLValue, RecursionError):
            return False
        if whole.unchanged:
            return False
        call.leg.record.update(outcome="left", reason="the key holding its stored response rests")
        self.job.note(Note.AFFINITY, f"the key holding this conversation's {failure.pinned} rests: sent whole (its "
                      "lineage kept by Rotator) to another key", why="expanded")
        call.more, call.expanded = False, True
        call.take(whole)
        return True

    async def _serve(self, call: Target) -> Failure | None:
        """The target's attempts over what its payer pays with. None when the client got an answer (or the vendor's
        request error); else why the target failed, before the client's first token."""
        self.call = call
        keys = self.keys = KeyAttempts(self.ctx, call.payer, call.provider, call.model, call, tokens=self.req.tokens)
        attempt = Attempt(self.ctx, call, self.answers, self.pump, self.resume)
        failure = await keys.run(attempt.on, racer=attempt.racer)
        if failure is None:
            self.account(call, keys.ticket, self.req.meter.usage(self.answers.whole_answer()))
            return None
        return attempt.in_client_shape(failure) if keys.tried else failure

    def account(self, call: Target, ticket: Ticket | None, usage, continuation: bool = False) -> None:
        """The answer's usage, for the plug-ins that count it."""
        self.ctx.hooks.announce(Served, call, ticket, call.payer, usage, continuation)

    def _served(self, call: Target) -> None:
        leg = self.served = call.leg
        leg.record["outcome"] = "served"
        if self.legs.routed:
            logger.info("rotator: %s %s: target %s answered (%s)", leg.provider.name, self.job.id[:8], call.name,
                        leg.record.get("translated") or leg.record["protocol"])  # (see record_of)
        if leg.wants_answer and (answer := leg.final_answer()) is not None:
            keys = self.keys
            self.answered(leg, answer, keys.key if keys is not None and keys.provider is leg.provider else None)

    def answered(self, leg: Leg, answer: Answer, key: str | None = None) -> None:
        """The plug-ins that keep it get the answer `leg` served from the pooled `key` (again, whole, once a cut one
        is continued: then None, its parts perhaps of two keys); called only for a leg that `wants_answer`."""
        t, client = leg.translation, self.req.proto
        assert leg.protocol is not None and client is not None  # (a generation call's)
        self.ctx.hooks.announce(KeptAnswer, leg.provider, leg.model, client.name, leg.protocol.name, answer, key,
                                leg.asked, t.request if t is not None else None)
