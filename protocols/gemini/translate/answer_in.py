"""An upstream's Gemini generateContent non-stream answer, and its usage, read into the unified form."""

from __future__ import annotations

from protocols.gemini.stream import FINISH_MAX_TOKENS
from protocols.gemini.translate.request_in import model_parts
from protocols.gemini.translate.vocabulary import FINISH_STOP_NAME, get_field
from protocols.gemini.usage import usage_to_ir
from protocols.translate.common import parse_arguments
from protocols.unified import (
    FINISH_CONTENT_FILTER,
    FINISH_LENGTH,
    FINISH_STOP,
    GENERATED_TOOL_ID_PREFIX,
    Answer,
    ToolCall,
    ToolIds,
)

# CONTINUATION: the per-request token limit cut an unfinished answer, which only a Gemini client can resume (by its
# continuationToken): to a client of another protocol it is a token cap.
FINISH_FROM = {FINISH_STOP_NAME: FINISH_STOP, FINISH_MAX_TOKENS: FINISH_LENGTH, "CONTINUATION": FINISH_LENGTH}
# Ends that say the request or the answer was broken, not how the answer ends: told as an error, not as a stop (a
# content filter would be a lie, a plain stop would hide that the answer is not whole).
BROKEN = frozenset({"MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE"})
BROKEN_STATUS = 502
# Every other finishReason is a safety or policy stop, a tool-call problem or a catch-all.
TOOL_PROBLEMS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "OTHER",
                           "FINISH_REASON_UNSPECIFIED"})


def finish_to_ir(reason: str | None) -> str:
    if reason in FINISH_FROM:
        return FINISH_FROM[reason]
    # Lossy: tool-call problems and catch-alls are told as a plain stop.
    return FINISH_STOP if reason in TOOL_PROBLEMS or not reason else FINISH_CONTENT_FILTER


def finish_of(body: dict) -> str:
    candidates = body.get("candidates") or ()
    if not candidates and (get_field(body, "promptFeedback") or {}).get("blockReason"):
        return FINISH_CONTENT_FILTER
    return finish_to_ir(get_field(candidates[0], "finishReason") if candidates else None)


def broken(reason: object) -> str | None:
    """The error message of a finishReason that says the request or the answer was broken (BROKEN), else None."""
    return f"Gemini ended the answer with {reason}" if isinstance(reason, str) and reason in BROKEN else None


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    """Raises ValueError for an answer Gemini ended as broken (`broken`): a failed attempt, not an answer."""
    ids = ids or ToolIds()
    candidates = body.get("candidates") or [{}]
    if (problem := broken(get_field(candidates[0], "finishReason"))) is not None:
        raise ValueError(problem)
    parts = model_parts((candidates[0].get("content") or {}).get("parts"))  # Lossy: only the first candidate.
    for ordinal, call in enumerate(p for p in parts if isinstance(p, ToolCall)):
        vendor_id = None if call.id.startswith(GENERATED_TOOL_ID_PREFIX) else call.id
        call.id = ids.issue(vendor_id, call.name, parse_arguments(call.arguments), ordinal)
    return Answer(
        id=get_field(body, "responseId") or "",
        model=get_field(body, "modelVersion") or "",
        parts=parts,
        finish=finish_of(body),
        usage=usage_to_ir(get_field(body, "usageMetadata") or {}),
    )
