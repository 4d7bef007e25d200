"""The fake vendor's side of a continuation: how it tells that a request asks for the rest of a cut answer (by
prefill: the conversation ends in the assistant's turn; in words: a user turn with Rotator's instruction after it),
what it answers (the rest of the answer, exactly after a prefill, with a few characters of overlap after an
instruction, as models do), how a model that takes no prefill refuses one, in each vendor's words, and how a vendor
that takes only alternating roles refuses two user turns in a row. A request for structured output is answered as
constrained decoding does, with a whole new document (it cannot go on inside one), and Anthropic refuses a prefill
combined with it."""

from __future__ import annotations

from typing import Any

from protocols.resume.asking import INSTRUCTION

ASSISTANT, USER, TOOL = "assistant", "user", "tool"
# Each protocol's registered name, and a first request whose answer is then cut.
NAMES = {"chat": "openai_chat", "responses": "openai_responses", "anthropic": "anthropic_messages", "gemini": "gemini"}
REQUESTS = {
    "chat": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "responses": {"model": "m", "input": "hi"},
    "anthropic": {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}

PREFILL_REFUSALS = {
    "anthropic": {"type": "error", "error": {"type": "invalid_request_error", "message": (
        "This model does not support assistant message prefill. The conversation must end with a user message.")}},
    "gemini": {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                         "message": "Requests ending with a model turn are not supported"}},
    "chat": {"error": {"type": "invalid_request_error", "code": None, "param": "messages",
                       "message": "Expected last role User or Tool (or Assistant with prefix True)"}},
    "responses": {"error": {"type": "invalid_request_error", "code": None, "param": "input",
                            "message": "Expected last role User or Tool (or Assistant with prefix True)"}},
}

# Anthropic's answer to a prefill in a request with structured output (which it does not combine with one).
PREFILL_WITH_FORMAT = {"type": "error", "error": {"type": "invalid_request_error", "message": (
    "Prefilling the assistant message is not supported when using structured outputs (output_config.format).")}}
JSON_FORMATS = ("json_schema", "json_object")

# How a vendor whose chat template takes only alternating roles refuses two user turns in a row (vLLM, TGI).
NOT_ALTERNATING = "Conversation roles must alternate user/assistant/user/assistant/..."


def _text(content: Any) -> str:
    """The text of a turn's content: a string, or the text of its parts / blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


def _role(turn: dict, content: Any) -> str:
    """A turn's role as the continuation sees it: a user turn of only tool results is a tool turn."""
    role = {"model": ASSISTANT, "developer": "system"}.get(turn.get("role") or "", turn.get("role") or TOOL)
    if role == USER and isinstance(content, list) and content and not _text(content):
        return TOOL
    return role


def turns(protocol: str, body: dict) -> list[tuple[str, str]]:
    """The conversation as (role, text), oldest first; tool calls and results are tool turns."""
    if protocol == "responses":
        given = body.get("input")
        items = [{"role": USER, "content": given}] if isinstance(given, str) else list(given or [])
        return [(_role(item, item.get("content")), _text(item.get("content"))) for item in items if isinstance(item, dict)]
    key, parts = {"chat": ("messages", "content"), "anthropic": ("messages", "content"),
                  "gemini": ("contents", "parts")}[protocol]
    return [(_role(turn, turn.get(parts)), _text(turn.get(parts))) for turn in body.get(key) or []
            if isinstance(turn, dict)]


def asked(protocol: str, body: dict) -> tuple[str, str] | None:
    """("prefill" or "instruction", the partial answer) when the request asks for the rest of an answer."""
    said = turns(protocol, body)
    if said and said[-1][0] == ASSISTANT:
        return "prefill", said[-1][1]
    if not said or said[-1][0] != USER or INSTRUCTION not in said[-1][1]:
        return None
    partial = []
    for role, text in reversed(said[:-1]):
        if role == USER:
            break
        if role == ASSISTANT:
            partial.append(text)
    return "instruction", "".join(reversed(partial))


def structured(protocol: str, body: dict) -> bool:
    """Whether the request constrains its answer to JSON (a schema or JSON mode)."""
    if protocol == "chat":
        return (body.get("response_format") or {}).get("type") in JSON_FORMATS
    if protocol == "responses":
        return ((body.get("text") or {}).get("format") or {}).get("type") in JSON_FORMATS
    if protocol == "anthropic":
        return bool((body.get("output_config") or {}).get("format") or body.get("output_format"))
    config = body.get("generationConfig") or body.get("generation_config") or {}
    mime = config.get("responseMimeType") or config.get("response_mime_type")
    return mime == "application/json" or any(
        config.get(key) is not None for key in ("responseSchema", "response_schema", "responseJsonSchema",
                                                "response_json_schema"))


def repeats_user(protocol: str, body: dict) -> bool:
    """Whether the conversation has two user turns in a row (tool results are not user turns)."""
    roles = [role for role, _ in turns(protocol, body)]
    return any(a == b == USER for a, b in zip(roles, roles[1:], strict=False))


def rest(answer: str, method: str, partial: str, overlap: int, structured: bool = False) -> str:
    """What a model says when asked to go on with `partial` of `answer`: after a prefill exactly the rest (the
    prefill may have lost its trailing whitespace), in words the rest with `overlap` characters of the partial said
    again; the whole answer again when the partial is not the answer's start (it has nothing to go on from), or
    when its request asked for `structured` output (constrained decoding writes a whole document)."""
    if structured or not answer.startswith(partial):
        return answer
    if method == "prefill":
        return answer[len(partial):]
    return answer[max(0, len(partial) - overlap):]
