"""A unified answer, usage and error written as the Anthropic Messages client reads them."""

from __future__ import annotations

from protocols.anthropic_messages.stream import ERROR, MESSAGE_TYPE, SYNTHETIC_ID
from protocols.anthropic_messages.translate.vocabulary import (
    BLOCK_REDACTED,
    BLOCK_TEXT,
    BLOCK_THINKING,
    BLOCK_TOOL_USE,
    NAME,
)
from protocols.errors import anthropic_error
from protocols.sse import dumps
from protocols.translate.common import parse_arguments
from protocols.unified import (
    FINISH_CONTENT_FILTER,
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_TOOL_CALLS,
    ROLE_ASSISTANT,
    Answer,
    Reasoning,
    Request,
    Text,
    ToolCall,
    Usage,
    client_finish,
)
from protocols.unified_stream import KIND_CONTEXT_LENGTH, Error

CONTEXT_LENGTH_PREFIX = "prompt is too long: "  # what Claude Code recognises
STOP_TO = {FINISH_STOP: "end_turn", FINISH_TOOL_CALLS: "tool_use", FINISH_LENGTH: "max_tokens",
           FINISH_CONTENT_FILTER: "refusal"}


def usage_from_ir(usage: Usage) -> dict:
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    out: dict = {
        "input_tokens": max(0, usage.input_tokens - cached),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def stop_reason(finish: str, stop_sequence: str | None) -> str:
    """Lossy: other protocols do not say which stop sequence matched, so their stops read as end_turn."""
    if finish == FINISH_STOP and stop_sequence:
        return "stop_sequence"
    return STOP_TO.get(finish, "end_turn")


def _answer_block(part: Text | Reasoning | ToolCall) -> dict | None:
    if isinstance(part, Reasoning):
        if part.origin == NAME and part.redacted:
            return {"type": BLOCK_REDACTED, "data": part.signature or ""}
        # Another vendor's reasoning is shown as thinking; its signature stays behind (an empty one cannot be
        # replayed to Anthropic, and Rotator drops such thinking when it is).
        signature = part.signature if part.origin == NAME else ""
        return {"type": BLOCK_THINKING, "thinking": part.text, "signature": signature or ""}
    if isinstance(part, ToolCall):
        return {"type": BLOCK_TOOL_USE, "id": part.id, "name": part.name, "input": parse_arguments(part.arguments)}
    if isinstance(part, Text):
        return {"type": BLOCK_TEXT, "text": part.text} if part.text else None
    return None


def answer_from_ir(answer: Answer, request: Request) -> dict:
    finish = client_finish(answer.finish, bool(answer.tool_calls()))
    return {
        "id": answer.id or SYNTHETIC_ID,
        "type": MESSAGE_TYPE,
        "role": ROLE_ASSISTANT,
        "model": answer.model or request.model,
        "content": [b for b in map(_answer_block, answer.parts) if b is not None],
        "stop_reason": stop_reason(finish, answer.stop_sequence),
        "stop_sequence": answer.stop_sequence if finish == FINISH_STOP else None,
        "usage": usage_from_ir(answer.usage),
    }


def error_object(message: str, status: int, kind: str | None) -> dict:
    if kind == KIND_CONTEXT_LENGTH and CONTEXT_LENGTH_PREFIX.strip(": ") not in message:
        message = CONTEXT_LENGTH_PREFIX + message
    return anthropic_error(status, message)


def error_from_ir(error: Error) -> tuple[int, bytes]:
    return error.status, dumps({"type": ERROR, "error": error_object(error.message, error.status, error.kind)})
