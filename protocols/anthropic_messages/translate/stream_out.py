"""Unified stream events written as the Anthropic Messages client's stream (the translator's encoder)."""

from __future__ import annotations

from json.encoder import encode_basestring, encode_basestring_ascii
from typing import cast

from protocols.anthropic_messages.stream import (
    CONTENT_BLOCK_DELTA,
    CONTENT_BLOCK_START,
    CONTENT_BLOCK_STOP,
    ERROR,
    INPUT_JSON_DELTA,
    MESSAGE_DELTA,
    MESSAGE_START,
    MESSAGE_STOP,
    MESSAGE_TYPE,
    SIGNATURE_DELTA,
    SYNTHETIC_ID,
)
from protocols.anthropic_messages.translate.answer_out import error_object, stop_reason, usage_from_ir
from protocols.anthropic_messages.translate.vocabulary import (
    BLOCK_REDACTED,
    BLOCK_TEXT,
    BLOCK_THINKING,
    BLOCK_TOOL_USE,
    NAME,
)
from protocols.sse import dumps
from protocols.translate.base import Encoder
from protocols.unified import FINISH_LENGTH, FINISH_STOP, ROLE_ASSISTANT, Request, Usage, client_finish
from protocols.unified_stream import ReasoningEnd, Start, ToolCallStart

# The hot path of a translated stream: a delta of the open block, as a byte template filled with the block's index,
# the delta type and key (the text, JSON-quoted, follows).
DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":'
DELTA_TAIL = b"}}\n\n"


def _quoted(text: str) -> bytes:
    """`text` as a JSON string in UTF-8, as `dumps` writes it; a lone surrogate (which UTF-8 cannot carry) is
    written as its \\u escape instead of failing."""
    try:
        return encode_basestring(text).encode()
    except UnicodeEncodeError:
        return encode_basestring_ascii(text).encode()


def _event(payload: dict) -> bytes:
    kind: str = payload["type"]
    return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


class _Blocks:
    """The message's content blocks, one open at a time: the next one's index, the open one's type and tool call,
    and the delta head of an open text block."""

    def __init__(self) -> None:
        self.open: tuple[str, int | None] | None = None  # (block type, tool call index) of the open block
        self.text_head: bytes | None = None  # DELTA_HEAD of the open block when it is a text block
        self.next = 0  # index of the next block

    def start(self, kind: str, block: dict, tool: int | None = None) -> bytes:
        """Close the open block, if any, and open this one."""
        out = self.close()
        self.open = (kind, tool)
        self.text_head = DELTA_HEAD % (self.next, b"text_delta", b"text") if kind == BLOCK_TEXT else None
        return out + _event({"type": CONTENT_BLOCK_START, "index": self.next, "content_block": block})

    def close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = self.text_head = None
        self.next += 1
        return _event({"type": CONTENT_BLOCK_STOP, "index": self.next - 1})

    def delta(self, delta: dict, index: int | None = None) -> bytes:
        index = self.next if index is None else index
        return _event({"type": CONTENT_BLOCK_DELTA, "index": index, "delta": delta})

    def text_delta(self, kind: bytes, key: bytes, text: str) -> bytes:
        """A delta of the open block carrying text (thinking), written without a dict."""
        return DELTA_HEAD % (self.next, kind, key) + _quoted(text) + DELTA_TAIL


class MessagesEncoder(Encoder):
    """Unified events -> Anthropic events: message_start, one block at a time (start, deltas, stop),
    message_delta with the stop reason and cumulative usage, message_stop."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._model = request.model
        self._id = SYNTHETIC_ID
        self._began = False
        self._blocks = _Blocks()
        self._tool_blocks: dict[int, int] = {}  # unified tool call index -> block index

    def _begin(self) -> bytes:
        """message_start, held back until the first content so that it carries the input usage if known."""
        self._began = True
        usage = usage_from_ir(self.usage or Usage())
        usage["output_tokens"] = 0
        message: dict = {"id": self._id, "type": MESSAGE_TYPE, "role": ROLE_ASSISTANT, "model": self._model,
                         "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
        return _event({"type": MESSAGE_START, "message": message})

    def _open_block(self, kind: str, block: dict, tool: int | None = None) -> bytes:
        return (b"" if self._began else self._begin()) + self._blocks.start(kind, block, tool)

    def start(self, event: Start) -> bytes:
        self._id = event.id if event.id.startswith("msg_") else f"msg_{event.id}" if event.id else SYNTHETIC_ID
        self._model = event.model or self._model
        return b""

    def text(self, text: str) -> bytes:
        head = self._blocks.text_head
        if head is not None:
            return head + _quoted(text) + DELTA_TAIL
        out = self._open_block(BLOCK_TEXT, {"type": BLOCK_TEXT, "text": ""})
        head = cast(bytes, self._blocks.text_head)  # what _open_block just set for a text block
        return out + head + _quoted(text) + DELTA_TAIL

    def reasoning(self, text: str) -> bytes:
        out = b""
        if self._blocks.open != (BLOCK_THINKING, None):
            out = self._open_block(BLOCK_THINKING, {"type": BLOCK_THINKING, "thinking": "", "signature": ""})
        return out + self._blocks.text_delta(b"thinking_delta", b"thinking", text)

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        anthropic = event.origin == NAME and event.signature
        if event.redacted:
            if not anthropic:
                return b""  # Lossy: another vendor's opaque reasoning has no place here.
            redacted = {"type": BLOCK_REDACTED, "data": event.signature}
            return self._open_block(BLOCK_REDACTED, redacted) + self._blocks.close()
        if self._blocks.open != (BLOCK_THINKING, None):
            return b""
        # Lossy: another vendor's signature is not Anthropic's; the thinking block closes without one.
        out = self._blocks.delta({"type": SIGNATURE_DELTA, "signature": event.signature}) if anthropic else b""
        return out + self._blocks.close()

    def tool_start(self, event: ToolCallStart) -> bytes:
        block = {"type": BLOCK_TOOL_USE, "id": event.id, "name": event.name, "input": {}}
        out = self._open_block(BLOCK_TOOL_USE, block, event.index)
        self._tool_blocks[event.index] = self._blocks.next
        return out

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        block = self._tool_blocks.get(index)
        if block is None:
            return b""
        # An upstream that goes back to an earlier call after starting the next one (Chat allows it): the
        # fragment is addressed to that call's block, which the SDKs accumulate by index.
        return self._blocks.delta({"type": INPUT_JSON_DELTA, "partial_json": fragment}, block)

    def tool_end(self, index: int) -> bytes:
        return self._blocks.close() if self._blocks.open == (BLOCK_TOOL_USE, index) else b""

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        out = (b"" if self._began else self._begin()) + self._blocks.close()
        # A cut stream says max_tokens: a half-written tool call is never reported as tool use.
        reason = FINISH_LENGTH if truncated else client_finish(reason, bool(self._tool_blocks))
        delta = {"stop_reason": stop_reason(reason, stop_sequence),
                 "stop_sequence": stop_sequence if reason == FINISH_STOP else None}
        out += _event({"type": MESSAGE_DELTA, "delta": delta, "usage": usage_from_ir(self.usage or Usage())})
        return out + _event({"type": MESSAGE_STOP})

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        return _event({"type": ERROR, "error": error_object(message, status, kind)})
