"""Bedrock Converse's usage: `usage` of an answer; in a stream, the `metadata` event's, the last one."""

from __future__ import annotations

from protocols.base import count
from protocols.bedrock_converse.events import METADATA
from protocols.unified import Usage
from protocols.usage import UsageSniffer


def usage_to_ir(usage: dict) -> Usage:
    """Bedrock's inputTokens leave out the cache's reads and writes; the unified input counts them."""
    read = count(usage, "cacheReadInputTokens")
    write = count(usage, "cacheWriteInputTokens")
    return Usage(
        input_tokens=count(usage, "inputTokens") + read + write,
        output_tokens=count(usage, "outputTokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


class ConverseSniffer(UsageSniffer):
    """The `metadata` event carries the whole usage once, at the end of the stream."""

    mark = '"usage"'
    events = frozenset({METADATA})
    to_usage = staticmethod(usage_to_ir)
