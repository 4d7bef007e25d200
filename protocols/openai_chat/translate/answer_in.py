"""An upstream's OpenAI Chat Completions non-stream answer, and its usage, read into the unified form."""

from __future__ import annotations

from protocols.openai_chat.translate.request_in import assistant_parts
from protocols.openai_chat.translate.vocabulary import FINISH_FROM
from protocols.openai_chat.usage import usage_to_ir
from protocols.unified import FINISH_STOP, Answer, ToolCall, ToolIds


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    choices = body.get("choices") or [{}]
    choice = choices[0]  # Lossy: only the first of n choices is translated.
    parts = assistant_parts(choice.get("message") or {})
    ids = ids or ToolIds()
    for ordinal, call in enumerate(p for p in parts if isinstance(p, ToolCall)):
        call.id = ids.issue(call.id or None, call.name, body.get("id"), ordinal)
    return Answer(
        id=body.get("id") or "",
        model=body.get("model") or "",
        created=body.get("created") or 0,
        parts=parts,
        finish=FINISH_FROM.get(choice.get("finish_reason"), FINISH_STOP),
        usage=usage_to_ir(body.get("usage") or {}),
    )
