"""An upstream's Anthropic Messages stream read into unified stream events (the translator's decoder)."""

from __future__ import annotations

from protocols.anthropic_messages.stream import (
    CONTENT_BLOCK_DELTA,
    CONTENT_BLOCK_START,
    CONTENT_BLOCK_STOP,
    ERROR,
    INPUT_JSON_DELTA,
    MESSAGE_DELTA,
    MESSAGE_START,
    MESSAGE_STOP,
    SIGNATURE_DELTA,
    TEXT_DELTA,
    THINKING_DELTA,
)
from protocols.anthropic_messages.translate.vocabulary import (
    BLOCK_REDACTED,
    BLOCK_TEXT,
    BLOCK_THINKING,
    BLOCK_TOOL_USE,
    NAME,
    STOP_FROM,
)
from protocols.anthropic_messages.usage import usage_to_ir
from protocols.events import Event
from protocols.sse import load_object
from protocols.translate.base import Decoder
from protocols.translate.common import dump_arguments, error_from_object, string
from protocols.unified import FINISH_STOP, ToolIds
from protocols.unified_stream import (
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


class MessagesDecoder(Decoder):
    """Anthropic events -> unified events. Blocks are sequential; usage is cumulative (replaced, never added)."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._id = ""
        self._blocks: dict[int, object] = {}  # Anthropic block index -> block type (as sent)
        self._calls: dict[int, int] = {}  # Anthropic block index -> unified tool call index
        self._signature: str | None = None
        self._usage: dict = {}
        self._stop: str | None = None
        self._stop_sequence: str | None = None
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        if event.data is None or self._done:
            return []
        payload = load_object(event.data)
        if payload is None:
            return []
        kind = payload.get("type") or event.event
        if kind == CONTENT_BLOCK_DELTA:
            return self._delta(payload.get("index", 0), payload.get("delta") or {})
        if kind == CONTENT_BLOCK_START:
            return self._block_start(payload.get("index", 0), payload.get("content_block") or {})
        if kind == CONTENT_BLOCK_STOP:
            return self._block_stop(payload.get("index", 0))
        if kind == MESSAGE_START:
            message = payload.get("message") or {}
            self._id = string(message.get("id"))
            self._usage = dict(message.get("usage") or {})
            return [Start(self._id, string(message.get("model"))), UsageUpdate(usage_to_ir(self._usage))]
        if kind == MESSAGE_DELTA:
            delta = payload.get("delta") or {}
            self._stop = string(delta.get("stop_reason")) or self._stop
            self._stop_sequence = string(delta.get("stop_sequence")) or self._stop_sequence
            self._usage.update((k, v) for k, v in (payload.get("usage") or {}).items() if v is not None)
            return [UsageUpdate(usage_to_ir(self._usage))]
        if kind == MESSAGE_STOP:
            self._done = True
            return [Finish(STOP_FROM.get(self._stop, FINISH_STOP), self._stop_sequence)]
        if kind == ERROR:
            self._done = True
            error = payload.get("error") or {}
            return [error_from_object(error) if isinstance(error, dict) else Error(500, str(error))]
        return []  # ping, and event types this layer does not know

    finished = property(lambda self: self._stop is not None)

    def close(self) -> list[StreamEvent]:
        """A stream that said its stop reason but ended before message_stop is complete all the same."""
        if self._stop is None or self._done:
            return []
        self._done = True
        return [Finish(STOP_FROM.get(self._stop, FINISH_STOP), self._stop_sequence)]

    def _delta(self, index: int, delta: dict) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == TEXT_DELTA:
            return [TextDelta(string(delta.get("text")))]
        if kind == INPUT_JSON_DELTA:
            call = self._calls.get(index)
            fragment = string(delta.get("partial_json"))
            return [ToolArgumentsDelta(call, fragment)] if call is not None and fragment else []
        if kind == THINKING_DELTA:
            return [ReasoningDelta(string(delta.get("thinking")))]
        if kind == SIGNATURE_DELTA:
            self._signature = delta.get("signature")
        return []  # Lossy: citations are dropped.

    def _block_start(self, index: int, block: dict) -> list[StreamEvent]:
        kind = block.get("type")
        self._blocks[index] = kind
        if kind == BLOCK_TEXT and string(block.get("text")):
            return [TextDelta(block["text"])]
        if kind == BLOCK_THINKING:
            self._signature = block.get("signature") or None
            return [ReasoningDelta(block["thinking"])] if string(block.get("thinking")) else []
        if kind == BLOCK_REDACTED:
            return [ReasoningEnd(block.get("data"), NAME, redacted=True)]
        if kind == BLOCK_TOOL_USE:
            call = self._calls[index] = len(self._calls)
            name = string(block.get("name"))
            call_id = self._ids.issue(string(block.get("id")), name, self._id, call)
            out: list[StreamEvent] = [ToolCallStart(call, call_id, name)]
            if block.get("input"):  # a whole input up front (not how Anthropic streams, but valid)
                out.append(ToolArgumentsDelta(call, dump_arguments(block["input"])))
            return out
        return []  # Lossy: server-tool blocks are dropped.

    def _block_stop(self, index: int) -> list[StreamEvent]:
        kind = self._blocks.pop(index, None)
        if kind == BLOCK_THINKING:
            signature, self._signature = self._signature, None
            return [ReasoningEnd(signature, NAME if signature else None)]
        if kind == BLOCK_TOOL_USE:
            return [ToolCallEnd(self._calls[index])]
        return []
