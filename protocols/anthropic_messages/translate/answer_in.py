"""An upstream's Anthropic Messages non-stream answer, and its usage, read into the unified form."""

from __future__ import annotations

from protocols.anthropic_messages.translate.request_in import block_to_ir
from protocols.anthropic_messages.translate.vocabulary import STOP_FROM
from protocols.anthropic_messages.usage import usage_to_ir
from protocols.unified import FINISH_STOP, Answer, Reasoning, Text, ToolCall, ToolIds


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
