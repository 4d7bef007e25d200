"""ConverseStream's events and the names its answers share (the stream's repairer and aggregator, its translator)."""

from __future__ import annotations

from protocols.base import count

MESSAGE_START = "messageStart"
CONTENT_BLOCK_START = "contentBlockStart"
CONTENT_BLOCK_DELTA = "contentBlockDelta"
CONTENT_BLOCK_STOP = "contentBlockStop"
MESSAGE_STOP = "messageStop"
METADATA = "metadata"

BLOCK_INDEX = "contentBlockIndex"
ROLE_ASSISTANT = "assistant"
STOP_END_TURN = "end_turn"
STOP_MAX_TOKENS = "max_tokens"

# Content block members (a block is an object with one of them).
TEXT = "text"
TOOL_USE = "toolUse"
TOOL_RESULT = "toolResult"
REASONING = "reasoningContent"
REASONING_TEXT = "reasoningText"
REDACTED = "redactedContent"
SIGNATURE = "signature"
IMAGE = "image"


def converse_usage(usage: dict) -> dict:
    """A TokenUsage with its total, as Bedrock writes it: inputTokens leave out the cache's reads and writes, and
    totalTokens counts them all."""
    out = {"inputTokens": count(usage, "inputTokens"), "outputTokens": count(usage, "outputTokens")}
    cached = 0
    for key in ("cacheReadInputTokens", "cacheWriteInputTokens"):
        if usage.get(key):
            out[key] = count(usage, key)
            cached += out[key]
    out["totalTokens"] = out["inputTokens"] + out["outputTokens"] + cached
    return out
