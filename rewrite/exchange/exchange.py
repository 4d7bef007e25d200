"""One client request's life in the engine: attempts, retries, watchdogs, heartbeats and repairs.

One pump task per upstream attempt reads, parses and writes; the exchange supervises it against the deadlines
(first token, idle) and the heartbeat clock. Writes to the client are synchronous and whole events, so a
heartbeat can never split an event.

When the client's status and headers are committed: at the first content byte, or at the first heartbeat
(whichever comes first). Until the first content byte, every attempt may be retried transparently; after a
heartbeat has committed a 200, a final failure is reported in-stream as the protocol's error event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

import protocols
from protocols import translate
from protocols.base import Aggregator, Protocol, Repairer
from protocols.openai_chat.stream import usage_asked_in
from protocols.refused_params import refused_params, shown_param, without
from protocols.sse import BlockTooLarge, SSEParser
from protocols.translate import TranslationError
from protocols.translate.base import MALFORMED
from protocols.unified import Request
from protocols.urls import UnsafeURLValue, path_problem, segment_problem, shown
from rewrite.accounting.prices import PriceTable
from rewrite.accounting.usage import Meter, account, refuses_stream_options
from rewrite.adapters import chain_for
from rewrite.adapters.chain import EMPTY_CHAIN
from rewrite.config import LimitsConfig, StreamingConfig
from rewrite.exchange.waiting import first_done
from rewrite.inspection.steps import Capture, Step
from rewrite.intake.big_json import TOO_DEEP, Parsed, Upload, added_keys, parse_body, with_keys_in_front
from rewrite.intake.clients import HeldCredential
from rewrite.intake.loopback import LoopbackRequest, Responder
from rewrite.policy import retry
from rewrite.policy.forcing import refuses_stream
from rewrite.policy.retry import Failure
from rewrite.providers import Provider
from rewrite.providers.credentials import KeyPool, Resting, mask
from rewrite.routing.router import Route, Router
from rewrite.routing.routes import Target
from rewrite.routing.targets import (
    CREDENTIAL_HEADERS,
    FALL_THROUGH_STATUS,
    ConversationHooks,
    Leg,
    Refused,
    adapted,
    error_headers,
    native_leg,
    parse_json,
    record_of,
    translated_leg,
    upstream_protocol,
)
from rewrite.upstream.bodies import BodyTooLarge, decoded, read_whole
from rewrite.upstream.client import Sender, encode_headers, request_headers, response_headers
from rewrite.upstream.transport import FastBody

logger = logging.getLogger("rotator")

SSE_HEADERS = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
# Upstream stream headers that do not describe a folded JSON answer.
STREAM_ONLY_HEADERS = frozenset({"content-type", "cache-control", "x-accel-buffering"})
# How an upstream body breaks: the connection fails, or its bytes do not decode under their content-encoding
# (httpx's DecodingError is not a TransportError). Either is a cut.
BODY_CUTS = (httpx.TransportError, httpx.DecodingError)
# The most of an error body Rotator reads (decoded): past it, the body is a cut like any broken one.
ERROR_BODY_MAX = 1 << 20
# An attempt that never reached the vendor (through the egress proxy, if any): counts against the key.
NO_CONNECTION = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)
# Distinct parameters a request is sent again without, after 400s that name them (protocols/refused_params.py).
MAX_REFUSED_PARAMS = 3
# What an attempt returns when the upstream refused something Rotator can leave out: it is sent again at once.
AGAIN = Failure("sent again without what the upstream refused")


def piece_reader(resp: httpx.Response, cap: int) -> Callable[[], Awaitable[bytes]]:
    """The upstream body's next piece, b"" at its end. A FastBody (the lean transport's, rewrite/upstream/transport.py)
    is read directly, skipping httpx's per-piece layers; one with a content-encoding is decoded in bounded steps,
    BodyTooLarge past `cap` decoded bytes (rewrite/upstream/bodies.py)."""
    body = resp.stream
    if isinstance(body, FastBody):
        raw = body.next_piece
    elif resp.is_stream_consumed:  # a response built whole (not one the transport gives): its decoded bytes
        left = [resp.content]

        async def whole() -> bytes:
            return left.pop() if left else b""

        return whole
    else:
        pieces = resp.aiter_raw()
        raw = lambda: anext(pieces, b"")  # noqa: E731  (a one-line reader, as whole() above)
    encoding = resp.headers.get("content-encoding")
    return decoded(raw, encoding, cap) if encoding else raw


def piece_pusher(resp: httpx.Response) -> Callable[[Callable[[bytes], bool]], Awaitable[None]] | None:
    """For a FastBody: its `push`, which hands pieces over as they arrive without waking a task for each (a streamed
    event's largest cost in Rotator's own code)."""
    body = resp.stream
    if isinstance(body, FastBody) and "content-encoding" not in resp.headers:
        return body.push
    return None


@dataclass
class Job:
    """What the engine tells the addon about one flow: for mitmweb, saved flows and the log."""

    id: str
    route: Route
    key: str | None = None  # the masked form of the pooled key last used
    notes: list[dict] = field(default_factory=list)
    responder: Responder | None = None
    # The client's own credential, taken out of the flow by the addon; sent upstream when there is no pool.
    credential: HeldCredential | None = None
    ttft: float | None = None  # seconds from the request to its first token (for the flow's view)
    # The client was sent its stream's ending (the protocol's own, a repair, or an error event): a client that
    # leaves after that got its whole answer, and the flow is not an error.
    delivered: bool = False
    on_received: Callable[[], None] | None = None  # called when the loopback server has read the request
    usage: dict | None = None  # the answer's normalised usage (rewrite/accounting/usage.py), when it reported one
    cost: float | None = None  # its cost in USD; None: unknown (no usage, or the model has no price)
    served: Provider | None = None  # the provider of the target being tried, or that answered (see targets)
    model: str | None = None  # the model asked of that target
    # Every target tried, in order: provider, model, protocol, and how it ended (rewrite/routing/targets.py).
    targets: list[dict] = field(default_factory=list)
    # Each target's upstream request and raw answer, when the request sent was not the client's
    # (rewrite/inspection/steps.py).
    steps: list[Step] | None = None
    too_large: bool = False  # its body was past limits.max_request_body and was dropped unread (a 413)

    @property
    def provider(self) -> Provider:
        """The provider that answered (or is being tried); the called host's until a target is chosen."""
        return self.served or self.route.provider

    def note(self, kind: str, detail: str, **extra) -> None:
        self.notes.append({"kind": kind, "detail": detail, **extra})
        logger.info("rotator: %s %s: %s: %s", self.provider.name, self.id[:8], kind, detail)


def error_protocol(provider: Provider, proto: Protocol | None) -> Protocol:
    """The protocol whose error shape answers a request: its own, else its provider's family's."""
    return proto or next(p for p in protocols.all() if p.family == provider.family)


def every_key_resting(provider: Provider, proto: Protocol | None, resting: Resting) -> Failure:
    """The answer when no key of the pool may be used within first_token_timeout, in the protocol's error shape
    (else its family's): 401 if the vendor rejected every key, else 429 with the seconds until the first key is
    back (whole seconds, rounded up), or 1 when every usable key is at its max_concurrent."""
    seconds = 1 if resting.busy or resting.rejected else math.ceil(resting.seconds)
    if resting.rejected:
        status, extra = 401, []
        message = (f"Rotator: the vendor rejected every key of the {provider.name} pool (401/403); they are used "
                   "again when the config is reloaded")
    elif resting.busy:
        status, extra = 429, [("retry-after", "1")]
        message = f"Rotator: every key of the {provider.name} pool is at its max_concurrent"
    else:
        status, extra = 429, [("retry-after", str(seconds))]
        message = f"Rotator: every key of the {provider.name} pool is rate limited for {seconds} s more"
    body = error_protocol(provider, proto).error_body(status, message)
    reason = ("every key rejected" if resting.rejected else "every key busy" if resting.busy
              else f"every key rate limited, for {seconds} s more")
    return Failure(reason, status, [("content-type", "application/json"), *extra], body, retryable=False)


class Exchange:
    def __init__(
        self,
        client: Sender,
        streaming: StreamingConfig,
        job: Job,
        request: LoopbackRequest,
        responder: Responder,
        prices: PriceTable | None = None,
        router: Router | None = None,
        hooks: ConversationHooks | None = None,
        limits: LimitsConfig | None = None,
        parsed: Parsed | None = None,
    ) -> None:
        self.client = client
        self.cfg = streaming
        self.max_body = (limits or LimitsConfig()).max_response_body  # of a body decoded or held whole
        self.job = job
        self.request = request
        self.out = responder
        self.router = router  # None: no routes, the called provider serves (as in unit tests)
        self.hooks = hooks
        self.called = self.provider = job.route.provider
        self.path, _, self.query = request.target.partition("?")
        self.loop = asyncio.get_running_loop()
        self.last_rx = self.last_tx = self.t0 = self.loop.time()
        self.body: dict | None = None
        self.proto: Protocol | None = job.route.protocol
        self.refusal: str | None = None  # why the request is answered 400 before any upstream call
        # A large body's skeleton (rewrite/intake/big_json.py): enough to send the upload as it came, not to rewrite it.
        self.skeletal = parsed is not None and parsed.skeletal
        if self.proto is not None:
            if parsed is not None:
                self.body, self.refusal = parsed.body, parsed.refusal
            else:
                self.body, self.refusal = parse_body(self._client_bytes())
            if self.body is None:
                self.proto = None  # a malformed body is forwarded untouched; the vendor answers it
        p = self.proto
        self.asked = self.model = p.model(self.path, self.body) if p is not None else ""
        self.client_stream = p is not None and p.wants_stream(self.path, self.query, self.body)
        # What is not streamed upstream has one deadline for the whole request (a client's stream has none).
        self.total_timeout = math.inf if self.client_stream else streaming.request_timeout
        if p is not None and self.client_stream and not p.is_sse(self.path, self.query):
            self.proto = None  # e.g. Gemini's JSON-array stream: forwarded as it comes
        self.heartbeat = p.heartbeat if (self.proto is not None and self.client_stream) else None
        self.leg: Leg | None = None
        self.routed = False  # a route chose the targets
        self._ir: Request | None = None  # the client's request, unified (for translated targets)
        self.prices = prices or PriceTable()
        self.meter = Meter(self.proto, self.body, self.client_stream)
        self._repairer: Repairer | None = None
        self._step: Step | None = None  # the current target's, when its request is not the client's
        self._sent: bytes = b""  # the body of the current attempt's upstream request
        self._left_out: list[str] = []  # the parameters its model refused before, left out of it
        self._refused: list[str] = []  # the parameters this request was sent again without
        # Set when a deadline moves earlier than the supervisor is sleeping for (the first token switches the
        # first-token deadline for the idle one).
        self._wake: asyncio.Future = self.loop.create_future()

    # -- the targets ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Try the request's targets in order (one, the called provider, unless a route names others); a target
        that fails before the client's first token hands the request to the next."""
        refusal = self.refusal or self._unsafe_url()
        if refusal is not None:
            self._refuse(refusal)
            return
        chosen = self._targets()
        if self.skeletal and not self._sent_as_it_came(chosen):
            self._parse_whole()
        failure: Failure | None = None
        for n, (provider, target) in enumerate(chosen):
            more = n + 1 < len(chosen)
            try:
                leg = self._leg(provider, target)
            except (TranslationError, UnsafeURLValue) as e:
                self._refuse(str(e))
                return
            except RecursionError:
                self._refuse(TOO_DEEP)
                return
            except Refused as e:
                self._answer_now(e.status, e.body, e.reason)
                return
            self._use(leg, more)
            failure = self._resting_target() if more else None
            failure = failure or await self._serve()
            if failure is None:
                self._served(leg)
                return
            leg.record.update(outcome="left" if more else "failed", reason=failure.reason)
            if more:
                after = chosen[n + 1][1]
                self.job.note("fallback", f"{leg.name} failed before the first token ({failure.reason}); trying "
                              f"{after.provider}{'/' + after.model if after.model else ''}",
                              provider=after.provider, left=leg.name, reason=failure.reason)
        self._give_up(failure)

    def _targets(self) -> list[tuple[Provider, Target]]:
        called = self.called
        native = [(called, Target(called.name))]
        if self.router is None or self.proto is None:
            return native
        chosen = self.router.targets(called, self.asked)
        self.routed = chosen != native
        return chosen

    def _sent_as_it_came(self, chosen: list[tuple[Provider, Target]]) -> bool:
        """Whether the client's body goes upstream untouched (the skeleton of a large one is then enough): one
        target, the called provider with the model asked, in the client's protocol, with nothing to rewrite."""
        if len(chosen) != 1:
            return False
        [(provider, target)] = chosen
        if provider is not self.called or target.model_for(self.asked) != self.asked:
            return False
        # Asked upstream as a stream (forced, or for the usage chunk): only keys the body does not have are added.
        streamed = self.meter.ask_upstream or (provider.force_upstream_stream and not self.client_stream)
        return (upstream_protocol(provider, self.proto, True) is self.proto
                and not chain_for(provider, self.asked) and not provider.param_refusals.get(self.asked)
                and not (streamed and added_keys(self.body, self.proto.as_stream("", "", self.body)[2]) is None)
                and not (self.hooks is not None and self.proto.name == "responses"))  # (its conversation state)

    def _parse_whole(self) -> None:
        """Parse a large body here after all: it is to be rewritten (this holds the event loop while it runs)."""
        upload = self.request.upload
        self.request.body, self.request.upload = b"".join(upload.pieces), None
        self.body, _ = parse_body(self.request.body)
        self.skeletal = False

    def _client_bytes(self) -> bytes | Upload:
        """The client's request body as it is sent on untouched."""
        return self.request.upload or self.request.body

    def _resting_target(self) -> Failure | None:
        """A target with more after it is skipped, untried, when none of its keys may serve within the first-token
        timeout: its pool would otherwise still try a key resting after a stall, and the request pay for it."""
        pool = self.provider.pool
        if pool is None or not pool.rests_past(self.cfg.first_token_timeout, self.model):
            return None
        return Failure("every key resting", retryable=False)

    def _leg(self, provider: Provider, target: Target) -> Leg:
        """How the request is put to one target."""
        called = provider is self.called
        model = target.model_for(self.asked)
        if self.proto is None:  # not a generation call (or a body that is not JSON): forwarded as it came
            leg = Leg(provider, model, None, called, self.path, self.query, None)
        else:
            leg = self._leg_for(provider, model, called, self.body)
            if self.hooks is not None:
                body = self.hooks.request(leg, self.body)
                if body is not self.body:
                    leg = self._leg_for(provider, model, called, body)
                    leg.unchanged = False
                leg.wants_answer = self.hooks.wants_answer(leg)
            if leg.translation is not None:  # a request the target's protocol cannot take is refused now
                forced = provider.force_upstream_stream and model not in provider.stream_refusals
                self._translated_request(leg, self.client_stream or forced)
        if self.routed:
            leg.record.update(record_of(leg, self.proto))
            self.job.targets.append(leg.record)
        return leg

    def _leg_for(self, provider: Provider, model: str, called: bool, body: dict) -> Leg:
        upstream = upstream_protocol(provider, self.proto, called)
        if upstream is self.proto:
            return native_leg(provider, model, upstream, called, self.path, self.query, body, self.asked)
        if body is not self.body:
            ir = translate.request_to_ir(self.proto.name, body, self.asked, self.client_stream)
        else:
            if self._ir is None:
                self._ir = translate.request_to_ir(self.proto.name, body, self.asked, self.client_stream)
            ir = self._ir
        ir = translate.across_vendors(ir, self.proto.name, upstream.name, self._forwards_user_id())
        return translated_leg(provider, model, upstream, called, self.proto, ir)

    def _forwards_user_id(self) -> bool:
        return self.router is not None and self.router.config.translation.forward_user_id

    def _use(self, leg: Leg, more: bool) -> None:
        """Make `leg` the target the attempts go to."""
        self.leg = leg
        self._step = None
        self.job.served = self.provider = leg.provider
        self.model = self.job.model = leg.model
        self.more_targets = more
        p = self.proto
        self.adapters = chain_for(leg.provider, leg.model) if p is not None and not leg.translation else EMPTY_CHAIN
        # Forced upstream streaming: a non-stream client request goes upstream as a stream and is folded back into
        # JSON, so the stream deadlines protect it; unless the provider opted out or the model refuses streams.
        self.aggregate = (p is not None and not self.client_stream and leg.provider.force_upstream_stream
                          and leg.model not in leg.provider.stream_refusals)
        self.upstream_stream = p is not None and (self.client_stream or self.aggregate)

    def _served(self, leg: Leg) -> None:
        leg.record["outcome"] = "served"
        if self.routed:
            logger.info("rotator: %s %s: target %s answered (%s)", leg.provider.name, self.job.id[:8], leg.name,
                        leg.record.get("translated") or leg.protocol.name)
        if self.hooks is not None and leg.wants_answer and (answer := leg.final_answer()) is not None:
            self.hooks.answer(leg, answer)

    def _unsafe_url(self) -> str | None:
        """Why the client's path, or the model its path names, cannot go into an upstream URL; None if both can."""
        problem = path_problem(self.path)
        if problem is not None:
            return f"the request path {problem}: it is not sent upstream"
        p = self.job.route.protocol
        if p is not None and p.model_in_path:
            model = p.model(self.path, {})
            if (problem := segment_problem(model)) is not None:
                return f"the model name {shown(model)} {problem}: it cannot be sent in a URL"
        return None

    def _refuse(self, reason: str) -> None:
        """Answer 400 in the client's protocol (its provider's family's for another path), before any upstream call."""
        proto = error_protocol(self.called, self.proto or self.job.route.protocol)
        self._answer_now(400, proto.error_body(400, f"Rotator: {reason}"), f"bad request: {reason}"[:200])

    def _answer_now(self, status: int, body: bytes, reason: str) -> None:
        """Answer the client before any upstream call (a request no target can take as it is)."""
        self.job.note("failed", reason, reason=reason)
        if self.out.committed:  # heartbeats went out while an earlier target was tried
            self.out.write(self._repair_state().error_event(reason, status))
            self.out.finish()
            self.job.delivered = True
            return
        self.out.start(status, [("content-type", "application/json")])
        self.out.write(body)

    # -- the attempt loop --------------------------------------------------------------------------------------

    async def _serve(self) -> Failure | None:
        """The current target's attempts over its pool. None when the client got an answer (or the vendor's
        request error); else why the target failed, before the client's first token."""
        pool = self.provider.pool
        attempts = 1 + self.cfg.first_token_retries
        failure: Failure | None = None
        key: str | None = None
        for n in range(attempts):
            wait = 0.0
            prev = key
            if pool is not None:
                key, wait = await self._pick(pool, prev)
                if key is None:  # every key out, or every usable one stayed at its max_concurrent
                    break
                self.job.key = mask(key)
            wait = retry.wait_before(n, wait, failure, pool is None or key == prev, pool is not None,
                                     self.cfg.first_token_timeout)
            if wait is None:
                break
            if wait:
                await self._sleep(wait)
            began = self.loop.time()
            # The key is given back however the attempt ends.
            with pool.lease(key, self.model) if pool is not None else contextlib.nullcontext():
                failure = await self._attempt(key)
            if pool is not None and key is not None:
                self._rest(pool, key, failure)
            if failure is None:
                account(self.job, self.meter.usage(self._whole_answer()), self.model, self.prices, pool, key)
                return None
            if not failure.retryable or n + 1 == attempts:
                break
            self.job.note("retry", f"attempt {n + 1} failed ({failure.reason}); retrying", attempt=n + 1,
                          reason=failure.reason, key=self.job.key, seconds=round(self.loop.time() - began, 3))
        if failure is None:  # every key rests longer than a request may wait: nothing was sent upstream
            self.job.key = None
            return every_key_resting(self.provider, self.proto, pool.resting(self.model))
        if failure.status is not None and self.leg.translation is not None:  # the vendor's error, in the client's shape
            status, body = self.leg.translation.error(failure.status, failure.body)
            failure = dataclasses.replace(failure, status=status, headers=error_headers(failure.headers), body=body)
        return failure

    async def _pick(self, pool: KeyPool, avoid: str | None) -> tuple[str | None, float]:
        """The pool's key for the next attempt and the seconds until it is back; while every usable key is at its
        max_concurrent, wait for a lease to come back (up to first_token_timeout). (None, _): no key to be had."""
        give_up = self.loop.time() + self.cfg.first_token_timeout
        while (pick := pool.pick(avoid, self.model)).busy:
            returned = pool.returned()
            if not await self._supervise(returned, lambda: give_up):
                returned.cancel()
                break
        return pick.key, pick.wait

    def _rest(self, pool: KeyPool, key: str, failure: Failure | None) -> None:
        """Tell the pool how the key did."""
        if failure is None:
            pool.succeeded(key)
            return
        rest = pool.failed(key, failure, self.model)
        if failure.stalled:
            logger.info("rotator: %s %s: key %s rests %g s (%s)", self.provider.name, self.job.id[:8], mask(key),
                        rest, failure.reason)

    def _give_up(self, failure: Failure) -> None:
        self.job.note("failed", f"giving up: {failure.reason}", reason=failure.reason)
        if self.out.committed:
            self.out.write(self._repair_state().error_event(f"upstream failed: {failure.reason}",
                                                            failure.status or 502))
            self.out.finish()
            self.job.delivered = True
            return
        if failure.status is not None:
            self.out.start(failure.status, response_headers(failure.headers))
            self.out.write(failure.body)
            return
        status = 504 if "timeout" in failure.reason else 502
        message = f"Rotator: the upstream failed: {failure.reason}"
        if self.proto is not None:
            self.out.start(status, [("content-type", "application/json")])
            self.out.write(self.proto.error_body(status, message))
        else:
            self.out.start(status, [("content-type", "text/plain")])
            self.out.write(message.encode() + b"\n")

    def _whole_answer(self) -> bytes | None:
        """The JSON answer the client got, when it was a whole one (for its usage)."""
        body = self.out.flow_body
        if self.client_stream or self.out.status != 200 or body.left_out:
            return None
        return body.shown()

    def _repair_state(self) -> Repairer:
        if self._repairer is None:
            assert self.proto is not None
            self._repairer = self.proto.repairer(self.body or {})
        return self._repairer

    # -- one attempt -------------------------------------------------------------------------------------------

    def _build(self, key: str | None) -> httpx.Request:
        leg = self.leg
        if leg.translation is not None:
            return self._build_translated(key)
        headers = request_headers(self.request.headers)
        query = leg.query
        body = leg.body
        content = self._client_bytes() if leg.unchanged else None  # None: serialised from `body` below
        path = leg.path
        if self.aggregate or self._asks_usage():  # (Chat: as_stream asks for the usage chunk)
            path, query, body = self.proto.as_stream(path, query, leg.body)
            # A stream that only needs the usage asked for keeps the client's bytes, with the option put in front
            # (an agent's request body can be megabytes: serialising it again is a real share of its cost).
            if isinstance(content, Upload):  # (a large body is not parsed whole: see `_sent_as_it_came`)
                content = with_keys_in_front(content, added_keys(leg.body, body))
            else:
                content = (usage_asked_in(content) if content is not None and not self.aggregate
                           and "stream_options" not in leg.body else None)
        if self.adapters:  # the provider's and the model's rewrites (rewrite/adapters/), before the credential
            path, body, headers = self.adapters.apply_to_path(path, body, headers, self.model)
            content = None
        if isinstance(body, dict) and not self.skeletal and (kept := self._without_refused(body)) is not body:
            body, content = kept, None
        if content is None:
            if self.skeletal:  # (`_sent_as_it_came` rules this out: never send a skeleton's stand-ins upstream)
                raise AssertionError("a large body's skeleton was to be sent upstream")
            content = json.dumps(body).encode()
        if isinstance(content, Upload):  # (httpx would send it chunked)
            headers = [*headers, ("content-length", str(content.size))]
            self._sent = b""  # (not parsed again for refused parameters: the request is not rewritten)
        else:
            self._sent = content
        if not leg.called:  # the client's credential and account are for the vendor it called, never another
            headers = [(n, v) for n, v in headers if n.lower() not in CREDENTIAL_HEADERS]
        if key is not None:
            headers, query = self.provider.authorize(headers, query, key)
        url = leg.url(path, self.called.path_prefix)
        if content is not self._client_bytes():  # (before the client's own credential, still masked here, is restored)
            self._record_request(self.request.method, url, headers, query, content, key)
        if key is None and self.job.credential and leg.called:
            headers, query = self.job.credential.restore(headers, query)
        url += f"?{query}" if query else ""
        return self.client.build_request(self.request.method, url, headers=encode_headers(headers), content=content)

    def _translated_request(self, leg: Leg, stream: bool) -> tuple[str, str, bytes, list[tuple[str, str]]]:
        """(path, query, content, headers) of a translated target, before the credential; once per leg and way of
        asking (a stream, or not). TranslationError when the target's protocol cannot take it."""
        t = leg.translation
        built = t.built.get(stream)
        if built is None:
            try:
                path, query, body = t.upstream_request(stream, self.hooks, leg)
            except UnsafeURLValue as e:
                raise TranslationError(str(e)) from None
            except MALFORMED as e:
                raise TranslationError(f"malformed {self.proto.name} request: {type(e).__name__}: {e}") from None
            path, body, headers = adapted(leg, path, body, t.headers(self.request.headers))
            built = t.built[stream] = (path, query, json.dumps(body).encode(), headers)
        return built

    def _build_translated(self, key: str | None) -> httpx.Request:
        path, query, content, headers = self._translated_request(self.leg, self.upstream_stream)
        self._left_out = []
        if (self._refusals() and (body := parse_json(content)) is not None
                and (kept := self._without_refused(body)) is not body):
            content = json.dumps(kept).encode()
        self._sent = content
        if key is not None:
            headers, query = self.provider.authorize(headers, query, key)
        url = self.provider.base_url + path
        self._record_request("POST", url, headers, query, content, key)
        url += f"?{query}" if query else ""
        return self.client.build_request("POST", url, headers=encode_headers(headers), content=content)

    # -- the steps a transformed request went through (for the flow's view) -------------------------------------

    def _record_request(self, method: str, url: str, headers: list[tuple[str, str]], query: str, content: bytes,
                        key: str | None) -> None:
        """Keep the upstream request of the current target (its last attempt's), with the pooled key masked."""
        step = self._step
        leg = self.leg
        if step is None:
            step = self._step = Step(leg.name, leg.protocol.name if leg.protocol else "", [])
            if self.job.steps is None:
                self.job.steps = []
            self.job.steps.append(step)
        if key is not None:
            shown = mask(key)
            headers = [(n, v.replace(key, shown)) for n, v in headers]
            query = query.replace(key, shown)
        step.changes = self._changes()
        step.method, step.url, step.headers, step.body = method, url + (f"?{query}" if query else ""), headers, content
        step.answer = None

    def _changes(self) -> list[str]:
        """What Rotator did to the client's request for the current target, in words."""
        leg = self.leg
        said = []
        if leg.translation is not None:
            said.append(f"translated from {self.proto.name} to {leg.protocol.name}")
            said += leg.translation.fitted
        elif not leg.unchanged:
            said.append(f"model {self.asked} sent as {leg.model}" if leg.model != self.asked
                        else "conversation state put into the body")
        if self.aggregate:
            said.append("sent as a stream (force_upstream_stream), the answer folded back into JSON")
        elif leg.translation is None and self._asks_usage():
            said.append("asked for the usage chunk (stream_options.include_usage)")
        chain = chain_for(leg.provider, leg.model) if leg.translation is not None else self.adapters
        if chain:
            said.append("adapters: " + ", ".join(a.name for a in chain.adapters))
        if self._left_out:
            left_out = ", ".join(map(shown_param, self._left_out))
            said.append(f"left out what {leg.model} refused before (param-refused): {left_out}")
        return said

    def _capture(self, resp: httpx.Response) -> Capture | None:
        """Where the current attempt's raw answer is kept, when Rotator translates or rewrites it for the client."""
        step = self._step
        if step is None or not (self.leg.translation is not None or self.adapters.answering or self.aggregate):
            return None
        step.answer = Capture(resp.status_code, resp.headers.get("content-type", ""))
        return step.answer

    async def _attempt(self, key: str | None) -> Failure | None:
        """One attempt on `key`, sent again at once without what the upstream refused (a stream, the usage option,
        a parameter) for as long as it refuses something new."""
        while (failure := await self._send(key)) is AGAIN:
            pass
        return failure

    async def _send(self, key: str | None) -> Failure | None:
        start = self.loop.time()
        whole = start + self.total_timeout
        deadline = start + self.cfg.first_token_timeout if self.upstream_stream else whole
        try:
            sending = asyncio.ensure_future(self.client.send(self._build(key), stream=True))
        except httpx.HTTPError as e:
            return Failure(f"bad upstream request: {e}", retryable=False)
        except ValueError as e:  # a header that cannot be sent (upstream.encode_headers): perhaps the key's
            return Failure(f"bad upstream request: {e}")
        except RecursionError:  # a body deep enough to parse, too deep to copy or encode
            body = error_protocol(self.provider, self.proto).error_body(400, f"Rotator: {TOO_DEEP}")
            return Failure(TOO_DEEP, 400, [("content-type", "application/json")], body, retryable=False)
        try:
            if not await self._supervise(sending, lambda: deadline):
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
                timeout = "first-token timeout" if self.upstream_stream else "request timeout"
                return Failure(f"{timeout} (no response headers)", stalled=self.upstream_stream)
            resp = sending.result()
            capture = self._capture(resp)
        except httpx.TransportError as e:
            return Failure(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__,
                           stalled=isinstance(e, NO_CONNECTION))
        finally:
            if not sending.done():
                sending.cancel()
        try:
            if resp.status_code >= 400:
                body = await self._error_body(resp, deadline)
                if isinstance(body, Failure):
                    return body
                if capture is not None:
                    capture.add(body)
                if self.aggregate and refuses_stream(resp.status_code, body):
                    self._unforce()
                    return AGAIN
                if self._asks_usage() and refuses_stream_options(resp.status_code, body):
                    self.provider.refuses_stream_options = True
                    self.job.note("usage-refused", f"{self.provider.name} refused stream_options: its Chat streams "
                                  "go upstream without it, as the client sent them (their usage is not known)")
                    return AGAIN
                if self._drops_refused(resp.status_code, body):
                    return AGAIN
                failure = retry.from_status(resp.status_code, resp.headers.multi_items(), body,
                                            self.provider.pool is not None)
                if failure is not None:
                    return failure
                if resp.status_code in FALL_THROUGH_STATUS and self.more_targets:  # the next target may serve it
                    return Failure(f"status {resp.status_code}", resp.status_code, resp.headers.multi_items(), body,
                                   retryable=False)
                self._forward_error(resp.status_code, resp.headers, body)
                return None
            if self.proto is not None and "text/event-stream" in resp.headers.get("content-type", ""):
                return await self._pump_sse(resp, deadline)
            if self.leg.translation is not None:
                return await self._within(self._answer_translated(resp), whole)
            return await self._within(self._forward_raw(resp), whole)
        except BodyTooLarge as e:
            return Failure(f"{e}, before the answer started")
        except BODY_CUTS as e:
            return Failure(f"{type(e).__name__} before the answer started")
        finally:
            await resp.aclose()

    async def _error_body(self, resp: httpx.Response, deadline: float) -> bytes | Failure:
        """An error answer's body, read within the attempt's own deadline (heartbeats meanwhile) and up to
        ERROR_BODY_MAX bytes: a body that stalls is a stall of this attempt, retried like a first-token timeout."""
        reading = asyncio.ensure_future(read_whole(piece_reader(resp, ERROR_BODY_MAX), ERROR_BODY_MAX))
        try:
            if not await self._supervise(reading, lambda: deadline):
                timeout = "first-token timeout" if self.upstream_stream else "request timeout"
                return Failure(f"{timeout} (status {resp.status_code}, its body stalled)",
                               stalled=self.upstream_stream)
            return reading.result()
        finally:
            if not reading.done():
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

    def _asks_usage(self) -> bool:
        """Whether this attempt asks the upstream for the usage chunk the client did not ask for."""
        return self.meter.ask_upstream and not self.provider.refuses_stream_options

    def _unforce(self) -> None:
        """The upstream refused a stream for this model: send the request as the client did, and remember."""
        model = self.model
        self.provider.stream_refusals.add(model)
        self.aggregate = self.upstream_stream = False
        self.job.note("stream-refused", f"the upstream refused a stream for {model}: sent as a non-stream request, "
                      "as are its next ones", model=model)

    def _refusals(self) -> set[str]:
        """The parameters the target's model refused before."""
        return self.provider.param_refusals.get(self.model, set()) if self.leg.protocol is not None else set()

    def _without_refused(self, body: dict) -> dict:
        """`body` without the parameters the target's model refused before (`body` itself if it has none)."""
        self._left_out = []
        for param in sorted(self._refusals()):
            if (kept := without(body, param)) is not None:
                body = kept
                self._left_out.append(param)
        return body

    def _drops_refused(self, status: int, body: bytes) -> bool:
        """Whether the upstream's 400 names parameters of the request just sent that its model does not support
        (at most MAX_REFUSED_PARAMS a request): then they are remembered for the provider's model, so this request
        and the model's next ones go without them."""
        proto = self.leg.protocol
        named = refused_params(proto.family, status, body) if proto is not None else ()
        sent = parse_json(self._sent) if named else None
        named = [p for p in named if sent is not None and p not in self._refused and without(sent, p) is not None]
        if not named or len(self._refused) + len(named) > MAX_REFUSED_PARAMS:
            return False
        self._refused += named
        self.provider.param_refusals.setdefault(self.model, set()).update(named)
        said = ", ".join(map(shown_param, named))
        self.job.note("param-refused", f"{said} ({self.provider.name} refused it for {self.model}: sent again "
                      "without it, as are the model's next requests)", params=named, model=self.model)
        return True

    async def _within(self, forwarding, deadline: float) -> Failure | None:
        """Run `forwarding` (an answer that is not an SSE stream) until `deadline`. Reached before anything was
        sent to the client, that is a retryable failure; after, the answer is cut."""
        if deadline == math.inf:
            return await forwarding
        task = asyncio.ensure_future(forwarding)
        try:
            if await self._supervise(task, lambda: deadline):
                return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not self.out.committed:
            return Failure("request timeout (no answer)")
        self.job.note("cut", f"request timeout: the answer was cut after {self.cfg.request_timeout:g} s")
        return None

    def _forward_error(self, status: int, headers: httpx.Headers, body: bytes) -> None:
        if self.out.committed:
            self.out.write(self._repair_state().error_event(body.decode("utf-8", "replace")[:500], status))
            return
        if self.leg.translation is not None:  # the vendor's error, in the client's protocol
            status, body = self.leg.translation.error(status, body)
            self.out.start(status, error_headers(headers.multi_items()))
        else:
            self.out.start(status, response_headers(headers))
        self.out.write(body)

    async def _answer_translated(self, resp: httpx.Response) -> Failure | None:
        """A translated target's non-stream answer (a target opted out of forced streaming), for the client."""
        leg = self.leg
        data = await read_whole(piece_reader(resp, self.max_body), self.max_body)
        if self._step is not None and self._step.answer is not None:
            self._step.answer.add(data)
        body = parse_json(data)
        if body is None:
            return Failure(f"the {leg.protocol.name} answer is not a JSON object", retryable=False)
        try:
            answer = leg.translation.answer(body, leg)
        except TranslationError as e:
            return Failure(str(e)[:200], retryable=False)
        self.out.start(resp.status_code, [("content-type", "application/json")])
        self.out.write(json.dumps(answer).encode())
        return None

    async def _forward_raw(self, resp: httpx.Response) -> Failure | None:
        next_piece = piece_reader(resp, self.max_body)
        if self.adapters.answering and resp.status_code == 200:  # a whole JSON answer the adapters rewrite
            data = await read_whole(next_piece, self.max_body)
            if self._step is not None and self._step.answer is not None:
                self._step.answer.add(data)
            body = parse_json(data)
            self.out.start(200, response_headers(resp.headers))
            self.out.write(json.dumps(self.adapters.answer_body(body)).encode() if body is not None else data)
            return None
        first = await next_piece()  # a body that breaks before its first byte is retried (see _attempt)
        if not self.out.committed:
            self.out.start(resp.status_code, response_headers(resp.headers))
        self.out.write(first)
        try:
            while chunk := await next_piece():
                self.out.write(chunk)
                await self.out.drain()
        except BODY_CUTS as e:
            self.job.note("cut", f"upstream body cut: {type(e).__name__}: {e}"[:300])
        return None

    async def _pump_sse(self, resp: httpx.Response, first_deadline: float) -> Failure | None:
        repairer, aggregator = self.leg.readers(self.client_stream, self.proto, self.adapters)
        self._repairer = repairer
        pumping = asyncio.ensure_future(self._pump(resp, repairer, aggregator))
        idle = self.cfg.idle_timeout

        def deadline() -> float:
            return self.last_rx + idle if repairer.started else first_deadline

        try:
            finished = await self._supervise(pumping, deadline)
        finally:
            if not pumping.done():
                pumping.cancel()
                await asyncio.gather(pumping, return_exceptions=True)
        cause = "idle timeout" if finished is False else pumping.result()
        if not repairer.started:
            ended = f"stream ended before the first token ({cause})"
            reason = "first-token timeout" if cause == "idle timeout" else ended
            return Failure(reason, stalled=cause == "idle timeout")
        if aggregator is not None:
            self._answer_aggregate(aggregator, repairer, cause, resp.headers)
            return None
        if not repairer.complete:
            self.job.note("repaired", f"stream ended without its completion signal ({cause}); "
                          f"ended as {self.cfg.on_truncation}", cause=cause)
            self.out.write(repairer.end(self.cfg.on_truncation))
            # The end of the response goes with the ending: a client that closes as soon as it reads the ending
            # (the OpenAI SDK does at [DONE]) must not beat it to mitmproxy.
            self.out.finish()
            self.job.delivered = True
        return None

    async def _pump(self, resp: httpx.Response, repairer: Repairer, aggregator) -> str:
        """Read the upstream, track it, and write what the client receives. Returns how the upstream ended."""
        parser = SSEParser()
        held: list[bytes] = []
        out = self.out
        loop = self.loop
        feed = self.meter.tap(repairer.feed, self.leg.protocol.name if self.leg.translation else None)
        next_piece = piece_reader(resp, self.max_body)
        push = piece_pusher(resp) if aggregator is None else None
        if self._step is not None and self._step.answer is not None:  # the raw stream, for the flow's steps
            next_piece = self._step.answer.reader(next_piece)
            push = None

        quiet, forward = repairer.quiet, self.meter.forwarder()
        # asyncio's clock without the method around it (a call less per event), unless the loop has its own
        now = time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time

        def pushed(chunk: bytes) -> bool:
            """One piece while pushing: what the loop below does once the first token was sent, without its
            awaits. True: stop pushing (the client is not keeping up; the loop drains)."""
            self.last_rx = now()
            if parser.idle and quiet(chunk):  # the usual delta, one whole block: no need to read it
                data = forward(chunk) if forward is not None else chunk
                if data is not None:
                    out.write(data)
                    self.last_tx = self.last_rx
                    return out.blocked
            events = parser.feed(chunk)
            if events:
                out.write(feed(events[0]) if len(events) == 1 else b"".join([feed(e) for e in events]))
                self.last_tx = self.last_rx
                self.job.delivered = repairer.complete
            return out.blocked

        try:
            while True:
                chunk = await next_piece()
                if not chunk:
                    events = parser.close()  # a last block whose blank line ended in a lone CR
                    if not events:
                        break
                else:
                    self.last_rx = loop.time()
                    events = parser.feed(chunk)
                    if not events:
                        continue
                if aggregator is not None:
                    for e in events:
                        feed(e)
                        aggregator.feed(e)
                    if repairer.started and self.job.ttft is None:
                        self._wake.done() or self._wake.set_result(None)
                        self.job.ttft = round(loop.time() - self.t0, 3)
                    continue
                data = feed(events[0]) if len(events) == 1 else b"".join([feed(e) for e in events])
                if held is None:
                    out.write(data)
                else:
                    held.append(data)
                    if not repairer.started:
                        continue
                    # the first token: commit and release what was held back
                    self._wake.done() or self._wake.set_result(None)
                    self.job.ttft = round(loop.time() - self.t0, 3)
                    if not out.committed:
                        out.start(200, response_headers(resp.headers) if not self.leg.translation else SSE_HEADERS)
                    out.write(b"".join(held))
                    held = None
                self.last_tx = self.last_rx
                self.job.delivered = repairer.complete
                await out.drain()
                if push is not None:  # from here on, pieces are handled as they arrive (see `pushed`)
                    await push(pushed)
                    await out.drain()
        except httpx.TransportError as e:
            return f"upstream reset: {type(e).__name__}"
        except BodyTooLarge as e:
            return str(e)
        except httpx.DecodingError as e:
            return f"upstream body undecodable: DecodingError: {e}"
        except BlockTooLarge as e:
            return str(e)
        except MALFORMED as e:  # valid JSON of a shape the protocol's reader cannot follow: a broken body too
            logger.warning("rotator: %s: upstream event not understood: %s: %s", self.job.id[:8],
                           type(e).__name__, e)
            logger.debug("rotator: where the upstream event was not understood", exc_info=True)
            return f"upstream event not understood ({type(e).__name__})"
        return "upstream ended"

    def _answer_aggregate(self, aggregator: Aggregator, repairer: Repairer, cause: str, headers: httpx.Headers) -> None:
        if not repairer.complete:
            self.job.note("repaired", f"forced stream ended without its completion signal ({cause}); "
                          "answered as truncated", cause=cause)
        error = aggregator.error
        answer = None
        if error is not None:
            message = str(error.get("message") or error) if isinstance(error, dict) else str(error)
            self.job.note("failed", f"forced stream carried an error: {message[:200]}")
        else:
            try:
                answer = json.dumps(aggregator.result()).encode()
            except MALFORMED as e:  # what the stream said cannot be folded into an answer
                message = f"rotator: the upstream's answer could not be read ({type(e).__name__})"
                self.job.note("failed", f"forced stream could not be folded: {type(e).__name__}: {e}"[:300])
        if answer is None:
            self.out.start(502, [("content-type", "application/json")])
            self.out.write(self.proto.error_body(502, message))
            return
        kept = [(n, v) for n, v in response_headers(headers) if n.lower() not in STREAM_ONLY_HEADERS]
        if self.leg.translation is not None:  # another vendor's headers do not describe the client's answer
            kept = []
        self.out.start(200, [*kept, ("content-type", "application/json")])
        self.out.write(answer)

    # -- clocks ------------------------------------------------------------------------------------------------

    async def _supervise(self, task: asyncio.Future, deadline) -> bool:
        """Wait for `task`, sending heartbeats during silences. False if `deadline()` passed first."""
        interval = self.cfg.heartbeat_interval
        while True:
            now = self.loop.time()
            due = deadline()
            beat = self.last_tx + interval if self.heartbeat is not None else math.inf
            if now >= due:
                return False
            if now >= beat:
                self._beat()
                continue
            await first_done(task, self._wake, timeout=min(due, beat) - now)
            if task.done():
                return True
            if self._wake.done():
                self._wake = self.loop.create_future()

    async def _sleep(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
        end = self.loop.time() + seconds
        await self._supervise(sleeper, lambda: end + 1)

    def _beat(self) -> None:
        if not self.out.committed:
            self.out.start(200, list(SSE_HEADERS))
            self.job.note("committed", "status 200 sent early, to keep the client alive with heartbeats")
        self.out.write(self.heartbeat)
        self.last_tx = self.loop.time()
