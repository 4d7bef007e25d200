"""Anthropic Messages' usage: `usage` of an answer; in a stream, `message_start`'s updated by `message_delta`s."""

from __future__ import annotations

from protocols.base import count, member
from protocols.sse import load_object
from protocols.unified import Usage
from protocols.usage import Feed, UsageSniffer


def usage_to_ir(usage: dict) -> Usage:
    """Anthropic's input_tokens excludes cache reads and writes; the unified input includes them.

    Lossy: the cache-write split by TTL and server-tool request counts are dropped."""
    read = count(usage, "cache_read_input_tokens")
    write = count(usage, "cache_creation_input_tokens")
    return Usage(
        input_tokens=count(usage, "input_tokens") + read + write,
        output_tokens=count(usage, "output_tokens"),
        reasoning_tokens=count(member(usage, "output_tokens_details"), "thinking_tokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


class MessagesSniffer(UsageSniffer):
    """`message_start` has the input and cache counts; each `message_delta` a cumulative update (output, and
    sometimes the input again): fields replaced, never added."""

    mark = '"usage"'
    events = frozenset({"message_start", "message_delta"})
    to_usage = staticmethod(usage_to_ir)

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed)
        self._start: str | None = None

    def keep(self, data: str) -> None:
        if self._start is None:
            self._start = data  # message_start
        else:
            self._last = data  # the last update

    def usage(self) -> Usage | None:
        merged: dict = {}
        for data in (self._start, self._last):
            obj = load_object(data) or {} if data is not None else {}
            message = obj.get("message")
            usage = message.get("usage") if isinstance(message, dict) else obj.get("usage")
            if isinstance(usage, dict):
                merged.update((k, v) for k, v in usage.items() if v is not None)
        return self.normalised(merged)
