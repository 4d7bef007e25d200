"""InvokeModelWithResponseStream: Anthropic's events in AWS event stream frames, opened for the engine and put back.

A stream is an event stream whose `chunk` frames each carry one Anthropic event, `{"bytes": base64(JSON)}` (Bedrock
adds `amazon-bedrock-invocationMetrics` to the last one's JSON); a failure is an exception frame
(`throttlingException`, `modelStreamErrorException`, ...).

- `InvokeParser` opens the chunk frames into the Anthropic events they carry (each `raw` still its frame's bytes), so
  Anthropic's own repairer, aggregator and usage reader follow the stream; an exception frame stays a frame event
  (`is_failure`), which Anthropic's readers pass over.
- `InvokeRepairer` is Anthropic's repairer around them: an exception frame before any content stands for the error
  answer it names (`early_error`: the engine may ask again, or passes it on as it came); one after content cut the
  answer short: it is held back and the stream, left incomplete, is ended as a cut one is (honestly, in Anthropic's
  events, or continued).
- `framed` puts what the client is sent back into frames: frames passed on as they came, the SSE events Rotator
  wrote (an honest ending, an error) or another target sent, each in a new frame with its CRCs.
"""

from __future__ import annotations

import base64
import binascii
import json

from protocols.base import ENDING_LENGTH, Repairer
from protocols.events import Event, StreamParser
from protocols.eventstream import EventStreamParser, FrameError, event_frame, exception_frame, is_failure
from protocols.eventstream.codec import OVERHEAD
from protocols.families.bedrock.errors import error_body, exception_for, exception_status
from protocols.sse import SSEParser, dumps, load_object
from protocols.translate.common import ERROR_STATUS

CHUNK = "chunk"
BYTES = "bytes"
ERROR = "error"
FRAME_FIRST_BYTES = (0, 1)


def opened(event: Event) -> Event:
    """The Anthropic event a chunk frame carries, its `raw` still the frame's bytes; another frame (an exception's)
    as it is."""
    if event.event != CHUNK or is_failure(event):
        return event
    encoded = (load_object(event.data or "") or {}).get(BYTES)
    try:
        data = base64.b64decode(encoded if isinstance(encoded, str) else "", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise FrameError("an InvokeModel chunk whose bytes are not base64 of UTF-8 text") from None
    payload = load_object(data)
    kind = payload.get("type") if payload is not None else None
    return Event(raw=event.raw, data=data, event=kind if isinstance(kind, str) else None)


class InvokeParser(EventStreamParser):
    """An InvokeModelWithResponseStream read as the Anthropic events it carries."""

    def feed(self, data: bytes) -> list[Event]:
        return [opened(e) for e in super().feed(data)]


class InvokeRepairer(Repairer):
    """Anthropic's repairer (`inner`) over an InvokeModel stream, and its exception frames (see the module's
    docstring). `interrupted`: the exception that cut the answer after content, held back."""

    def __init__(self, inner: Repairer) -> None:
        self.inner = inner
        self.interrupted: str | None = None
        self._early: tuple[int, bytes] | None = None

    started = property(lambda self: self.inner.started)
    complete = property(lambda self: self.inner.complete or self._early is not None)
    finished = property(lambda self: self.inner.finished or self._early is not None)
    failed = property(lambda self: self.inner.failed or self._early is not None)
    early_error = property(lambda self: self._early)

    def feed(self, event: Event) -> bytes:
        if not is_failure(event):
            return self.inner.feed(event)
        if self.inner.started:
            self.interrupted = event.event or "exception"
            return b""
        message = (load_object(event.data or "") or {}).get("message")
        status = exception_status(event.event or "")
        self._early = (status, error_body(status, message if isinstance(message, str) else ""))
        return event.raw

    def end(self, ending: str = ENDING_LENGTH) -> bytes:
        return self.inner.end(ending)

    def error_event(self, message: str, status: int = 502) -> bytes:
        return self.inner.error_event(message, status)


class InvokeAnswers:
    """One InvokeModel request's answer events (protocols/envelope.py's EnvelopedAnswers)."""

    def parser(self) -> StreamParser:
        return InvokeParser()

    def stream(self, data: bytes) -> bytes:
        return framed(data)


def chunk_frame(event: dict) -> bytes:
    """The chunk frame carrying one Anthropic event, as Bedrock writes it."""
    return event_frame(CHUNK, {BYTES: base64.b64encode(dumps(event)).decode()})


def error_frame(error: dict) -> bytes:
    """The exception frame an Anthropic `error` event stands for, named by the Bedrock exception of its status."""
    status = ERROR_STATUS.get(str(error.get("type")), 500)
    message = error.get("message")
    return exception_frame(exception_for(status, in_stream=True), message if isinstance(message, str) else "")


def wrapped(event: Event) -> bytes:
    """The frame for one Anthropic event Rotator wrote (nothing for a block with no JSON event in it)."""
    payload = load_object(event.data or "")
    if payload is None:
        return b""
    if payload.get("type") == ERROR:
        error = payload.get(ERROR)
        return error_frame(error if isinstance(error, dict) else {})
    return chunk_frame(payload)


def framed(data: bytes) -> bytes:
    """What an Anthropic repairer fed `InvokeParser`'s events gives back, in frames: the frames it passed on as they
    came, the SSE events it wrote each in a new frame. A frame starts with its length, whose high byte is 0 or 1 for
    any frame within the limits; SSE text holds neither byte (JSON escapes control characters), so it runs to the
    next frame or the end."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if data[pos] in FRAME_FIRST_BYTES:
            end = pos + int.from_bytes(data[pos:pos + 4], "big")
            if not pos + OVERHEAD <= end <= len(data):
                raise FrameError("a frame cut short among a repairer's events")
            out.append(data[pos:end])
        else:
            end = min((i for i in (data.find(b, pos) for b in (b"\x00", b"\x01")) if i >= 0), default=len(data))
            parser = SSEParser()
            out += [wrapped(e) for e in parser.feed(data[pos:end]) + parser.close()]
        pos = end
    return b"".join(out)


def enveloped_answer(data: bytes) -> bytes:
    """A whole answer for an InvokeModel client: Anthropic's message as it is; an Anthropic error (another target's)
    as Bedrock's error body, which the AWS SDKs read; anything else as it is."""
    if b'"error"' not in data[:200]:
        return data
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return data
    error = obj.get(ERROR) if isinstance(obj, dict) and obj.get("type") == ERROR else None
    if not isinstance(error, dict):
        return data
    message = error.get("message")
    return error_body(ERROR_STATUS.get(str(error.get("type")), 500), message if isinstance(message, str) else "")
