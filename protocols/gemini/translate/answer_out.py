"""A unified answer, usage and error written as the Gemini generateContent client reads them."""

from __future__ import annotations

from protocols.errors import gemini_error
from protocols.gemini.stream import ROLE_MODEL
from protocols.gemini.translate.request_out import call_part
from protocols.gemini.translate.vocabulary import FINISH_STOP_NAME, FINISH_TO, NAME
from protocols.sse import dumps
from protocols.unified import Answer, Reasoning, Request, Text, ToolCall, Usage, client_finish
from protocols.unified_stream import Error


def usage_from_ir(usage: Usage) -> dict:
    out = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    # Lossy: Gemini has no cache-write count.
    return out


def _answer_part(part: Text | Reasoning | ToolCall) -> dict | None:
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Reasoning):
        thought: dict = {"text": part.text, "thought": True}
        if part.origin == NAME and part.signature:
            thought["thoughtSignature"] = part.signature
        return thought if part.text or "thoughtSignature" in thought else None
    if isinstance(part, ToolCall):
        call = call_part(part)
        call["functionCall"]["id"] = part.id  # the client sends it back with the result
        return call
    return None


def answer_from_ir(answer: Answer, request: Request) -> dict:
    finish = client_finish(answer.finish, bool(answer.tool_calls()))
    parts = [p for p in map(_answer_part, answer.parts) if p is not None]
    candidate = {"content": {"role": ROLE_MODEL, "parts": parts},
                 "finishReason": FINISH_TO.get(finish, FINISH_STOP_NAME),
                 "index": 0}
    return {"candidates": [candidate], "usageMetadata": usage_from_ir(answer.usage),
            "modelVersion": answer.model or request.model, "responseId": answer.id}


def error_from_ir(error: Error) -> tuple[int, bytes]:
    body = gemini_error(error.status, error.message)
    return body["code"], dumps({"error": body})
