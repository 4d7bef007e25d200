"""Anthropic Messages: the names and codes both directions of its translator share."""

from __future__ import annotations

from protocols.unified import FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_STOP, FINISH_TOOL_CALLS

NAME = "anthropic_messages"
FAMILY = "anthropic"
FORMAT_JSON_SCHEMA = "json_schema"
EFFORTS = ("low", "medium", "high", "xhigh", "max")  # what `output_config.effort` takes (the SDK's OutputConfigParam)
PATH = "/v1/messages"
# Claude Code's first system block (`x-anthropic-billing-header: cc_version=…; cch=<hash>;`, a new hash on every
# request): Anthropic's accounting, nothing for a model of another vendor, and it would defeat that vendor's prompt
# cache from the prompt's first token.
BILLING_LINE = "x-anthropic-billing-header:"

BLOCK_TEXT = "text"
BLOCK_IMAGE = "image"
BLOCK_THINKING = "thinking"
BLOCK_REDACTED = "redacted_thinking"
BLOCK_TOOL_USE = "tool_use"
BLOCK_TOOL_RESULT = "tool_result"

STOP_FROM: dict[object, str] = {  # looked up by the stop_reason as sent
    "end_turn": FINISH_STOP,
    "stop_sequence": FINISH_STOP,
    "pause_turn": FINISH_STOP,
    "tool_use": FINISH_TOOL_CALLS,
    "max_tokens": FINISH_LENGTH,
    "model_context_window_exceeded": FINISH_LENGTH,
    "refusal": FINISH_CONTENT_FILTER,
}
