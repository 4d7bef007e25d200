"""A recorded LLM call read back for people: the request as a conversation, the answer assembled.

Sans-I/O: bytes in, the unified representation (`protocols.unified`) out, through the same translators the
engine uses, so every protocol reads the same way. A stream is parsed with the engine's SSE parser and folded
event by event; a stream of any size costs bounded time, because at most `MAX_EVENTS` events are folded (the
reading says so). A body that does not parse is reported as a problem, never raised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from protocols import registry, translate
from protocols.bedrock.invoke import ENVELOPE as INVOKE
from protocols.envelope import Envelope
from protocols.events import BrokenStream, Event, StreamParser
from protocols.logins.code_assist import ENVELOPE as CODE_ASSIST
from protocols.logins.code_assist import PROTOCOL as CODE_ASSIST_PROTOCOL
from protocols.platforms.azure import ENVELOPE as AZURE
from protocols.platforms.vertex import ENVELOPE as VERTEX
from protocols.sse import SSEParser, parse_block
from protocols.translate.base import MALFORMED
from protocols.translate.common import error_from_body
from protocols.unified import Answer, Request
from protocols.unified_stream import AnswerBuilder, Error

MAX_EVENTS = 50_000  # stream events folded into an answer; the rest are counted, not read
SSE_CONTENT_TYPE = "text/event-stream"
# Envelopes a vendor's clients wrap a protocol's calls in (protocol inside, envelope), beyond Code Assist's (read
# inside its answers' JSON): Bedrock's InvokeModel, Anthropic's calls in AWS event stream frames.
FRAMED_ENVELOPES: tuple[tuple[str, Envelope], ...] = (("anthropic_messages", INVOKE),)
# What a flow shows in place of the middle of a very long body (rewrite/intake/loopback.py FlowBody).
LEFT_OUT = re.compile(rb"\[rotator: (\d+) bytes left out here\]")


@dataclass
class RequestReading:
    protocol: str
    request: Request | None = None
    problem: str | None = None  # why the body could not be read as the protocol's request


@dataclass
class AnswerReading:
    protocol: str
    answer: Answer | None = None
    error: Error | None = None  # an error body, or an error event that ended a stream
    stream: bool = False
    complete: bool = True  # a stream reached its completion signal
    events: int = 0  # stream events in the body
    folded: int = 0  # of which were folded into `answer`
    left_out: int = 0  # bytes of the body the flow did not keep (its middle)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


def read_request(protocol: str, path: str, body: bytes) -> RequestReading:
    """The request a client sent on `path` (Gemini names its model and streaming there)."""
    reading = RequestReading(protocol)
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        reading.problem = "the body is not JSON"
        return reading
    if isinstance(obj, dict) and (inside := _opened(path, obj)) is not None:
        path, obj = inside[0] + path[len(path.partition("?")[0]):], inside[1]
    proto = registry.get(protocol)
    model = proto.model(path.partition("?")[0], obj) if isinstance(obj, dict) else ""
    stream = proto.wants_stream(path.partition("?")[0], path.partition("?")[2], obj) if isinstance(obj, dict) else None
    try:
        reading.request = translate.request_to_ir(protocol, obj, model, stream)
    except translate.TranslationError as e:
        reading.problem = str(e)
    return reading


def read_answer(protocol: str, status: int, content_type: str, body: bytes,
                max_events: int = MAX_EVENTS) -> AnswerReading:
    """The answer in a response body: an error body, a non-stream answer, an SSE stream, or Gemini's JSON-array
    stream."""
    reading = AnswerReading(protocol)
    if status >= 400:
        reading.error = error_from_body(status, body)
        return reading
    if SSE_CONTENT_TYPE in content_type or body.lstrip()[:5] in (b"data:", b"event"):
        return _read_stream(reading, _sse_events(body, protocol == CODE_ASSIST_PROTOCOL), max_events, body)
    framed = _framing(protocol, content_type)
    if framed is not None:  # (an AWS event stream: a frame cut short ends what can be read)
        parser = framed()
        try:
            events = parser.feed(body) + parser.close()
        except BrokenStream:
            events = []
        return _read_stream(reading, events, max_events, body)
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        reading.problem = "the body is neither JSON nor an event stream"
        return reading
    if isinstance(obj, list):  # Gemini's streamGenerateContent without alt=sse: one JSON array of chunks
        events = [Event(raw=b"", data=json.dumps(chunk)) for chunk in obj]
        return _read_stream(reading, events, max_events, body)
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        reading.error = error_from_body(status, obj)
        return reading
    if protocol == CODE_ASSIST_PROTOCOL and isinstance(obj, dict) and isinstance(obj.get("response"), dict):
        # (a login's envelope: read inside)
        obj = obj["response"]
    try:
        reading.answer = translate.get(protocol).answer_to_ir(obj)
    except MALFORMED as e:
        reading.problem = f"not a {protocol} answer: {type(e).__name__}: {e}"
    return reading


def _sse_events(body: bytes, enveloped: bool = False) -> list[Event]:
    parser = SSEParser(max_block=len(body) + 1)
    events = parser.feed(body) + parser.close()
    if parser.pending.strip():  # a last event without its blank line (a stream cut mid-event)
        events.append(parse_block(parser.pending + b"\n\n"))
    if not enveloped or b'"response"' not in body or CODE_ASSIST.answers is None:
        return events
    opened = CODE_ASSIST.answers().parser()  # (a login's envelope: its events read inside)
    return [e2 for e in events for e2 in opened.feed(e.raw)]


def _opened(path: str, body: dict) -> tuple[str, dict] | None:
    """A wire's envelope around the request (Code Assist's, a cloud platform's: Vertex's, Azure's, Bedrock's
    InvokeModel): the plain path and request inside."""
    path = path.partition("?")[0]
    return next((inside for envelope in (CODE_ASSIST, VERTEX, AZURE, INVOKE)
                 if (inside := envelope.opened(path, body))), None)


def _framing(protocol: str, content_type: str) -> Callable[[], StreamParser] | None:
    """The reader of a stream that is not SSE: an envelope's (the protocol's events in its frames), or the
    protocol's own (Converse's event stream); None when neither reads `content_type`."""
    for inner, envelope in FRAMED_ENVELOPES:
        if (inner == protocol and envelope.stream_type is not None and envelope.stream_type in content_type
                and envelope.answers is not None):
            return envelope.answers().parser
    known = registry.get(protocol) if protocol in {p.name for p in registry.all()} else None
    return known.parser if known is not None and known.stream_type != SSE_CONTENT_TYPE and known.streams(
        content_type) else None


def _read_stream(reading: AnswerReading, events: list[Event], max_events: int, body: bytes) -> AnswerReading:
    reading.stream = True
    reading.events = sum(1 for e in events if e.data is not None)
    marker = LEFT_OUT.search(body)
    if marker:
        reading.left_out = int(marker.group(1))
        reading.notes.append(f"the flow kept the first and last parts of this stream only: {reading.left_out} bytes "
                             "in the middle were left out, so the answer below has a gap")
    decoder = translate.get(reading.protocol).decoder()
    builder = AnswerBuilder()
    for event in events:
        if event.data is None:
            continue
        if reading.folded >= max_events:
            reading.notes.append(f"assembled from the first {max_events} of {reading.events} events (the rest were "
                                 "not read, to keep this view fast)")
            break
        reading.folded += 1
        try:
            for unified in decoder.feed(event):
                builder.feed(unified)
        except MALFORMED:
            continue  # one broken event (e.g. cut where the flow left the middle out) spoils nothing else
    else:
        try:
            for unified in decoder.close():
                builder.feed(unified)
        except MALFORMED:
            pass
    reading.complete = builder.finished or builder.error is not None
    reading.error = builder.error
    reading.answer = builder.result()
    return reading
