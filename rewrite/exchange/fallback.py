"""The target (fallback) loop: which targets a request goes to, in order (one, the called provider, unless a route
names others); a target that fails before the client's first token hands the request to the next; a target whose
keys all rest is skipped while others remain; when none served, the last failure is the honest answer. `Legs` says
how the request is put to each target (rewrite/routing/targets.py)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time

from protocols import translate
from protocols.base import Protocol
from protocols.translate import TranslationError
from protocols.unified import Answer, Request
from protocols.urls import UnsafeURLValue
from protocols.windows import iso
from rewrite.accounting.prices import PriceTable
from rewrite.accounting.usage import account
from rewrite.adapters import chain_for
from rewrite.config import StreamingConfig
from rewrite.exchange.affinity import Conversation
from rewrite.exchange.answers import Answers
from rewrite.exchange.attempt import Attempt, KeyAttempts
from rewrite.exchange.clock import Clock
from rewrite.exchange.job import Job
from rewrite.exchange.outgoing import TargetCall, translated_request
from rewrite.exchange.pump import Pump
from rewrite.exchange.request import ClientRequest
from rewrite.exchange.resume import Resume
from rewrite.intake.big_json import TOO_DEEP
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure
from rewrite.pool.affinity import Affinity
from rewrite.providers import Provider
from rewrite.routing.router import Router
from rewrite.routing.routes import Target
from rewrite.routing.targets import (
    ConversationHooks,
    Leg,
    Refused,
    native_leg,
    record_of,
    translated_leg,
    upstream_protocol,
)
from rewrite.upstream.client import Sender

logger = logging.getLogger("rotator")


class Legs:
    """The request's targets, and how it is put to each (`router` None: the called provider serves)."""

    def __init__(self, req: ClientRequest, job: Job, router: Router | None, hooks: ConversationHooks | None) -> None:
        self.req = req
        self.job = job
        self.router = router
        self.hooks = hooks
        self.routed = False  # a route chose the targets
        self._ir: Request | None = None  # the client's request, unified (for translated targets)

    def targets(self) -> list[tuple[Provider, Target]]:
        called = self.req.called
        native = [(called, Target(called.name))]
        if self.router is None or self.req.proto is None:
            return native
        chosen = self.router.targets(called, self.req.asked)
        self.routed = chosen != native
        return chosen

    def sent_as_it_came(self, chosen: list[tuple[Provider, Target]]) -> bool:
        """Whether the client's body goes upstream untouched (the skeleton of a large one is then enough): one
        target, the called provider with the model asked, in the client's protocol, with nothing to rewrite."""
        req, proto = self.req, self.req.proto
        if proto is None:  # not a generation call: forwarded as it came, never rewritten
            return True
        if len(chosen) != 1:
            return False
        [(provider, target)] = chosen
        if provider is not req.called or target.model_for(req.asked) != req.asked:
            return False
        # Asked upstream as a stream (forced, or for the usage chunk): its members are spliced into the upload.
        streamed = req.meter.ask_upstream or (provider.force_upstream_stream and not req.client_stream)
        return (upstream_protocol(provider, proto, True) is proto
                and not chain_for(provider, req.asked) and not provider.param_refusals.get(req.asked)
                and not (streamed and not req.body.keys() <= proto.as_stream("", "", req.body)[2].keys())
                and not (self.hooks is not None and self.hooks.reads_body(proto)))  # (its conversation state)

    def leg(self, provider: Provider, target: Target, held_elsewhere: bool = False) -> Leg:
        """How the request is put to one target (`held_elsewhere`: see ConversationHooks.request)."""
        req = self.req
        called = provider is req.called
        model = target.model_for(req.asked)
        proto = req.proto
        if proto is None:  # not a generation call (or a body that is not JSON): forwarded as it came
            leg = Leg(provider, model, None, called, req.path, req.query, None)
        elif called and req.signed() and model == req.asked:  # a login's signed body, to the login: as it came
            leg = native_leg(provider, model, proto, called, req.path, req.query, req.body, req.asked)
            leg.sealed = True
        else:
            leg = self._leg_for(provider, model, called, proto, req.body)
            body = req.body if self.hooks is None else self.hooks.request(leg, req.body, held_elsewhere)
            if not called and req.called.login is not None:  # a login's body, as another target takes it
                body = req.called.login.foreign_body(body)
            if body is not req.body:
                leg = self._leg_for(provider, model, called, proto, body)
                leg.unchanged = False
            if self.hooks is not None:
                leg.wants_answer, leg.asked = self.hooks.wants_answer(leg), req.body
            if leg.translation is not None:  # a request the target's protocol cannot take is refused now
                forced = provider.force_upstream_stream and model not in provider.stream_refusals
                translated_request(req, leg, leg.translation, req.client_stream or forced, self.hooks)
        if self.routed:
            leg.record.update(record_of(leg, proto))
            self.job.targets.append(leg.record)
        return leg

    def _leg_for(self, provider: Provider, model: str, called: bool, proto: Protocol, body: dict) -> Leg:
        """The leg of a generation call in the client's `proto`, with `body` (the client's, or a hook's)."""
        req = self.req
        upstream = upstream_protocol(provider, proto, called)
        if upstream is proto:
            return native_leg(provider, model, upstream, called, req.path, req.query, body, req.asked)
        if body is not req.body:
            ir = translate.request_to_ir(proto.name, body, req.asked, req.client_stream)
        else:
            if self._ir is None:
                self._ir = translate.request_to_ir(proto.name, body, req.asked, req.client_stream)
            ir = self._ir
        forwards_user_id = self.router is not None and self.router.config.translation.forward_user_id
        ir = translate.across_vendors(ir, proto.name, upstream.name, forwards_user_id)
        return translated_leg(provider, model, upstream, called, proto, ir)


class Fallback:
    """The target loop of one request, with the parts every target shares."""

    def __init__(self, req: ClientRequest, legs: Legs, client: Sender, cfg: StreamingConfig,
                 clock: Clock, answers: Answers, pump: Pump, prices: PriceTable, resume: Resume | None = None,
                 conversation: Conversation | None = None) -> None:
        self.req = req
        self.legs = legs
        self.client = client
        self.cfg = cfg
        self.clock = clock
        self.answers = answers
        self.pump = pump
        self.prices = prices
        self.job = legs.job
        self.refused: list[str] = []  # the parameters this request was sent again without (over its targets)
        self.resume = resume  # when cut answers are continued (rewrite/exchange/resume.py)
        # What the request says of its conversation, for its targets' pools (None: affinity is off everywhere).
        self.conversation = conversation
        self.chosen: list[tuple[Provider, Target]] = []  # the request's targets, in order
        self.serving = 0  # the index of the one that served
        self.served: Leg | None = None  # its leg
        self.keys: KeyAttempts | None = None  # the attempts of the target being tried (its key: the one answering)

    async def run(self) -> None:
        """Try the request's targets in order; a target that fails before the client's first token hands the
        request to the next."""
        req, answers = self.req, self.answers
        refusal = req.refusal or req.unsafe_url()
        if refusal is not None:
            answers.refuse(refusal)
            return
        chosen = self.chosen = self.legs.targets()
        self._login()
        if req.skeletal and not self.legs.sent_as_it_came(chosen):
            req.parse_whole()
        failure: Failure | None = None
        for n, (provider, target) in enumerate(chosen):
            more = n + 1 < len(chosen)
            try:
                leg = self.legs.leg(provider, target)
            except (TranslationError, UnsafeURLValue) as e:
                answers.refuse(str(e))
                return
            except RecursionError:
                answers.refuse(TOO_DEEP)
                return
            except Refused as e:
                answers.now(e.status, e.body, e.reason)
                return
            call = TargetCall(req, leg, more, self.client, self.job, self.legs.hooks, self.refused)
            self.job.served, self.job.model = leg.provider, leg.model
            failure = self._resting_target(call) if more else None
            failure = failure or await self._serve(call)
            if failure is not None and (whole := self._unpinned(provider, target, leg)) is not None:
                call, leg = whole
                failure = await self._serve(call, unpinned=True)
            if failure is None:
                self.serving = n
                self._served(leg)
                return
            leg.record.update(outcome="left" if more else "failed", reason=failure.reason)
            if more:
                after = chosen[n + 1][1]
                how = "was not asked" if failure.kind is FailureKind.PLAN_EXHAUSTED else "failed before the first token"
                self.job.note(Note.FALLBACK, f"{leg.name} {how} ({failure.reason}); trying "
                              f"{after.provider}{'/' + after.model if after.model else ''}",
                              provider=after.provider, left=leg.name, reason=failure.reason)
        assert failure is not None
        answers.give_up(failure)

    def _unpinned(self, provider: Provider, target: Target, leg: Leg) -> tuple[TargetCall, Leg] | None:
        """When the key holding the stored response the request continues rests too long (the pool answered 429 for
        it), the request as the target would resolve it, for any key: its lineage, kept by Rotator's continuity
        (with a route configured), in front of its input. None when it cannot be (nothing kept, or nothing named)."""
        keys = self.keys
        if keys is None or not keys.pinned_rest or keys.provider is not provider or self.legs.hooks is None:
            return None
        try:
            whole = self.legs.leg(provider, target, held_elsewhere=True)
        except (Refused, TranslationError, UnsafeURLValue, RecursionError):
            return None
        if whole.unchanged:
            return None
        leg.record.update(outcome="left", reason="the key holding its stored response rests")
        said = keys.affinity.said if keys.affinity is not None else "stored response"
        self.job.note(Note.AFFINITY, f"the key holding this conversation's {said} rests: sent whole (its lineage "
                      "kept by Rotator) to another key", why="expanded")
        return TargetCall(self.req, whole, False, self.client, self.job, self.legs.hooks, self.refused), whole

    def _login(self) -> None:
        """The client's own login, when it called a login provider: named (by fingerprint) in its provider's book."""
        login, book, held = self.req.called.login, self.req.called.logins, self.job.credential
        token = login.token(held.headers) if login is not None and held is not None else None
        if book is not None and token:
            self.job.login = book.login(token)

    def _resting_target(self, call: TargetCall) -> Failure | None:
        """A target with more after it is skipped, untried, when none of its keys may serve within the first-token
        timeout: its pool would otherwise still try a key resting after a stall, and the request pay for it; a
        login known exhausted is not asked again until its reset."""
        if call.login is not None and (spent := call.login.exhausted_for(call.model, time.time())) is not None:
            until = "its reset" if spent[0] == math.inf else iso(spent[0])
            return Failure(FailureKind.PLAN_EXHAUSTED, f"plan exhausted until {until} ({spent[1]})", retryable=False)
        pool = call.provider.pool
        if pool is None or not pool.rests_past(self.cfg.first_token_timeout, call.model, self.req.tokens):
            return None
        return Failure(FailureKind.KEYS_RESTING, "every key resting", retryable=False)

    async def _serve(self, call: TargetCall, unpinned: bool = False) -> Failure | None:
        """The target's attempts over its pool. None when the client got an answer (or the vendor's request
        error); else why the target failed, before the client's first token."""
        conversation, req = self.conversation, self.req
        affinity = conversation.affinity(req, call.provider, call.model) if conversation is not None else None
        if unpinned and affinity is not None:
            affinity = affinity.unpinned()
        elif affinity is not None and affinity.hard:
            affinity = self._held(call, affinity)
        created = None
        # (an answer may make a pin: a stored Responses answer, a Gemini cache; see Conversation.created)
        if conversation is not None and (req.meter.names_answers or req.proto is None
                                         and conversation.state_call(req, call.provider) is not None):
            def created():
                return conversation.created(req, call.leg, self.answers.whole_answer(), affinity)
        keys = KeyAttempts(self.cfg, self.clock, self.job, call.provider, call.model, self.req.proto,
                           tokens=self.req.tokens, affinity=affinity,
                           wait=conversation.wait if conversation is not None else 0.0, created=created)
        self.keys = keys
        attempt = Attempt(call, self.cfg, self.clock, self.answers, self.pump, self.resume)
        failure = await keys.run(attempt.on)
        if failure is None:
            usage = self.req.meter.usage(self.answers.whole_answer())
            account(self.job, usage, call.model, self.prices, call.provider.pool, keys.key, covered=call.login)
            return None
        return attempt.in_client_shape(failure) if keys.tried else failure

    def _held(self, call: TargetCall, affinity: Affinity) -> Affinity:
        """`affinity` with its pin's holder: the key whose account holds the stored response the request continues,
        as the hooks recorded it when it was served. The pin's binding says the same while it lasts; it may be lost
        (a restart with another state file, a worker deciding alone)."""
        hooks, pool = self.legs.hooks, call.provider.pool
        key = hooks.holder(call.leg, self.req.body) if hooks is not None and pool is not None else None
        if key is None or pool is None:
            return affinity
        return dataclasses.replace(affinity, holder=pool.keys.index(key))

    def _served(self, leg: Leg) -> None:
        self.served = leg
        leg.record["outcome"] = "served"
        if self.legs.routed:
            logger.info("rotator: %s %s: target %s answered (%s)", leg.provider.name, self.job.id[:8], leg.name,
                        leg.record.get("translated") or leg.record["protocol"])  # (see record_of)
        if leg.wants_answer and (answer := leg.final_answer()) is not None:
            keys = self.keys
            self.answered(leg, answer, keys.key if keys is not None and keys.provider is leg.provider else None)

    def answered(self, leg: Leg, answer: Answer, key: str | None = None) -> None:
        """The conversation hooks get the answer `leg` served from the pooled `key` (again, whole, once a cut one is
        continued: then None, its parts perhaps of two keys); called only for a leg that `wants_answer`."""
        if self.legs.hooks is not None:
            self.legs.hooks.answer(leg, answer, key)
