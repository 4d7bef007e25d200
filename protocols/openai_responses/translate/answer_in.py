"""An upstream's OpenAI Responses non-stream answer, and its usage, read into the unified form."""

from __future__ import annotations

from protocols.openai_responses.translate.request_in import content_to_ir, reasoning_to_ir
from protocols.openai_responses.translate.vocabulary import ITEM_CUSTOM_CALL, REASON_CONTENT_FILTER
from protocols.openai_responses.usage import usage_to_ir
from protocols.openai_responses.vocabulary import ITEM_FUNCTION_CALL, ITEM_MESSAGE, ITEM_REASONING, STATUS_INCOMPLETE
from protocols.translate.common import string
from protocols.translate.tools import custom_arguments
from protocols.unified import FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_STOP, Answer, Text, ToolCall, ToolIds


def finish_to_ir(response: dict) -> str:
    if response.get("status") != STATUS_INCOMPLETE:
        return FINISH_STOP
    reason = (response.get("incomplete_details") or {}).get("reason")
    return FINISH_CONTENT_FILTER if reason == REASON_CONTENT_FILTER else FINISH_LENGTH


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    ids = ids or ToolIds()
    parts: list = []
    for item in body.get("output") or ():
        kind = item.get("type")
        if kind == ITEM_MESSAGE:
            parts += [p for p in content_to_ir(item.get("content")) if isinstance(p, Text)]
        elif kind in (ITEM_FUNCTION_CALL, ITEM_CUSTOM_CALL):
            ordinal = sum(isinstance(p, ToolCall) for p in parts)
            call_id = ids.issue(item.get("call_id"), item.get("name") or "", body.get("id"), ordinal)
            arguments = item.get("arguments") if kind == ITEM_FUNCTION_CALL else custom_arguments(
                string(item.get("input")))
            parts.append(ToolCall(call_id, item.get("name") or "", arguments or ""))
        elif kind == ITEM_REASONING:
            parts.append(reasoning_to_ir(item))
    return Answer(
        id=body.get("id") or "",
        model=body.get("model") or "",
        created=body.get("created_at") or 0,
        parts=parts,
        finish=finish_to_ir(body),
        usage=usage_to_ir(body.get("usage") or {}),
    )
