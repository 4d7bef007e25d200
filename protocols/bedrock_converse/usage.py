"""Bedrock Converse's usage: `usage` of an answer; in a stream, the `metadata` event's, the last one."""

from __future__ import annotations

from protocols.bedrock_converse.events import METADATA
from protocols.bedrock_converse.translate.answer_in import usage_to_ir
from protocols.usage import UsageSniffer


class ConverseSniffer(UsageSniffer):
    """The `metadata` event carries the whole usage once, at the end of the stream."""

    mark = '"usage"'
    events = frozenset({METADATA})
    to_usage = staticmethod(usage_to_ir)
