"""An upstream's ConverseStream read into unified stream events (the translator's decoder)."""

from __future__ import annotations

from protocols.base import member
from protocols.bedrock_converse.events import (
    BLOCK_INDEX,
    CONTENT_BLOCK_DELTA,
    CONTENT_BLOCK_START,
    CONTENT_BLOCK_STOP,
    MESSAGE_START,
    MESSAGE_STOP,
    METADATA,
    REASONING,
    REDACTED,
    SIGNATURE,
    TEXT,
    TOOL_USE,
)
from protocols.bedrock_converse.translate.answer_in import stop_sequence
from protocols.bedrock_converse.translate.vocabulary import NAME, STOP_FROM
from protocols.bedrock_converse.usage import usage_to_ir
from protocols.events import Event
from protocols.eventstream import is_failure
from protocols.families.bedrock.errors import exception_status
from protocols.sse import load_object
from protocols.translate.base import Decoder
from protocols.translate.common import error_from_object, string
from protocols.unified import FINISH_STOP, ToolIds
from protocols.unified_stream import (
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

_REASONING, _REDACTED, _TOOL = "reasoning", "redacted", "tool"


class ConverseDecoder(Decoder):
    """Converse events -> unified events. The finish waits for `metadata`, which carries the usage, so that a
    client's ending carries it too; a stream cut between them still finishes (`close`)."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._blocks: dict[int, str] = {}  # block index -> what it holds, once known
        self._calls: dict[int, int] = {}  # block index -> unified tool call index
        self._signature: str | None = None
        self._stop: str | None = None
        self._stop_sequence: str | None = None
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        if event.data is None or self._done:
            return []
        payload = load_object(event.data)
        if payload is None:
            return []
        kind = event.event
        if is_failure(event):
            self._done = True
            return [error_from_object({"message": string(payload.get("message")), "type": kind or ""},
                                      exception_status(kind or ""))]
        if kind == CONTENT_BLOCK_DELTA:
            return self._delta(payload.get(BLOCK_INDEX, 0), member(payload, "delta"))
        if kind == CONTENT_BLOCK_START:
            return self._start(payload.get(BLOCK_INDEX, 0), member(member(payload, "start"), TOOL_USE))
        if kind == CONTENT_BLOCK_STOP:
            return self._stop_block(payload.get(BLOCK_INDEX, 0))
        if kind == MESSAGE_START:
            return [Start()]
        if kind == MESSAGE_STOP:
            self._stop = string(payload.get("stopReason")) or None
            self._stop_sequence = stop_sequence(payload.get("additionalModelResponseFields"))
            return []
        if kind == METADATA:
            out: list[StreamEvent] = [UsageUpdate(usage_to_ir(member(payload, "usage")))]
            return out + self.close()
        return []  # Lossy: citations, image and tool-result deltas, and event types this layer does not know

    finished = property(lambda self: self._stop is not None)

    def close(self) -> list[StreamEvent]:
        """A stream that said its stop reason is complete, its `metadata` lost or not."""
        if self._stop is None or self._done:
            return []
        self._done = True
        return [Finish(STOP_FROM.get(self._stop, FINISH_STOP), self._stop_sequence)]

    def _start(self, index: int, tool: dict) -> list[StreamEvent]:
        if not tool:
            return []
        self._blocks[index] = _TOOL
        call = self._calls[index] = len(self._calls)
        name = string(tool.get("name"))
        return [ToolCallStart(call, self._ids.issue(string(tool.get("toolUseId")), name, "", call), name)]

    def _delta(self, index: int, delta: dict) -> list[StreamEvent]:
        if TEXT in delta:
            return [TextDelta(string(delta[TEXT]))]
        if TOOL_USE in delta:
            call = self._calls.get(index)
            fragment = string(member(delta, TOOL_USE).get("input"))
            return [ToolArgumentsDelta(call, fragment)] if call is not None and fragment else []
        reasoning = member(delta, REASONING)
        if REDACTED in reasoning:
            self._blocks[index] = _REDACTED
            return [ReasoningEnd(string(reasoning[REDACTED]), NAME, redacted=True)]
        if reasoning:
            self._blocks[index] = _REASONING
        if SIGNATURE in reasoning:
            self._signature = string(reasoning[SIGNATURE]) or None
        return [ReasoningDelta(string(reasoning[TEXT]))] if TEXT in reasoning else []

    def _stop_block(self, index: int) -> list[StreamEvent]:
        kind = self._blocks.pop(index, None)
        if kind == _REASONING:
            signature, self._signature = self._signature, None
            return [ReasoningEnd(signature, NAME if signature else None)]
        if kind == _TOOL:
            return [ToolCallEnd(self._calls[index])]
        return []
