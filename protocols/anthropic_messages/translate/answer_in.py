"""An upstream's Anthropic Messages non-stream answer, and its usage, read into the unified form."""

from __future__ import annotations

from protocols.anthropic_messages.translate.request_in import block_to_ir
from protocols.anthropic_messages.translate.vocabulary import STOP_FROM
from protocols.base import count, member
from protocols.unified import FINISH_STOP, Answer, Reasoning, Text, ToolCall, ToolIds, Usage


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


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    ids = ids or ToolIds()
    parts: list[Text | Reasoning | ToolCall] = []
    for block in body.get("content") or ():
        part = block_to_ir(block)
        if isinstance(part, ToolCall):
            part.id = ids.issue(part.id or None, part.name, body.get("id"), sum(isinstance(p, ToolCall) for p in parts))
        if isinstance(part, (Text, Reasoning, ToolCall)):
            parts.append(part)
    return Answer(
        id=body.get("id") or "",
        model=body.get("model") or "",
        parts=parts,
        finish=STOP_FROM.get(body.get("stop_reason"), FINISH_STOP),
        stop_sequence=body.get("stop_sequence"),
        usage=usage_to_ir(body.get("usage") or {}),
    )
