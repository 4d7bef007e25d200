"""Unified stream events written as the ConverseStream client's stream (the translator's encoder): event stream
frames, each with its CRCs."""

from __future__ import annotations

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
    ROLE_ASSISTANT,
    SIGNATURE,
    TEXT,
    TOOL_USE,
)
from protocols.bedrock_converse.translate.answer_out import usage_from_ir
from protocols.bedrock_converse.translate.request_out import tool_id
from protocols.bedrock_converse.translate.vocabulary import NAME, stop_reason
from protocols.eventstream import event_frame, exception_frame
from protocols.families.bedrock.errors import exception_for
from protocols.translate.base import Encoder
from protocols.unified import FINISH_LENGTH, Request, Usage, client_finish
from protocols.unified_stream import ReasoningEnd, Start, ToolCallStart

_TEXT, _REASONING, _TOOL = "text", "reasoning", "tool"


class ConverseEncoder(Encoder):
    """Unified events -> Converse events: messageStart, one content block at a time (a tool call's opened by
    contentBlockStart, text and reasoning by their first delta; each closed by contentBlockStop), messageStop with
    the stop reason, metadata with the usage."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._began = False
        self._open: tuple[str, int | None] | None = None  # (what the open block holds, its tool call's index)
        self._next = 0  # index of the next block
        self._tool_blocks: dict[int, int] = {}  # unified tool call index -> block index

    def _begin(self) -> bytes:
        if self._began:
            return b""
        self._began = True
        return event_frame(MESSAGE_START, {"role": ROLE_ASSISTANT})

    def _open_block(self, kind: str, tool: int | None = None) -> bytes:
        out = self._begin() + self._close()
        self._open = (kind, tool)
        return out

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        self._next += 1
        return event_frame(CONTENT_BLOCK_STOP, {BLOCK_INDEX: self._next - 1})

    def _delta(self, delta: dict, index: int | None = None) -> bytes:
        return event_frame(CONTENT_BLOCK_DELTA, {BLOCK_INDEX: self._next if index is None else index, "delta": delta})

    def start(self, event: Start) -> bytes:
        return self._begin()

    def text(self, text: str) -> bytes:
        out = b"" if self._open == (_TEXT, None) else self._open_block(_TEXT)
        return out + self._delta({TEXT: text})

    def reasoning(self, text: str) -> bytes:
        out = b"" if self._open == (_REASONING, None) else self._open_block(_REASONING)
        return out + self._delta({REASONING: {TEXT: text}})

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        ours = event.origin == NAME and event.signature
        if event.redacted:
            if not ours:
                return b""  # Lossy: another vendor's opaque reasoning has no place here.
            return self._open_block(_REASONING) + self._delta({REASONING: {REDACTED: event.signature}}) + self._close()
        if self._open != (_REASONING, None):
            return b""
        # Lossy: another vendor's signature is not Bedrock's; the reasoning block closes without one.
        out = self._delta({REASONING: {SIGNATURE: event.signature}}) if ours else b""
        return out + self._close()

    def tool_start(self, event: ToolCallStart) -> bytes:
        out = self._open_block(_TOOL, event.index)
        self._tool_blocks[event.index] = self._next
        start = {TOOL_USE: {"toolUseId": tool_id(event.id), "name": event.name}}
        return out + event_frame(CONTENT_BLOCK_START, {"start": start, BLOCK_INDEX: self._next})

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        block = self._tool_blocks.get(index)
        return b"" if block is None else self._delta({TOOL_USE: {"input": fragment}}, block)

    def tool_end(self, index: int) -> bytes:
        return self._close() if self._open == (_TOOL, index) else b""

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        out = self._begin() + self._close()
        # A cut stream says max_tokens: a half-written tool call is never reported as tool use.
        reason = FINISH_LENGTH if truncated else client_finish(reason, bool(self._tool_blocks))
        stop: dict = {"stopReason": stop_reason(reason, stop_sequence)}
        if stop_sequence and not truncated:
            stop["additionalModelResponseFields"] = {"stop_sequence": stop_sequence}
        out += event_frame(MESSAGE_STOP, stop)
        usage = usage_from_ir(self.usage or Usage())
        return out + event_frame(METADATA, {"usage": usage, "metrics": {"latencyMs": 0}})

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        return exception_frame(exception_for(status, in_stream=True), message)
