"""What a request put to one of its targets is (`Leg`), what a translated one carries (`Crossing`, `Translation`),
and the relays its answer's events pass on their way to the client's readers (which its target makes:
rewrite/exchange/target.py, `Target.readers`).

Routes (rewrite/routing/routes.py) name the targets in order; the engine (rewrite/exchange/fallback.py) tries them and
makes each one's leg there. A target that speaks the client's protocol gets the client's request (with the route's
model, if it names one); a target that speaks another protocol gets it translated (protocols/translate/), and its
streams, answers and errors are translated back. Only translated targets build translation objects: the native path
stays as lean as without routes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import protocols
import protocols.translate as translate
from protocols.base import Aggregator, Protocol, Repairer, RepairerAround
from protocols.capabilities import Capabilities
from protocols.events import Event
from protocols.sse import dumps, format_event, load_object
from protocols.translate import Decoder, StreamFolder, StreamTranslator, Translator
from protocols.translate.base import MALFORMED, TappedDecoder, TranslationError
from protocols.unified import Answer, Request, ToolIds
from protocols.unified_stream import AnswerBuilder
from rewrite.adapters.chain import EMPTY_CHAIN, AdapterChain
from rewrite.lifecycle.events import Encoding
from rewrite.lifecycle.hooks import Hooks
from rewrite.providers import Provider
from rewrite.routing.capabilities import MAX_REMEMBERED
from rewrite.upstream.client import request_headers

# Client headers a translated request keeps: the rest belong to the client's vendor (versions, betas, telemetry).
TRANSLATED_KEEP = frozenset({"user-agent"})


class RequestRefused(Exception):
    """A plug-in refused the request as it shaped its body for a target (`Shaping.refused`): answer the client with
    this at once (e.g. an unknown `previous_response_id`)."""

    def __init__(self, status: int, body: bytes, reason: str) -> None:
        super().__init__(reason)
        self.status, self.body, self.reason = status, body, reason


@dataclass(slots=True)
class Leg:
    """One target of a request: who serves it, the model and protocol it is asked in, and how to ask.

    For a native leg, `path`, `query` and `body` are what goes upstream (the client's own when `body` is
    `client_body`); `translation` is set when the target speaks another protocol than the client.
    """

    provider: Provider
    model: str  # the model sent upstream
    protocol: Protocol | None  # what the upstream speaks; None: not a generation call
    called: bool  # the provider of the host the client called (the only one its own credential may go to)
    path: str
    query: str
    body: dict | None
    unchanged: bool = True  # body and path are the client's: its bytes go upstream as they came
    translation: Translation | None = None
    wants_answer: bool = False  # a plug-in keeps the unified answer (`Shaping.keep_answer`, `Encoding.keep_answer`)
    answers: AnswerBuilder | None = None  # the current attempt's answer, built for the plug-ins
    answer: Answer | None = None  # a whole answer, set at once (a translated non-stream answer)
    asked: dict | None = None  # the client's body, as the plug-ins shaped it for this leg
    record: dict = field(default_factory=dict)  # what the flow records of this target
    # A generation call's adapters (rewrite/adapters/): its provider's and its model's, looked up once (adapters_for).
    adapters: AdapterChain = EMPTY_CHAIN
    # A subscription login's signed body, on the login itself: it goes upstream byte for byte, nothing rewrites it.
    sealed: bool = False

    def final_answer(self) -> Answer | None:
        """The unified answer the client got, for the plug-ins; None after an error answer."""
        if self.answer is not None:
            return self.answer
        if self.answers is None or self.answers.error is not None:
            return None
        return self.answers.result(truncated=not self.answers.finished)


@dataclass(frozen=True, slots=True)
class Crossing:
    """What every request of one protocol translated for one model of a provider that speaks another carries: both
    translators, the model's capabilities, the headers its protocol wants for it, its endpoints. Made the first time
    the model is asked for in that protocol (`crossing`), and kept in the provider's model table, which the config
    builds."""

    client: Translator
    upstream: Translator
    # (of the model the host is asked for: a `rename_model` adapter renames it after translation)
    caps: Capabilities
    headers: tuple[tuple[str, str], ...]  # the upstream protocol's `required_headers`, with the model's values
    endpoints: tuple[tuple[str, str], tuple[str, str]]  # (path, query) of a call not a stream, and of a stream
    same_family: bool  # one vendor family speaks both (the client's end-user id may go)


def crossing(provider: Provider, model: str, client: Protocol, upstream: Protocol) -> Crossing:
    """The `Crossing` of `client`'s requests for `model` at `provider`, which speaks `upstream`."""
    table = provider.models
    assert table is not None  # (every provider has one: Provider.__post_init__)
    key = (client.name, upstream.name, model)
    found = table.crossings.get(key)
    if found is None:
        caps = table.get(provider.adapters_for(model).model_sent(model))
        speaks = protocols.registered(upstream.name)
        headers = tuple((name, value) for name, column in speaks.required_headers
                        if (value := getattr(caps, column)))
        ends = speaks.translator.endpoint
        found = Crossing(protocols.registered(client.name).translator, speaks.translator, caps, headers,
                         (ends(model, False), ends(model, True)), client.family == upstream.family)
        if len(table.crossings) < MAX_REMEMBERED:  # (model names come from clients)
            table.crossings[key] = found
    return found


class Translation:
    """A request of the client's protocol put to a target of another, and the way back."""

    def __init__(self, crossing: Crossing, leg: Leg, request: Request) -> None:
        self.crossing = crossing
        self.client = crossing.client.name
        self.upstream = crossing.upstream.name
        self.request = request  # the client's request, unified (the encoders answer it)
        self.model = leg.model
        self.fitted: list[str] = []  # what was changed to fit the target model, in words (the flow's steps)
        self.ids = ToolIds()
        self.built: dict[bool, tuple] = {}  # by stream or not: (path, query, content, headers), see the engine
        # The marks (protocols.evidence.content_mark) of the opaque state the plug-ins put back, by the fingerprint
        # of the pooled key whose answer made it: left out of an attempt on another key of the pool.
        self.made: dict[str, set[str]] = {}
        self.keep_answer = False  # a plug-in keeps the unified answer (`Encoding.keep_answer`)

    def upstream_request(self, stream: bool, hooks: Hooks, leg: Leg) -> tuple[str, str, dict]:
        """(path relative to the target's base_url, query, body) for the target."""
        request = dataclasses.replace(self.request, model=self.model, stream=stream)
        if hooks.wants(Encoding):  # (its messages' part lists are the plug-ins' to change: copies)
            request = dataclasses.replace(request, messages=[dataclasses.replace(m, parts=list(m.parts))
                                                             for m in request.messages])
            e = hooks.pass_along(Encoding, "made", leg.provider, leg.model, self.upstream, request)
            if e is not None:
                self.made, self.keep_answer = e.made, e.keep_answer
        crossing = self.crossing
        body, self.fitted = crossing.upstream.fitted_request(request, crossing.caps)
        path, query = crossing.endpoints[stream]
        return path, query, body

    def headers(self, client_headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        headers = [(n, v) for n, v in request_headers(client_headers) if n.lower() in TRANSLATED_KEEP]
        headers.append(("content-type", "application/json"))
        headers.extend(self.crossing.headers)
        return headers

    def repairer(self, answers: AnswerBuilder | None) -> Repairer:
        decoder = self._decoder(answers)
        return StreamTranslator(decoder, self.crossing.client.encoder(self.request, int(time.time())))

    def folder(self, answers: AnswerBuilder | None) -> Aggregator:
        return StreamFolder(self._decoder(answers), self.crossing.client, self.request)

    def _decoder(self, answers: AnswerBuilder | None) -> Decoder:
        decoder = self.crossing.upstream.decoder(self.ids)
        return decoder if answers is None else TappedDecoder(decoder, answers)

    def answer(self, body: dict, leg: Leg) -> dict:
        """A non-stream answer of the target, for the client. TranslationError if it is not one."""
        try:
            unified = self.crossing.upstream.answer(body, self.ids)
            answer = self.crossing.client.answer_from_ir(unified, self.request)
        except MALFORMED as e:
            raise TranslationError(f"malformed {self.upstream} answer: {type(e).__name__}: {e}") from None
        if leg.wants_answer:
            leg.answer = unified
        return answer

    def error(self, status: int, body: bytes) -> tuple[int, bytes]:
        return translate.translate_error(status, body, self.client)


def adapted_event(adapters: AdapterChain, event: Event) -> Event:
    """An upstream event as the answer adapters rewrite it (an event without a JSON object passes as it is)."""
    obj = load_object(event.data) if event.data is not None else None
    if obj is None:
        return event
    data = dumps(adapters.answer_event(obj))
    eol = b"\r\n" if event.raw.endswith(b"\r\n\r\n") else b"\n"
    return Event(format_event(data, event.event, eol), data.decode(), event.event, event.id)


def _relay(event: Event, adapt, tap: Decoder | None) -> Event:
    if adapt is not None:
        event = adapt(event)
    if tap is not None:
        try:
            tap.feed(event)
        except MALFORMED:
            pass
    return event


class ReaderRelay(RepairerAround):
    """A native repairer fed each event after the answer adapters (`adapt`) and the plug-ins' decoder (`tap`)."""

    def __init__(self, repairer: Repairer, adapt=None, tap: Decoder | None = None) -> None:
        self.inner, self.adapt, self.tap = repairer, adapt, tap

    def feed(self, event: Event) -> bytes:
        return self.inner.feed(_relay(event, self.adapt, self.tap))


class AggregatorRelay(Aggregator):
    """`ReaderRelay` for an aggregator."""

    def __init__(self, aggregator: Aggregator, adapt=None, tap: Decoder | None = None) -> None:
        self.aggregator, self.adapt, self.tap = aggregator, adapt, tap

    error = property(lambda self: self.aggregator.error)
    truncated = property(lambda self: self.aggregator.truncated)

    def feed(self, event: Event) -> None:
        self.aggregator.feed(_relay(event, self.adapt, self.tap))

    def result(self) -> dict:
        return self.aggregator.result()


def error_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers of a translated error: JSON, and the vendor's retry hints."""
    keep = [(n, v) for n, v in headers if n.lower() in ("retry-after", "retry-after-ms")]
    return [("content-type", "application/json"), *keep]


def adapted(leg: Leg, path: str, body: dict, headers: list[tuple[str, str]]):
    """The target's adapter chain on a translated request: (path, body, headers); a renamed model moves into the
    path too, for a protocol that names it there."""
    if not leg.adapters.adapters:
        return path, body, headers
    return leg.adapters.apply_to_path(path, body, headers, leg.model, leg.protocol)
