"""Gemini's usage: `usageMetadata`, on an answer and on every chunk of a stream."""

from __future__ import annotations

from protocols.base import count
from protocols.events import Event
from protocols.sse import load_object
from protocols.unified import Usage
from protocols.usage import Feed, UsageSniffer


def usage_to_ir(usage: dict) -> Usage:
    """Tool-use prompt tokens count as input; thoughts as output (Gemini counts them apart from candidates)."""
    thoughts = count(usage, "thoughtsTokenCount", "thoughts_token_count")
    return Usage(
        input_tokens=count(usage, "promptTokenCount", "prompt_token_count")
        + count(usage, "toolUsePromptTokenCount", "tool_use_prompt_token_count"),
        output_tokens=count(usage, "candidatesTokenCount", "candidates_token_count") + thoughts,
        reasoning_tokens=thoughts,
        cache_read_tokens=count(usage, "cachedContentTokenCount", "cached_content_token_count"),
    )


class GeminiSniffer(UsageSniffer):
    """Every chunk carries the cumulative `usageMetadata` so far: the last chunk's counts (or the one's before, if
    the last has none); no chunk is searched while the stream runs."""

    mark = '"usageMetadata"'
    answer_keys = ("usageMetadata", "usage_metadata")
    to_usage = staticmethod(usage_to_ir)

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed)
        self._previous: str | None = None

    def tap(self, event: Event) -> bytes:
        data = event.data
        if data is not None:
            self._previous, self._last = self._last, data
        return self._feed(event)

    def usage(self) -> Usage | None:
        for data in (self._last, self._previous):
            if data is not None and self.mark in data:
                return self.normalised(self.usage_of(load_object(data) or {}))
        return None

    def usage_of(self, obj: dict) -> object:
        return obj.get("usageMetadata")
