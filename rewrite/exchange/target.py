"""One target of a request (`Target`: its provider and model, its payer, its lessons, its leg), and the upstream
request of each attempt on it: the client's own bytes where nothing changes, else rebuilt (translated, asked as a
stream, adapters applied, what the plug-ins leave out), with the credential its payer applies
(rewrite/lifecycle/payer.py)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import httpx

import protocols
import protocols.translate as translate
from protocols.base import Aggregator, Protocol, Repairer
from protocols.events import StreamParser
from protocols.refused_params import without
from protocols.sse import dumps, load_object
from protocols.translate import TranslationError
from protocols.translate.base import MALFORMED, TappedDecoder
from protocols.unified import ToolIds
from protocols.unified_stream import AnswerBuilder
from protocols.urls import UnsafeURLValue
from rewrite.adapters.chain import EMPTY_CHAIN
from rewrite.exchange.leg import AggregatorRelay, Leg, ReaderRelay, Translation, adapted, adapted_event, crossing
from rewrite.exchange.request import ClientRequest
from rewrite.intake.big_json import Upload, rewritten_body, rewritten_upload
from rewrite.lifecycle.events import Building, Built, Learned
from rewrite.lifecycle.hooks import Hooks
from rewrite.lifecycle.lessons import NOTHING_LEARNED, Lessons
from rewrite.lifecycle.payer import Outbound, Payer, Ticket, carried
from rewrite.policy.outcomes import Note
from rewrite.providers import Provider, guest_path
from rewrite.upstream.client import encode_headers, request_headers

if TYPE_CHECKING:
    from rewrite.exchange.context import Context

# Distinct parameters a request is sent again without, after 400s that name them (protocols/vendor_errors.py).
MAX_REFUSED_PARAMS = 3


def required_headers(leg: Leg, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A native leg's headers for a target the client did not call, with what its protocol requires for the model
    that they lack (its `crossing`'s headers, as a translated leg's): a cloud platform's client (the anthropic SDK's
    Vertex and Bedrock clients, boto3) sends no `anthropic-version`, which Anthropic's own API refuses a call
    without."""
    if leg.called or leg.protocol is None:
        return headers
    have = {n.lower() for n, _ in headers}
    required = crossing(leg.provider, leg.model, leg.protocol, leg.protocol).headers
    lacking = [(name, value) for name, value in required if name not in have]
    return [*headers, *lacking] if lacking else headers


def translated_request(req: ClientRequest, leg: Leg, t: Translation, stream: bool, hooks: Hooks
                       ) -> tuple[str, str, bytes, list[tuple[str, str]]]:
    """(path, query, content, headers) of a translated target (`leg`, its `translation`), before the credential;
    once per leg and way of asking (a stream, or not). TranslationError when the target's protocol cannot take it."""
    built = t.built.get(stream)
    if built is None:
        try:
            path, query, body = t.upstream_request(stream, hooks, leg)
        except UnsafeURLValue as e:
            raise TranslationError(str(e)) from None
        except MALFORMED as e:
            raise TranslationError(f"malformed {t.client} request: {type(e).__name__}: {e}") from None
        path, body, headers = adapted(leg, path, body, t.headers(req.request.headers))
        built = t.built[stream] = (path, query, dumps(body), headers)
    return built


def in_envelope(leg: Leg, path: str, content: bytes, body: dict) -> tuple[str, bytes]:
    """A plain call (on `path`, relative to its vendor's base URL; `body` its request, `content` its JSON) for a target
    whose wire wraps calls in an envelope (a cloud platform's), in a new one. (Such a target's answers are its
    protocol's own: a wire that wraps its answers too, a login's or Bedrock's InvokeModel, serves only its own
    clients: `Provider.guest_envelope`.)"""
    envelope = leg.provider.guest_envelope
    assert envelope is not None
    return envelope.envelope_path("", path, body), envelope.enveloped(None, path, content)


class Target:
    """One target of a request, made once when it is tried: who serves it (`provider`, asked for `model`), who pays
    for it (`payer`), what its refusals taught (`lessons`: asked here, and only here), and how the request is put to
    it (`leg`, given by `take`; again when it is sent whole, `expanded`). It builds each attempt's upstream request,
    asked as the client asked or as a stream (forced, and folded back). `refused` is the request's list of
    parameters it was sent again without (shared by its targets)."""

    leg: Leg

    def __init__(self, ctx: Context, provider: Provider, model: str, payer: Payer, more: bool,
                 refused: list[str]) -> None:
        self.ctx, self.req = ctx, ctx.req
        self.provider = provider
        self.model = model
        self.payer = payer
        self.more = more  # targets left after this one
        self.refused = refused
        self.lessons: Lessons = ctx.hooks.ask(Learned, provider, model) or NOTHING_LEARNED
        # What this target refused during the request, left out of its next attempts: parameters, and per pooled key
        # the marks of the state its account refused as another's.
        self.left_out: set[str] = set()
        self.foreign: dict[str, set[str]] = {}
        # By id() of the ticket: the headers and query its attempt sent (`carried` reads them, for an error answer).
        self.outbound: dict[int, tuple[list[tuple[str, str]], str]] = {}
        self.sent: bytes | Upload = b""  # the body of the current attempt's upstream request
        self.said: list[str] = []  # what the plug-ins changed of the current attempt's body, in words
        self.continues_by: str | None = None  # a continuation's: how it asks for the rest ("prefill", "instruction")
        self.expanded = False  # sent whole (its stored state expanded) because the key holding that state rests

    def take(self, leg: Leg, ctx: Context | None = None) -> None:
        """Put the request to the target as `leg` says (`ctx`: a continuation's, whose request is its own)."""
        if ctx is not None:
            self.ctx, self.req = ctx, ctx.req
        req, lessons = self.req, self.lessons
        self.leg = leg
        # What the target's error answers mean, and the usage windows its answers report: its protocol's readers
        # (its family's, for a call of no protocol), with its provider's dialects.
        name = leg.protocol.name if leg.protocol is not None else None
        self.errors, self.windows = leg.provider.errors(name), leg.provider.windows(name)
        p = req.proto
        self.adapters = leg.adapters if p is not None and not leg.translation else EMPTY_CHAIN
        # Forced upstream streaming: a non-stream client request goes upstream as a stream and is folded back into
        # JSON, so the stream deadlines protect it; unless the provider opted out, the model refuses streams or the
        # request is answered before its work is done (`folds`: a background response).
        self.aggregate = (p is not None and not req.client_stream and leg.provider.force_upstream_stream
                          and not lessons.stream and p.folds(req.body))
        # (the client's protocol's usage option: a translated target's request is its own protocol's)
        self.ask_usage = leg.translation is None and req.meter.ask_upstream and not lessons.stream_options
        # Whether its provider has cuts continued (`resume.mode`: rewrite/exchange/resume.py), and whether this
        # target's are: a login's signed body is never rewritten for a continuation (its cut is continued on the
        # route's next target, if any). A continuation's own call resumes, whatever its provider says (Continuation).
        resume = self.ctx.resume
        self.resume_wanted = resume is not None and resume.settings_for(leg.provider.name).mode == "continue"
        self.resumes = self.resume_wanted and (not leg.sealed or self.more)
        if self.payer.sealed:
            self._seal()
        self.upstream_stream = p is not None and (req.client_stream or self.aggregate)
        # How its streamed answers are framed: the protocol it is asked in (SSE, an AWS event stream), or the envelope
        # the client called its provider in (its events opened as they come: rewrite/exchange/enveloped.py).
        self.enveloped = leg.called and req.opened is not None
        self.framing: Protocol | None = leg.protocol
        # What the plug-ins see of it besides (rewrite/lifecycle/views.py's TargetView): its name, its leg's protocol,
        # translation, whether its body is the client's, and every adapter its requests and answers go through.
        self.name = f"{leg.provider.name}/{leg.model}" if leg.model else leg.provider.name
        self.protocol, self.translation = leg.protocol, leg.translation
        self.unchanged = leg.unchanged
        self.rewrites = leg.adapters if leg.translation is not None else self.adapters

    def _seal(self) -> None:
        """A sealed body goes as it came: what would rewrite it is skipped, and the flow says so."""
        skipped = []
        if self.adapters.adapters:
            skipped.append("adapters (" + ", ".join(a.name for a in self.adapters.adapters) + ")")
        if self.aggregate:
            skipped.append("the forced upstream stream (force_upstream_stream): sent as the client asked")
        if self.ask_usage:
            skipped.append("asking for the usage chunk")
        if refused := self.lessons.params:
            skipped.append("leaving out what the model refused before (" + ", ".join(sorted(refused)) + ")")
        self.adapters, self.aggregate, self.ask_usage = EMPTY_CHAIN, False, False
        if skipped:
            self.ctx.job.note(Note.SIGNED, "the client's signed body went as it came; skipped: " + "; ".join(skipped),
                              skipped=skipped)

    def streams(self, content_type: str) -> bool:
        """Whether an answer of `content_type` is a stream the engine reads (and repairs)."""
        dialect = self.req.dialect
        if self.enveloped and dialect is not None and dialect.stream_type is not None:
            return dialect.stream_type in content_type
        return self.framing is not None and self.framing.streams(content_type)

    def parser(self) -> StreamParser:
        """A reader of its stream's events."""
        if self.enveloped and self.req.opened is not None:
            return self.req.opened.parser()
        assert self.framing is not None
        return self.framing.parser()

    def readers(self, client: Protocol) -> tuple[Repairer, Aggregator | None]:
        """One attempt's stream readers (for a client speaking `client`): the repairer (what the client receives, and
        when the first token came) and, for a non-stream client, the aggregator that folds the stream into its
        answer. A native leg's answer adapters (`adapters.answering`) rewrite each event first; the leg's answer is
        built for the plug-ins that keep it (`Leg.answers`)."""
        leg, client_stream = self.leg, self.req.client_stream
        leg.answers = AnswerBuilder() if leg.wants_answer else None
        leg.answer = None
        repairer: Repairer
        if (t := leg.translation) is not None:
            aggregator = None if client_stream else t.folder(leg.answers)
            repairer = t.repairer(leg.answers if aggregator is None else None)
        else:
            assert leg.body is not None and leg.protocol is not None  # (readers are made for generation calls only)
            repairer = client.repairer(leg.body)
            aggregator = None if client_stream else client.aggregator(leg.body)
            adapt = partial(adapted_event, self.adapters) if self.adapters.answering else None
            tap = None
            if leg.answers is not None:  # a native answer, decoded for the plug-ins as well
                tap = TappedDecoder(translate.get(leg.protocol.name).decoder(ToolIds()), leg.answers)
            if aggregator is not None and (adapt is not None or tap is not None):
                aggregator = AggregatorRelay(aggregator, adapt, tap)
            elif adapt is not None or tap is not None:
                repairer = ReaderRelay(repairer, adapt, tap)
        dialect = self.req.dialect  # (around the events of its provider's envelope: an exception frame)
        if self.enveloped and dialect is not None and dialect.repairer is not None:
            repairer = dialect.repairer(repairer)
        return repairer, aggregator

    def build(self, ticket: Ticket) -> httpx.Request:
        """The upstream request of an attempt on `ticket`'s credential."""
        if self.leg.translation is not None:
            return self._build_translated(self.leg.translation, ticket)
        req, leg = self.req, self.leg
        headers = required_headers(leg, request_headers(req.request.headers))
        if not leg.called and req.envelope is not None and (wire := req.called.wire) is not None:
            headers = wire.carried(headers, req.envelope)  # (what its envelope's body said, in a header)
        query = leg.query
        body = leg.body
        content = req.client_bytes() if leg.unchanged else None  # None: serialised from `body` below
        path = leg.path
        # (Chat: as_stream asks for the usage chunk.) Either needs a protocol, so a native leg's body is the JSON.
        if (self.aggregate or self.ask_usage) and leg.protocol is not None and leg.body is not None:
            path, query, body = leg.protocol.as_stream(path, query, leg.body)
            # The client's bytes are kept, with only the members asking for a stream spliced in (an agent's request
            # body can be megabytes: serialising it again is a real share of its cost).
            if isinstance(content, Upload):  # (a large body is not parsed whole: see Legs.sent_as_it_came)
                content = rewritten_upload(content, leg.body, body, req.places)
            elif content is not None:
                content = rewritten_body(req.plain, leg.body, body, req.places)
                # (spliced, the client's bytes not copied; joined to be encoded or enveloped again, or sent elsewhere)
                if isinstance(content, Upload) and (req.repackaged or not leg.called):
                    content = b"".join(content.pieces)
        # The provider's and the model's rewrites (rewrite/adapters/), before the credential; chosen only for a
        # generation call, whose body is the JSON.
        if self.adapters.adapters and body is not None:
            path, body, headers = self.adapters.apply_to_path(path, body, headers, self.model, leg.protocol)
            content = None
        if isinstance(body, dict) and not req.skeletal and not self.payer.sealed:
            kept = self._building(ticket, body, None)
            if kept is not None:
                body, content = kept, None
        if content is None:
            if req.skeletal:  # (Legs.sent_as_it_came rules this out: never send a skeleton's stand-ins upstream)
                raise AssertionError("a large body's skeleton was to be sent upstream")
            content = dumps(body)
        if isinstance(content, Upload) and not content.whole:  # (httpx would send it chunked)
            headers = [*headers, ("content-length", str(content.size))]
            self.sent = b""  # (not parsed again for refused parameters: the request is not rewritten)
        else:
            self.sent = req.plain if content is req.client_bytes() else content
        shown = content if isinstance(content, Upload) else self.sent  # (what the flow's steps show)
        plain = body if isinstance(body, dict) else {}
        if req.repackaged and isinstance(content, bytes):
            # A content-encoded body (or a wire's envelope) goes plain to another target than the vendor the client
            # called; rewritten for that vendor, it is encoded (put in the envelope) again the way the client sent it.
            if not leg.called:
                content = self.sent
                headers = [(n, v) for n, v in headers if n.lower() != "content-encoding"]
            elif content is not req.client_bytes():
                if req.dialect is not None:
                    _, content = req.enveloped(path, content, plain)
                content = req.encoded(content)
        if leg.called and req.dialect is not None:  # (the client's own path, for the call in its envelope)
            path = req.dialect.envelope_path(req.client_path, path, plain)
        if not leg.called and leg.provider.guest_envelope is not None and isinstance(content, bytes):
            path, content = in_envelope(leg, guest_path(path, req.called.path_prefix), content, plain)
            url, shown = leg.provider.base_url + path, content
        elif leg.called:
            url = leg.provider.upstream_url(path, req.host)
        else:  # (the path relative to the called vendor's SDK base, onto this provider's base URL)
            url = leg.provider.guest_url(path, req.called.path_prefix)
        if content is not req.client_bytes():  # (its steps: what the request looked like, credential masked)
            self._built(ticket, Outbound(req.request.method, url, query, list(headers), shown))
        return self._send(ticket, Outbound(req.request.method, url, query, headers, content))

    def _build_translated(self, t: Translation, ticket: Ticket) -> httpx.Request:
        path, query, content, headers = translated_request(self.req, self.leg, t, self.upstream_stream,
                                                           self.ctx.hooks)
        kept = self._building(ticket, None, content)
        if kept is not None:
            content = dumps(kept)
        self.sent = content
        if self.provider.guest_envelope is not None:  # (a target whose wire wraps its calls: a cloud platform)
            plain = kept if kept is not None else load_object(content) or {}
            path, content = in_envelope(self.leg, path, content, plain)
        url = self.provider.base_url + path
        self._built(ticket, Outbound("POST", url, query, list(headers), content))
        return self._send(ticket, Outbound("POST", url, query, headers, content))

    def _building(self, ticket: Ticket, body: dict | None, raw: bytes | None) -> dict | None:
        """The body the plug-ins make of the attempt's, without what the target refused during the request (None:
        the same); what they changed in `said`."""
        less = None
        if self.left_out or self.foreign:  # (a translated body is parsed again only then)
            less = self._without_refused(ticket, body if body is not None or raw is None else load_object(raw))
        if less is not None:
            body, raw = less, None
        e = self.ctx.hooks.pass_along(Building, "body", self, ticket, body, raw)
        self.said = e.said if e is not None else []
        return e.body if e is not None and e.changed else less

    def _without_refused(self, ticket: Ticket, body: dict | None) -> dict | None:
        marks = self.foreign.get(ticket.key) if ticket.key is not None else None
        if body is None or not (self.left_out or marks):
            return None
        kept = body
        for param in sorted(self.left_out):
            kept = without(kept, param) or kept
        reader = protocols.registered(self.leg.protocol.name).evidence if self.leg.protocol is not None else None
        if marks and reader is not None:
            kept = reader.without(kept, marks) or kept
        return kept if kept is not body else None

    def _built(self, ticket: Ticket, shown: Outbound) -> None:
        hooks = self.ctx.hooks
        if hooks.wants(Built):  # (the credential masked in it: worked out only for a part that reads it)
            hooks.announce(Built, self, ticket, self.payer.apply(shown, ticket, shown=True))

    def carried(self, ticket: Ticket) -> tuple[str, ...]:
        """Every credential `ticket`'s attempt sent, in the form it went (read only when an answer is scrubbed)."""
        sent = self.outbound.get(id(ticket))
        return () if sent is None else carried(*sent, self.provider.credential.client_query)

    def _send(self, ticket: Ticket, out: Outbound) -> httpx.Request:
        out = self.payer.apply(out, ticket)
        self.outbound[id(ticket)] = (out.headers, out.query)
        url = out.url + (f"?{out.query}" if out.query else "")
        return self.ctx.client.build_request(out.method, url, headers=encode_headers(out.headers),
                                             content=out.content)

    def sent_body(self) -> dict | None:
        """The body of the current attempt, parsed (None when it was not JSON, or not kept)."""
        sent = self.sent
        return load_object(b"".join(sent.pieces) if isinstance(sent, Upload) else sent) if sent else None
