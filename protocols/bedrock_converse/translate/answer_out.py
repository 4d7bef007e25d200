"""A unified answer, usage and error written as the Bedrock Converse client reads them."""

from __future__ import annotations

from protocols.bedrock_converse.events import (
    REASONING,
    REASONING_TEXT,
    REDACTED,
    ROLE_ASSISTANT,
    SIGNATURE,
    TEXT,
    converse_usage,
)
from protocols.bedrock_converse.translate.request_out import tool_use_block
from protocols.bedrock_converse.translate.vocabulary import NAME, stop_reason
from protocols.families.bedrock.errors import error_body
from protocols.unified import FINISH_STOP, Answer, Reasoning, Request, Text, ToolCall, Usage, client_finish
from protocols.unified_stream import Error

NO_529 = {529: 503}  # Bedrock says overloaded with 503


def usage_from_ir(usage: Usage) -> dict:
    """Lossy: Converse has no count of reasoning tokens (they are in outputTokens)."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    return converse_usage({"inputTokens": max(0, usage.input_tokens - cached), "outputTokens": usage.output_tokens,
                           "cacheReadInputTokens": usage.cache_read_tokens,
                           "cacheWriteInputTokens": usage.cache_write_tokens})


def answer_block(part: Text | Reasoning | ToolCall) -> dict | None:
    if isinstance(part, Text):
        return {TEXT: part.text} if part.text else None
    if isinstance(part, ToolCall):
        return tool_use_block(part)
    if part.origin == NAME and part.redacted:
        return {REASONING: {REDACTED: part.signature or ""}}
    # Another vendor's reasoning is shown as reasoning text; its signature stays behind.
    text: dict = {TEXT: part.text}
    if part.origin == NAME and part.signature:
        text[SIGNATURE] = part.signature
    return {REASONING: {REASONING_TEXT: text}} if part.text or SIGNATURE in text else None


def answer_from_ir(answer: Answer, request: Request) -> dict:
    finish = client_finish(answer.finish, bool(answer.tool_calls()))
    content = [b for b in map(answer_block, answer.parts) if b is not None]
    out: dict = {
        "output": {"message": {"role": ROLE_ASSISTANT, "content": content}},
        "stopReason": stop_reason(finish, answer.stop_sequence),
        "usage": usage_from_ir(answer.usage),
        "metrics": {"latencyMs": 0},
    }
    if answer.stop_sequence and finish == FINISH_STOP:
        out["additionalModelResponseFields"] = {"stop_sequence": answer.stop_sequence}
    return out


def error_from_ir(error: Error) -> tuple[int, bytes]:
    """The status and a body naming the exception as Bedrock would (`__type`), which the AWS SDKs raise."""
    status = NO_529.get(error.status, error.status)
    return status, error_body(status, error.message)
