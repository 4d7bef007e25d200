"""The contract every protocol's translator fulfils, and the stream adapters built from it.

A `Translator` turns its protocol's requests, answers and errors into the unified representation
(`protocols.unified`) and back. Its stream `Decoder` turns the protocol's parsed SSE events into unified stream
events; its stream `Encoder` turns unified stream events into the protocol's SSE bytes. Chained, they give a
`StreamTranslator`, which the engine can use exactly like a native `Repairer`: same `started` (first token),
`complete`, `failed`, `end()` and `error_event()`, so first-token retries, heartbeats and truncation endings work
on translated streams as on native ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from protocols.base import ENDING_ERROR, ENDING_LENGTH, Aggregator, Repairer
from protocols.capabilities import EFFORTS, Capabilities, fit
from protocols.errors import TRUNCATED_MESSAGE
from protocols.events import Event
from protocols.unified import FINISH_LENGTH, Answer, Request, ToolIds, Usage
from protocols.unified_stream import (
    KIND_TRUNCATED,
    AnswerBuilder,
    Error,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)

# What reading a JSON value of an unexpected shape raises.
MALFORMED = (AttributeError, TypeError, KeyError, IndexError, ValueError)


class TranslationError(ValueError):
    """A body that is not a well-formed message of its protocol: answer it with a 400, do not crash."""


class Decoder:
    """One upstream stream of a protocol, read event by event into unified stream events."""

    def feed(self, event: Event) -> list[StreamEvent]:
        raise NotImplementedError

    def close(self) -> list[StreamEvent]:
        """At the end of the upstream: what it had said but not yet completed (a finish awaiting its terminator)."""
        return []

    @property
    def finished(self) -> bool:
        """Whether the upstream said its stop reason (a finish `close` would give, if its terminator is lost)."""
        return False


class TappedDecoder(Decoder):
    """A decoder whose unified events also build an answer (`answers`: the one the engine's conversation hooks are
    given)."""

    def __init__(self, decoder: Decoder, answers: AnswerBuilder) -> None:
        self.decoder, self.answers = decoder, answers

    def feed(self, event: Event) -> list[StreamEvent]:
        events = self.decoder.feed(event)
        for e in events:
            self.answers.feed(e)
        return events

    def close(self) -> list[StreamEvent]:
        events = self.decoder.close()
        for e in events:
            self.answers.feed(e)
        return events

    finished = property(lambda self: self.decoder.finished)


class Encoder:
    """One client stream of a protocol, written from unified stream events.

    `started` turns true at the first content-bearing event (non-empty text or reasoning, a tool call, a redacted
    reasoning block, the finish, an error): the events the protocol's own Repairer counts as the first token.
    After the finish, an error, `end()` or `error_event()` the stream is complete and further events add nothing.
    """

    started = False
    complete = False
    failed = False

    def feed(self, event: StreamEvent) -> bytes:
        if self.complete:
            return b""
        # `type(...) is`, not isinstance or match: the cheapest test on the per-event path, and mypy narrows it.
        if type(event) is TextDelta:
            if not event.text:
                return b""
            self.started = True
            self.pieces += 1
            return self.text(event.text)
        if type(event) is ToolArgumentsDelta:
            if not event.fragment:
                return b""
            self.pieces += 1
            return self.tool_arguments(event.index, event.fragment)
        if type(event) is ReasoningDelta:
            if not event.text:
                return b""
            self.started = True
            self.pieces += 1
            return self.reasoning(event.text)
        if type(event) is ToolCallStart:
            self.started = True
            return self.tool_start(event)
        if type(event) is ToolCallEnd:
            return self.tool_end(event.index)
        if type(event) is ReasoningEnd:
            self.started = self.started or event.redacted
            return self.reasoning_end(event)
        if type(event) is UsageUpdate:
            self.usage = event.usage
            return b""
        if type(event) is Start:
            return self.start(event)
        if type(event) is Finish:
            self.started = self.complete = True
            return self.finish(event.reason, event.stop_sequence, truncated=False)
        if type(event) is Error:
            return self.error_event(event.message, event.status, event.kind)
        raise TypeError(f"not a stream event: {event!r}")

    def end(self, ending: str = ENDING_LENGTH) -> bytes:
        """Close a stream that stopped here so it says "truncated"; b"" if it is already complete."""
        if self.complete:
            return b""
        if ending == ENDING_ERROR:
            return self.error_event(TRUNCATED_MESSAGE, 500, KIND_TRUNCATED)
        self.complete = True
        self.usage = self.counted_usage()
        return self.finish(FINISH_LENGTH, None, truncated=True)

    def counted_usage(self) -> Usage:
        """The usage so far, with the output counted as one token per delta sent if the upstream reported less."""
        usage = self.usage or Usage()
        return replace(usage, output_tokens=max(usage.output_tokens, self.pieces))

    def error_event(self, message: str, status: int = 502, kind: str | None = None) -> bytes:
        """The protocol's in-stream error; the stream is then complete and failed."""
        self.started = self.complete = self.failed = True
        return self.error(message, status, kind)

    # Each protocol's encoder implements these.
    usage: Usage | None = None
    pieces = 0  # content deltas sent, for the usage of a truncated ending

    def start(self, event: Start) -> bytes:
        raise NotImplementedError

    def text(self, text: str) -> bytes:
        raise NotImplementedError

    def reasoning(self, text: str) -> bytes:
        raise NotImplementedError

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        raise NotImplementedError

    def tool_start(self, event: ToolCallStart) -> bytes:
        raise NotImplementedError

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        raise NotImplementedError

    def tool_end(self, index: int) -> bytes:
        raise NotImplementedError

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        """The protocol's ending. `truncated`: the upstream was cut, so a half-written tool call is not one."""
        raise NotImplementedError

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Translator:
    """One protocol's translations, made of its module's own functions; each module registers one."""

    name: str  # the protocol's name in `protocols.registry`
    # (body, model=""): a client's request (the model, for protocols that name it in the path)
    request_to_ir: Callable[..., Request]
    # (request, caps=None): the request body to send upstream, shaped for a model of those capabilities
    request_from_ir: Callable[..., dict]
    # (model, stream) -> (path, query) of the generation call, relative to the provider's base_url as the SDK sets it
    endpoint: Callable[[str, bool], tuple[str, str]]
    answer_to_ir: Callable[..., Answer]  # (body, ids=None)
    answer_from_ir: Callable[[Answer, Request], dict]  # the non-stream answer for a client whose request was this
    decoder: Callable[..., Decoder]  # (ids=None)
    encoder: Callable[..., Encoder]  # (request, created=0): the Unix time to stamp (this layer has no clock)
    error_from_ir: Callable[[Error], tuple[int, bytes]]  # the HTTP status and body that tell the client about it
    # The effort levels its requests can say (of `capabilities.EFFORTS`): a target model's are fitted within them.
    efforts: tuple[str, ...] = EFFORTS
    # The members one of which every non-stream answer of the protocol has: a 200 without any is no answer (read as
    # one, it would be an empty success made up from nothing).
    answer_members: tuple[str, ...] = ()

    def read_request(self, body: dict, model: str = "", stream: bool | None = None) -> Request:
        """A client's request in the unified form; TranslationError for a body that is not one. A protocol that
        names the model and streaming in the path, not the body (Gemini), is given them as `model` and `stream`
        (`stream` overrides the body's flag when given)."""
        try:
            if not isinstance(body, dict):
                raise TypeError("the body is not a JSON object")
            request = self.request_to_ir(body, model)
        except MALFORMED as e:
            raise TranslationError(f"malformed {self.name} request: {type(e).__name__}: {e}") from None
        if stream is not None:
            request.stream = stream
        return request

    def answer(self, body: object, ids: ToolIds | None = None) -> Answer:
        """A non-stream answer of this protocol in the unified form; a MALFORMED error for a body that is not one
        (not an object, or none of its `answer_members`)."""
        if not isinstance(body, dict):
            raise TypeError("the body is not a JSON object")
        if self.answer_members and not any(m in body for m in self.answer_members):
            raise KeyError(f"no {' or '.join(self.answer_members)}: not an answer")
        return self.answer_to_ir(body, ids)

    def fitted_request(self, request: Request, caps: Capabilities) -> tuple[dict, list[str]]:
        """The body of `request` for an upstream of this protocol whose model has `caps`, and what was changed to
        fit the model, in words. Raises a MALFORMED error for a value of the wrong type that reading let through."""
        request, notes = fit(request, caps, self.efforts)
        return self.request_from_ir(request, caps), notes


def across_vendors(request: Request, same_family: bool, forward_user_id: bool = False) -> Request:
    """`request` as it may travel to a vendor of another protocol: the client's end-user id (Claude Code's
    `metadata.user_id` holds its device and session ids) stays with its own vendor family (`same_family`: the target
    is of it) unless `forward_user_id` (the config's `translation.forward_user_id`)."""
    if forward_user_id or request.user is None or same_family:
        return request
    return replace(request, user=None)


def fixed_endpoint(path: str) -> Callable[[str, bool], tuple[str, str]]:
    """The endpoint of a protocol whose path names no model and is the same for stream and non-stream calls."""
    return lambda model, stream: (path, "")


class StreamTranslator(Repairer):
    """An upstream stream in one protocol, delivered to the client in another, event by event.

    Drop-in for the client protocol's Repairer: fed the upstream's parsed SSE events, it returns the client's bytes.
    """

    def __init__(self, decoder: Decoder, encoder: Encoder) -> None:
        self.decoder = decoder
        self.encoder = encoder

    @property
    def started(self) -> bool:  # type: ignore[override]  # read-only here: the encoder's own flag, set by it alone
        return self.encoder.started

    @property
    def complete(self) -> bool:  # type: ignore[override]  # read-only here: the encoder's own flag, set by it alone
        return self.encoder.complete

    @property
    def failed(self) -> bool:  # type: ignore[override]  # read-only here: the encoder's own flag, set by it alone
        return self.encoder.failed

    @property
    def finished(self) -> bool:
        return self.encoder.complete or self.decoder.finished

    def feed(self, event: Event) -> bytes:
        try:
            events = self.decoder.feed(event)
        except MALFORMED:
            return b""  # an upstream event of the wrong shape says nothing the client can use
        if len(events) == 1:  # the usual event: one delta
            return self.encoder.feed(events[0])
        encode = self.encoder.feed
        return b"".join([encode(e) for e in events])

    def end(self, ending: str = ENDING_LENGTH) -> bytes:
        """As a native Repairer: a "ran out of tokens" ending keeps a finish the upstream had already said (only
        its terminator was lost); an error ending says the stream was cut either way."""
        if ending == ENDING_ERROR:
            return self.encoder.end(ending)
        encode = self.encoder.feed
        flushed = b"".join([encode(e) for e in self.decoder.close()])
        return flushed + self.encoder.end(ending)

    def error_event(self, message: str, status: int = 502) -> bytes:
        return self.encoder.error_event(message, status)


class StreamFolder(Aggregator):
    """An upstream stream in one protocol, folded into the non-stream answer of another (for a non-stream client).

    `error` is set, as `{"message", "status"}`, when the upstream stream carried an error.
    """

    def __init__(self, decoder: Decoder, client: Translator, request: Request) -> None:
        self._decoder = decoder
        self._client = client
        self._request = request
        self._builder = AnswerBuilder()

    @property
    def truncated(self) -> bool:
        return not self._builder.finished and self.error is None

    def feed(self, event: Event) -> None:
        try:
            events = self._decoder.feed(event)
        except MALFORMED:
            return
        for e in events:
            self._fold(e)

    def _fold(self, event: StreamEvent) -> None:
        self._builder.feed(event)
        if isinstance(event, Error) and self.error is None:
            self.error = {"message": event.message, "status": event.status}

    def result(self) -> dict:
        for e in self._decoder.close():
            self._fold(e)
        return self._client.answer_from_ir(self._builder.result(truncated=self.truncated), self._request)
