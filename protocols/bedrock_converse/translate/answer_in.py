"""An upstream's Bedrock Converse non-stream answer, and its usage, read into the unified form."""

from __future__ import annotations

from protocols.bedrock_converse.translate.request_in import block_to_ir
from protocols.bedrock_converse.translate.vocabulary import STOP_FROM
from protocols.bedrock_converse.usage import usage_to_ir
from protocols.unified import FINISH_STOP, Answer, Reasoning, Text, ToolCall, ToolIds


def stop_sequence(fields: object) -> str | None:
    """The stop sequence that matched, where the model's own fields say it (Anthropic models on Bedrock do)."""
    matched = fields.get("stop_sequence") if isinstance(fields, dict) else None
    return matched if isinstance(matched, str) else None


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    """Lossy: Converse answers carry no id nor model (the request's path names it)."""
    ids = ids or ToolIds()
    parts: list[Text | Reasoning | ToolCall] = []
    message = (body.get("output") or {}).get("message") or {}
    for block in message.get("content") or ():
        part = block_to_ir(block)
        if isinstance(part, ToolCall):
            ordinal = sum(isinstance(p, ToolCall) for p in parts)
            part.id = ids.issue(part.id or None, part.name, part.arguments, ordinal)
        if isinstance(part, (Text, Reasoning, ToolCall)):
            parts.append(part)
    return Answer(
        parts=parts,
        finish=STOP_FROM.get(body.get("stopReason"), FINISH_STOP),
        stop_sequence=stop_sequence(body.get("additionalModelResponseFields")),
        usage=usage_to_ir(body.get("usage") or {}),
    )
