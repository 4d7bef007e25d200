"""The official SDKs reading a canned non-stream answer (or error) through an in-memory transport.

The streamed counterparts are in tests/support/sdk_clients.py; these serve `application/json`, as a non-stream answer is.
"""

from __future__ import annotations

import functools
import json

import anthropic
import httpx
import httpx2
import openai
from google import genai
from google.genai import types as genai_types

_ANSWER = {"body": b"", "status": 200}
PROMPT = [{"role": "user", "content": "hi"}]
JSON_HEADERS = {"content-type": "application/json"}


def _serve2(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(_ANSWER["status"], content=_ANSWER["body"], headers=JSON_HEADERS)


def _serve(request: httpx.Request) -> httpx.Response:
    return httpx.Response(_ANSWER["status"], content=_ANSWER["body"], headers=JSON_HEADERS)


@functools.cache
def _openai() -> openai.OpenAI:
    client = httpx2.Client(transport=httpx2.MockTransport(_serve2))
    return openai.OpenAI(api_key="k", base_url="http://sdk.test/v1", http_client=client, max_retries=0)


@functools.cache
def _anthropic() -> anthropic.Anthropic:
    client = httpx2.Client(transport=httpx2.MockTransport(_serve2))
    return anthropic.Anthropic(api_key="k", base_url="http://sdk.test", http_client=client, max_retries=0)


@functools.cache
def _genai() -> genai.Client:
    options = genai_types.HttpOptions(base_url="http://sdk.test", httpx_client=httpx.Client(transport=httpx.MockTransport(_serve)))
    return genai.Client(api_key="k", http_options=options)


def read(protocol: str, body: bytes, status: int = 200):
    """What the protocol's official SDK makes of a non-stream answer `body` (raises the SDK's error if any)."""
    _ANSWER["body"], _ANSWER["status"] = body, status
    if protocol == "openai_chat":
        return _openai().chat.completions.create(model="m", messages=PROMPT)
    if protocol == "openai_responses":
        return _openai().responses.create(model="m", input="hi")
    if protocol == "anthropic_messages":
        return _anthropic().messages.create(model="c", max_tokens=10, messages=PROMPT)
    return _genai().models.generate_content(model="g", contents="hi")


# --- one view of what a client saw, whatever its protocol


def view(protocol: str, answer) -> dict:
    """What a client's SDK object says, in common terms: text, reasoning text, tool calls (id, name, arguments),
    finish (the protocol's own reason, mapped: a wrong native reason shows as a wrong mapped one) and usage as
    (prompt incl. cache, cache read, output incl. reasoning)."""
    return {"openai_chat": _chat_view, "openai_responses": _responses_view,
            "anthropic_messages": _anthropic_view, "gemini": _gemini_view}[protocol](answer)


def _arguments(text: str):
    """Tool arguments as an object; a half-written argument string stays a string (so a test can see it)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _chat_view(completion) -> dict:
    choice = completion.choices[0]
    message = choice.message
    extra = message.model_extra or {}
    usage = completion.usage
    return {
        "text": message.content or "",
        "reasoning": extra.get("reasoning_content") or "",
        "calls": [(c.id, c.function.name, _arguments(c.function.arguments)) for c in message.tool_calls or ()],
        "finish": choice.finish_reason,
        "usage": (usage.prompt_tokens, (usage.prompt_tokens_details.cached_tokens or 0)
                  if usage.prompt_tokens_details else 0, usage.completion_tokens) if usage else None,
    }


_RESPONSES_FINISH = {("completed", None): "stop", ("incomplete", "max_output_tokens"): "length",
                     ("incomplete", "content_filter"): "content_filter"}


def _responses_view(response) -> dict:
    calls = [(i.call_id, i.name, _arguments(i.arguments)) for i in response.output if i.type == "function_call"]
    reason = response.incomplete_details.reason if response.incomplete_details else None
    finish = _RESPONSES_FINISH.get((response.status, reason), response.status)
    usage = response.usage
    return {
        "text": "".join(c.text for i in response.output if i.type == "message" for c in i.content
                        if c.type == "output_text"),
        "reasoning": "".join(s.text for i in response.output if i.type == "reasoning" for s in i.summary),
        "calls": calls,
        "finish": "tool_calls" if finish == "stop" and calls else finish,
        "usage": (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens)
        if usage else None,
    }


_ANTHROPIC_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                     "refusal": "content_filter", "stop_sequence": "stop"}


def _anthropic_view(message) -> dict:
    usage = message.usage
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    return {
        "text": "".join(b.text for b in message.content if b.type == "text"),
        "reasoning": "".join(b.thinking for b in message.content if b.type == "thinking"),
        "calls": [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"],
        "finish": _ANTHROPIC_FINISH.get(message.stop_reason, message.stop_reason),
        "usage": (usage.input_tokens + cached, usage.cache_read_input_tokens, usage.output_tokens),
    }


_GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}


def _gemini_view(chunks) -> dict:
    """One response, or the chunks of a stream (merged: usage and finish from the last chunk that has them)."""
    chunks = chunks if isinstance(chunks, list) else [chunks]
    parts = [p for c in chunks if c.candidates for p in (c.candidates[0].content.parts or ()
                                                         if c.candidates[0].content else ())]
    finish = [c.candidates[0].finish_reason for c in chunks if c.candidates and c.candidates[0].finish_reason]
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    calls = [(p.function_call.id, p.function_call.name, p.function_call.args) for p in parts if p.function_call]
    finish_name = _GEMINI_FINISH.get(finish[-1].name, finish[-1].name) if finish else None
    last = usage[-1] if usage else None
    return {
        "text": "".join(p.text for p in parts if p.text and not p.thought),
        "reasoning": "".join(p.text for p in parts if p.text and p.thought),
        "calls": calls,
        "finish": "tool_calls" if finish_name == "stop" and calls else finish_name,
        "usage": (last.prompt_token_count, last.cached_content_token_count or 0,
                  (last.candidates_token_count or 0) + (last.thoughts_token_count or 0)) if last else None,
    }
