"""Amazon Bedrock Converse: `POST .../model/{modelId}/converse`, and `/converse-stream`, whose answer is an AWS event
stream (protocols/eventstream/) of JSON events.

The model is named in the path, URL-encoded as the SDKs send it: a foundation model (`anthropic.claude-...-v1:0`),
an inference profile (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`) or an ARN (`arn%3Aaws%3Abedrock%3A...%2F...`).
A stream's events: `messageStart {role}`; per content block, `contentBlockStart` (a tool call's id and name; text and
reasoning have none), `contentBlockDelta` (`delta`: `text`, `toolUse.input` fragments, `reasoningContent` text,
signature or redacted bytes) and `contentBlockStop`; `messageStop {stopReason}`; `metadata {usage, metrics}`, last.
A failure is an exception frame (`throttlingException`, `modelStreamErrorException`, ...).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from protocols.base import Protocol, Repairer, member
from protocols.bedrock_converse.events import (
    BLOCK_INDEX,
    CONTENT_BLOCK_DELTA,
    CONTENT_BLOCK_START,
    CONTENT_BLOCK_STOP,
    MESSAGE_START,
    MESSAGE_STOP,
    METADATA,
    ROLE_ASSISTANT,
    STOP_MAX_TOKENS,
    converse_usage,
)
from protocols.bedrock_converse.folding import ConverseAggregator
from protocols.events import Event
from protocols.eventstream import EventStreamParser, event_frame, exception_frame, is_failure
from protocols.eventstream.events import CONTENT_TYPE_HEADER
from protocols.families.bedrock.errors import error_body, exception_for, exception_status
from protocols.sse import load_object
from protocols.urls import DOT_SEGMENTS, UnsafeURLValue, shown

PATH = re.compile(r"/model/([^/]+)/(converse|converse-stream)$")
CONVERSE = "/converse"
CONVERSE_STREAM = "/converse-stream"
MODEL_SAFE = "-._~"  # what boto3 leaves unescaped in a model id (`:` -> %3A, `/` -> %2F)

# The index of a delta's block, read without parsing the delta: in JSON a key's quotes cannot come from content.
_DELTA_INDEX = re.compile(rb'"contentBlockIndex"\s*:\s*(\d+)')


class ConverseRepairer(Repairer):
    """Follows a ConverseStream; ends a cut one with `contentBlockStop` for the open block, `messageStop` (stop reason
    max_tokens) and `metadata`, new frames with their CRCs.

    The first token is the first content delta (or a tool call's start, which names it). The completion signal is
    `metadata`, the last event. An exception frame before any content stands for the error answer it names
    (`early_error`: the engine may ask again); one after content cut the answer short: it is held back, and the
    stream, left incomplete, is ended as any cut stream is (honestly, or continued).
    """

    def __init__(self, body: dict) -> None:
        self._message_started = False
        self._open: int | None = None  # the content block started and not stopped
        self._stop_reason: str | None = None
        self._deltas = 0  # content deltas sent, for the usage of an ending Rotator writes
        self.interrupted: str | None = None  # the exception that cut the answer after content, held back

    def feed(self, event: Event) -> bytes:
        kind = event.event
        if kind == CONTENT_BLOCK_DELTA:
            self.started = True
            self._deltas += 1
            found = _DELTA_INDEX.search(event.raw)
            if found is not None:
                self._open = int(found.group(1))
            return event.raw
        if is_failure(event):
            return self._failure(event)
        payload = load_object(event.data or "") or {}
        if kind == MESSAGE_START:
            self._message_started = True
        elif kind == CONTENT_BLOCK_START:
            self._open = payload.get(BLOCK_INDEX, 0)
            self.started = self.started or bool(member(payload, "start"))
        elif kind == CONTENT_BLOCK_STOP:
            self._open = None
        elif kind == MESSAGE_STOP:
            self.started = True
            self._stop_reason = payload.get("stopReason") or STOP_MAX_TOKENS
        elif kind == METADATA:
            self.started = self.complete = True
        return event.raw

    def _failure(self, event: Event) -> bytes:
        if self.started:
            self.interrupted = event.event or "exception"
            return b""
        self.complete = self.failed = True
        message = (load_object(event.data or "") or {}).get("message")
        status = exception_status(event.event or "")
        self.early_error = (status, error_body(status, message if isinstance(message, str) else ""))
        return event.raw

    def length_ending(self) -> bytes:
        frames = []
        if not self._message_started:
            frames.append(event_frame(MESSAGE_START, {"role": ROLE_ASSISTANT}))
        if self._open is not None:
            frames.append(event_frame(CONTENT_BLOCK_STOP, {BLOCK_INDEX: self._open}))
        if self._stop_reason is None:
            frames.append(event_frame(MESSAGE_STOP, {"stopReason": STOP_MAX_TOKENS}))
        usage = converse_usage({"outputTokens": self._deltas})
        frames.append(event_frame(METADATA, {"usage": usage, "metrics": {"latencyMs": 0}}))
        return b"".join(frames)

    def error_event(self, message: str, status: int = 502) -> bytes:
        self.complete = self.failed = True
        return exception_frame(exception_for(status, in_stream=True), message)


def model_segment(model: str) -> str:
    """A model id as one path segment, escaped as boto3 does; UnsafeURLValue for one that cannot be sent."""
    problem = ("is empty" if not model else "contains a dot segment" if DOT_SEGMENTS & set(model.split("/"))
               else "contains a control character or '\\'" if any(c < " " or c in "\x7f\\" for c in model) else None)
    if problem is not None:
        raise UnsafeURLValue(f"the model name {shown(model)} {problem}: it cannot be sent in a URL")
    return quote(model, safe=MODEL_SAFE)


class Converse(Protocol):
    name = "bedrock_converse"
    family = "bedrock"
    heartbeat = None  # no frame is safe: the AWS SDKs hand unknown events to the caller
    stream_type = CONTENT_TYPE_HEADER
    model_in_path = True
    repairer_class = ConverseRepairer
    aggregator_class = ConverseAggregator

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == "POST" and PATH.search(path) is not None

    def wants_stream(self, path: str, query: str, body: dict) -> bool:
        return path.endswith(CONVERSE_STREAM)

    def parser(self) -> EventStreamParser:
        """The reader of its streams: frames as events."""
        return EventStreamParser()

    def model(self, path: str, body: dict) -> str:
        match = PATH.search(path)
        return unquote(match.group(1), errors="replace") if match else ""

    def as_stream(self, path: str, query: str, body: dict) -> tuple[str, str, dict]:
        if path.endswith(CONVERSE):
            path += CONVERSE_STREAM[len(CONVERSE):]
        return path, query, body

    def with_model(self, path: str, model: str) -> str:
        match = PATH.search(path)
        if match is None:
            return path
        return path[:match.start(1)] + model_segment(model) + path[match.end(1):]

    def error_body(self, status: int, message: str) -> bytes:
        return error_body(status, message)

