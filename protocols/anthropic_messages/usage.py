"""Anthropic Messages' usage: `usage` of an answer; in a stream, `message_start`'s updated by `message_delta`s."""

from __future__ import annotations

from protocols.anthropic_messages.translate.answer_in import usage_to_ir
from protocols.sse import load_object
from protocols.unified import Usage
from protocols.usage import Feed, UsageSniffer


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
