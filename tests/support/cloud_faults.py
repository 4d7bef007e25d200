"""What the fake cloud platform says beyond the four protocols: its error bodies, its faults, and Azure's
content-filter frames.

A `CloudFault` is a `Fault` (tests/support/fake_vendor.py) with the platforms' own endings, and chains like one:

    fake.script(CloudFault.filtered(deltas=2))            # Azure Chat: finish_reason content_filter, no [DONE];
                                                          # Responses: response.failed; Gemini: SAFETY; Claude: refusal
    fake.script(CloudFault.async_filter().stall_after(deltas=1, seconds=5))  # an annotation-only frame, then silence
    fake.script(vertex_exhausted(), host="us-east5-aiplatform.googleapis.com")   # 429 RESOURCE_EXHAUSTED, no Retry-After
    fake.script(azure_throttled(6))                       # 429 with retry-after / retry-after-ms
    fake.script(CloudFault.with_headers(AZURE_REMAINING_UNKNOWN))   # x-ratelimit-remaining-* of -1

Every Azure Chat stream starts with the empty-`choices` frame carrying `prompt_filter_results`, and its content
chunks carry `content_filter_results`; so `Fault.stall_after(deltas=0, seconds=…)` is "a filter frame, then a stall
before the first token".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tests.support import fake_vendor as fv

VERTEX, AZURE, FOUNDRY, BEDROCK = "vertex", "azure", "foundry", "bedrock"  # the dialects of its generation calls
BEDROCK_THROTTLED = "Too many tokens, please wait before trying again."

_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
SAFE = {name: {"filtered": False, "severity": "safe"} for name in _CATEGORIES}
FILTERED = {**SAFE, "violence": {"filtered": True, "severity": "medium"}}
PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": {**SAFE, "jailbreak": {"filtered": False,
                                                                                      "detected": False}}}]
AZURE_REMAINING_UNKNOWN = {"x-ratelimit-remaining-requests": "-1", "x-ratelimit-remaining-tokens": "-1"}
AZURE_FILTER_MESSAGE = ("The response was filtered due to the prompt triggering Azure OpenAI's content management "
                        "policy. Please modify your prompt and retry.")
VERTEX_EXHAUSTED = ("Resource exhausted. Please try again later. Please refer to "
                    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.")
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass(frozen=True)
class CloudFault(fv.Fault):
    """A `Fault` with the platforms' content-filter behaviour."""

    filtered_at: fv.At | None = None
    annotated: bool = False
    aws_exception: str | None = None  # Bedrock: the exception frame `error_after` sends

    @fv._chainable
    def filtered(self, events: int | None = None, *, deltas: int | None = None) -> CloudFault:
        """End the answer at a position as the platform's content filter does (see the module's docstring)."""
        return dataclasses.replace(self, filtered_at=fv._at(events, deltas))

    @fv._chainable
    def exception(self, name: str) -> CloudFault:
        """Bedrock: the exception frame a stream fails with at `error_after` (`throttlingException`, ...)."""
        return dataclasses.replace(self, aws_exception=name)

    @fv._chainable
    def async_filter(self) -> CloudFault:
        """Azure's asynchronous filter: an annotation-only frame (`content_filter_offsets`, no `delta`) after each
        content chunk of a Chat stream."""
        return dataclasses.replace(self, annotated=True)


# --- error bodies


def google_error(status: int, message: str, reason: str | None = None) -> dict:
    body: dict = {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
    if reason:
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                            "domain": "googleapis.com"}]
    return {"error": body}


def azure_error(status: int, message: str, code: str | None = None) -> dict:
    return {"error": {"code": code or str(status), "message": message}}


def error_body(dialect: str | None, status: int, message: str | None = None) -> Any:
    """The platform's own error JSON for an HTTP status (Foundry's Anthropic path answers as Anthropic does)."""
    message = message or f"fake cloud: HTTP {status}"
    if dialect == VERTEX:
        return google_error(status, VERTEX_EXHAUSTED if status == 429 else message)
    if dialect == AZURE:
        return azure_error(status, message)
    if dialect == BEDROCK:  # (its type in x-amzn-errortype: tests/support/fake_bedrock.py)
        return {"message": BEDROCK_THROTTLED if status == 429 else message}
    return fv.error_body(fv.ANTHROPIC if dialect == FOUNDRY else None, status, message)


def vertex_exhausted(message: str = VERTEX_EXHAUSTED) -> CloudFault:
    """Vertex's 429 (pay-as-you-go quota): Google's shape, RESOURCE_EXHAUSTED, and no Retry-After."""
    return CloudFault.status(429, google_error(429, message))


def bedrock_throttled() -> CloudFault:
    """Bedrock's 429 ThrottlingException, "Too many tokens" (its type in x-amzn-errortype), no Retry-After."""
    return CloudFault.status(429, {"message": BEDROCK_THROTTLED})


def azure_throttled(seconds: int = 6, operation: str = "ChatCompletions_Create") -> CloudFault:
    """Azure OpenAI's 429: its message names the wait, as do `retry-after` and `retry-after-ms`."""
    message = (f"Requests to the {operation} Operation under Azure OpenAI API version 2024-10-21 have exceeded token "
               f"rate limit of your current OpenAI S0 pricing tier. Please retry after {seconds} seconds. Please go "
               "here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.")
    return CloudFault.status(429, azure_error(429, message), {
        "retry-after": str(seconds), "retry-after-ms": str(seconds * 1000),
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "0"})


def azure_headers(rec: fv.Request) -> dict[str, str]:
    """The headers every Azure OpenAI answer carries (a fault's own win)."""
    return {"x-ratelimit-limit-requests": "250", "x-ratelimit-remaining-requests": "249",
            "x-ratelimit-limit-tokens": "250000", "x-ratelimit-remaining-tokens": "249000",
            "x-ms-region": "East US", "apim-request-id": f"fake-apim-{rec.index}"}


# --- Azure Chat's filter frames


def azure_chat_events(evs: list[fv.Ev], model: str, annotated: bool) -> list[fv.Ev]:
    """A Chat stream as Azure sends it: the prompt-filter frame first, `content_filter_results` on each choice, the
    real model's name, and (annotated) an annotation-only frame after each content chunk."""
    first = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": PROMPT_FILTER}
    out = [fv.Ev(fv.sse(first), False, first)]
    offset = 0
    for ev in evs:
        payload = ev.payload
        if payload is None:  # ([DONE])
            out.append(ev)
            continue
        choices = [{**c, "content_filter_results": SAFE if (c.get("delta") or {}).get("content") else {}}
                   for c in payload.get("choices", [])]
        payload = {**payload, "model": model, "choices": choices}
        out.append(fv.Ev(fv.sse(payload), ev.delta, payload))
        if annotated and ev.delta:
            offset += len(str((choices[0].get("delta") or {}).get("content") or "")) if choices else 0
            note = {"id": payload["id"], "object": payload["object"], "created": payload["created"], "model": model,
                    "choices": [{"index": 0, "finish_reason": None, "content_filter_results": SAFE,
                                 "content_filter_offsets": {"check_offset": 0, "start_offset": 0,
                                                            "end_offset": offset}}]}
            out.append(fv.Ev(fv.sse(note), False, note))
    return out


def azure_chat_body(body: dict, model: str) -> dict:
    choices = [{**c, "content_filter_results": SAFE} for c in body.get("choices", [])]
    return {**body, "model": model, "choices": choices, "prompt_filter_results": PROMPT_FILTER}


# --- content-filter endings


def filtered(rec: fv.Request, evs: list[fv.Ev], at: fv.At, model: str) -> list[fv.Ev]:
    """`evs` up to `at`, then the ending of an answer the platform's filter stopped (see the module's docstring)."""
    sent = evs[: fv._position(at, evs)]
    if rec.protocol == fv.CHAT:
        chunk = {"id": f"chatcmpl-fake{rec.index}", "object": "chat.completion.chunk", "created": int(rec.received_at),
                 "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter",
                                                  "content_filter_results": FILTERED}]}
        return sent + [fv.Ev(fv.sse(chunk), False, chunk)]  # and no [DONE]
    if rec.protocol == fv.RESPONSES:
        return sent + [response_failed(rec, len(sent), model, "content_filter", AZURE_FILTER_MESSAGE)]
    if rec.protocol == fv.GEMINI:
        chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "SAFETY",
                                 "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                                    "probability": "HIGH", "blocked": True}]}],
                 "modelVersion": model, "responseId": f"fakeresp{rec.index}"}
        return sent + [fv.Ev(fv.sse(chunk, eol="\r\n"), False, chunk)]
    ending = []
    open_blocks = [ev.payload["index"] for ev in sent if ev.payload and ev.payload.get("type") == "content_block_start"]
    closed = {ev.payload["index"] for ev in sent if ev.payload and ev.payload.get("type") == "content_block_stop"}
    ending += [{"type": "content_block_stop", "index": i} for i in open_blocks if i not in closed]
    ending += [{"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": None},
                "usage": {"output_tokens": 1}}, {"type": "message_stop"}]
    return sent + [fv.Ev(fv.sse(p, event=p["type"]), False, p) for p in ending]


def response_failed(rec: fv.Request, sequence_number: int, model: str, code: str, message: str) -> fv.Ev:
    response = {"id": f"resp_fake{rec.index}", "object": "response", "status": "failed", "model": model,
                "error": {"code": code, "message": message}, "output": [], "usage": None}
    payload = {"type": "response.failed", "sequence_number": sequence_number, "response": response}
    return fv.Ev(fv.sse(payload, event="response.failed"), False, payload)
