"""One call per protocol through its official SDK, folded into a `Result` tests can compare across protocols.

    client = make_client("anthropic")                        # no arguments: env vars, default vendor URL
    client = make_client("anthropic", base_url=vendor.url)   # straight at the fake vendor
    result = call("anthropic", client, stream=True, tools=True)   # model=... for another model
    assert result.finish == FINISH["anthropic"]["tool"] and result.tool_calls == [("get_weather", {...})]

Streams use what agents use: Chat `create(stream=True, stream_options={"include_usage": True})`, Responses
`create(stream=True)`, Anthropic's `messages.stream()` helper and `get_final_message()`, Gemini
`generate_content_stream`. Each records when every piece of text arrived (`Result.arrivals`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types as gtypes

from tests.support.fake_vendor import TOOL_NAME

PROTOCOLS = ("chat", "responses", "anthropic", "gemini")
MODELS = {"chat": "gpt-4o-mini", "responses": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
PROMPT = "Say hello."

# What each SDK reports for a complete text answer / a tool call; None is what a silently truncated stream gives.
FINISH = {
    "chat": {"text": "stop", "tool": "tool_calls"},
    "responses": {"text": "completed", "tool": "completed"},
    "anthropic": {"text": "end_turn", "tool": "tool_use"},
    "gemini": {"text": "STOP", "tool": "STOP"},
}
# The protocol's own "ran out of tokens" ending (Rotator's default repair of a cut stream).
TRUNCATED = {"chat": "length", "responses": "incomplete", "anthropic": "max_tokens", "gemini": "MAX_TOKENS"}

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}


@dataclass
class Result:
    text: str = ""
    finish: str | None = None  # finish_reason / response status / stop_reason / finishReason, as the SDK gives it
    input_tokens: int | None = None
    output_tokens: int | None = None
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)
    tool_call_ids: list[str] = field(default_factory=list)
    arrivals: list[tuple[float, str]] = field(default_factory=list)  # (time.time(), text piece) for streams
    events: int = 0  # chunks / events the SDK yielded
    raw: Any = None  # the final SDK object (completion, response, message, or last chunk)


def make_client(protocol: str, base_url: str | None = None, api_key: str | None = None, **kwargs: Any) -> Any:
    """The protocol's official client. With no base_url/api_key it is built with no arguments at all."""
    if protocol in ("chat", "responses"):
        if base_url is not None:
            kwargs.update(base_url=f"{base_url}/v1", api_key=api_key or "sk-test")
        return openai.OpenAI(**kwargs)
    if protocol == "anthropic":
        if base_url is not None:
            kwargs.update(base_url=base_url, api_key=api_key or "sk-ant-test")
        return anthropic.Anthropic(**kwargs)
    if protocol == "gemini":
        if base_url is not None:
            options = kwargs.pop("http_options", None) or gtypes.HttpOptions()
            options.base_url = base_url
            kwargs.update(api_key=api_key or "g-test", http_options=options)
        return genai.Client(**kwargs)
    raise ValueError(protocol)


def call(protocol: str, client: Any, stream: bool, tools: bool = False, **kwargs: Any) -> Result:
    return _CALLS[protocol](client, stream, tools, **kwargs)


def _args(arguments: str | dict | None) -> dict:
    if isinstance(arguments, dict):
        return arguments
    return json.loads(arguments) if arguments else {}


# --- OpenAI Chat Completions


def chat(client: openai.OpenAI, stream: bool, tools: bool = False, **kwargs: Any) -> Result:
    model = kwargs.pop("model", MODELS["chat"])
    if tools:
        kwargs["tools"] = [
            {"type": "function", "function": {"name": TOOL_NAME, "description": "Weather.", "parameters": WEATHER_SCHEMA}}
        ]
    messages = [{"role": "user", "content": PROMPT}]
    r = Result()
    if not stream:
        completion = client.chat.completions.create(model=model, messages=messages, **kwargs)
        choice = completion.choices[0]
        r.text, r.finish, r.raw = choice.message.content or "", choice.finish_reason, completion
        r.input_tokens, r.output_tokens = completion.usage.prompt_tokens, completion.usage.completion_tokens
        for tc in choice.message.tool_calls or []:
            r.tool_calls.append((tc.function.name, _args(tc.function.arguments)))
            r.tool_call_ids.append(tc.id)
        return r
    calls: dict[int, dict] = {}
    kwargs.setdefault("stream_options", {"include_usage": True})
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True, **kwargs):
        r.events += 1
        r.raw = chunk
        if chunk.usage:
            r.input_tokens, r.output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
        for choice in chunk.choices:
            if choice.delta.content:
                r.text += choice.delta.content
                r.arrivals.append((time.time(), choice.delta.content))
            for tc in choice.delta.tool_calls or []:
                acc = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                acc["id"] += tc.id or ""
                if tc.function:
                    acc["name"] += tc.function.name or ""
                    acc["arguments"] += tc.function.arguments or ""
                    if tc.function.arguments:
                        r.arrivals.append((time.time(), tc.function.arguments))
            if choice.finish_reason:
                r.finish = choice.finish_reason
    for _, acc in sorted(calls.items()):
        r.tool_calls.append((acc["name"], _args(acc["arguments"])))
        r.tool_call_ids.append(acc["id"])
    return r


# --- OpenAI Responses


def responses(client: openai.OpenAI, stream: bool, tools: bool = False, **kwargs: Any) -> Result:
    model = kwargs.pop("model", MODELS["responses"])
    if tools:
        kwargs["tools"] = [{"type": "function", "name": TOOL_NAME, "description": "Weather.", "parameters": WEATHER_SCHEMA}]
    r = Result()

    def fold(response: Any) -> None:
        r.raw, r.finish = response, response.status
        if response.usage:
            r.input_tokens, r.output_tokens = response.usage.input_tokens, response.usage.output_tokens
        for item in response.output:
            if item.type == "function_call":
                r.tool_calls.append((item.name, _args(item.arguments)))
                r.tool_call_ids.append(item.call_id)

    if not stream:
        response = client.responses.create(model=model, input=PROMPT, **kwargs)
        fold(response)
        r.text = response.output_text
        return r
    for event in client.responses.create(model=model, input=PROMPT, stream=True, **kwargs):
        r.events += 1
        if event.type == "response.output_text.delta":
            r.text += event.delta
            r.arrivals.append((time.time(), event.delta))
        elif event.type == "response.function_call_arguments.delta":
            r.arrivals.append((time.time(), event.delta))
        elif event.type in ("response.completed", "response.incomplete", "response.failed"):
            fold(event.response)
    return r


# --- Anthropic Messages


def messages(client: anthropic.Anthropic, stream: bool, tools: bool = False, **kwargs: Any) -> Result:
    if tools:
        kwargs["tools"] = [{"name": TOOL_NAME, "description": "Weather.", "input_schema": WEATHER_SCHEMA}]
    args = {"model": MODELS["anthropic"], "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}],
            **kwargs}
    r = Result()
    if not stream:
        message = client.messages.create(**args)
    else:
        with client.messages.stream(**args) as s:
            for event in s:
                r.events += 1
                if event.type == "content_block_delta":
                    piece = getattr(event.delta, "text", None) or getattr(event.delta, "partial_json", None)
                    if piece:
                        r.arrivals.append((time.time(), piece))
            message = s.get_final_message()
    r.raw, r.finish = message, message.stop_reason
    r.input_tokens, r.output_tokens = message.usage.input_tokens, message.usage.output_tokens
    for block in message.content:
        if block.type == "text":
            r.text += block.text
        elif block.type == "tool_use":
            r.tool_calls.append((block.name, dict(block.input)))
            r.tool_call_ids.append(block.id)
    return r


# --- Gemini


def gemini(client: genai.Client, stream: bool, tools: bool = False, **kwargs: Any) -> Result:
    model = kwargs.pop("model", MODELS["gemini"])
    config = kwargs.pop("config", None)
    if tools:
        declaration = gtypes.FunctionDeclaration(name=TOOL_NAME, description="Weather.", parameters_json_schema=WEATHER_SCHEMA)
        config = gtypes.GenerateContentConfig(tools=[gtypes.Tool(function_declarations=[declaration])])
    r = Result()

    def fold(chunk: Any) -> None:
        r.raw = chunk
        if chunk.usage_metadata:
            r.input_tokens = chunk.usage_metadata.prompt_token_count
            r.output_tokens = chunk.usage_metadata.candidates_token_count
        if chunk.candidates and chunk.candidates[0].finish_reason:
            r.finish = _enum(chunk.candidates[0].finish_reason)
        for fc in chunk.function_calls or []:
            r.tool_calls.append((fc.name, dict(fc.args or {})))
            r.tool_call_ids.append(fc.id or "")

    if not stream:
        response = client.models.generate_content(model=model, contents=PROMPT, config=config, **kwargs)
        fold(response)
        r.text = _chunk_text(response)
        return r
    for chunk in client.models.generate_content_stream(model=model, contents=PROMPT, config=config, **kwargs):
        r.events += 1
        text = _chunk_text(chunk)
        if text:
            r.text += text
            r.arrivals.append((time.time(), text))
        r.finish = None  # only the last chunk's finishReason counts
        fold(chunk)
    return r


def _chunk_text(chunk: Any) -> str:
    if not chunk.candidates or not chunk.candidates[0].content or not chunk.candidates[0].content.parts:
        return ""
    return "".join(p.text for p in chunk.candidates[0].content.parts if p.text and not p.thought)


def _enum(value: Any) -> str:
    return getattr(value, "value", value)


_CALLS = {"chat": chat, "responses": responses, "anthropic": messages, "gemini": gemini}
