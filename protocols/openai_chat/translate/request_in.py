"""A client's OpenAI Chat Completions request read into the unified form (`request_to_ir`)."""

from __future__ import annotations

from typing import Any

from protocols.openai_chat.stream import REASONING_KEYS, TOOL_TYPE_FUNCTION
from protocols.openai_chat.translate.vocabulary import FORMAT_JSON_OBJECT, FORMAT_JSON_SCHEMA, NAME, TOOL_TYPE_CUSTOM
from protocols.translate.common import image_from_url, string
from protocols.translate.tools import FORMAT_TEXT, custom_arguments
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    INSTRUCTION_ROLES,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_USER,
    Message,
    Reasoning,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    name_tool_results,
)

CHOICE_MODES = frozenset({CHOICE_AUTO, CHOICE_NONE, CHOICE_REQUIRED})


def _text(content: Any) -> str:
    """The text of a message content: a string, or the text of its text parts."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or "" for p in content or () if isinstance(p, dict) and p.get("type") == "text")


def _user_parts(content: Any) -> list:
    if isinstance(content, str):
        return [Text(content)]
    parts: list = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            parts.append(Text(part.get("text") or ""))
        elif kind == "image_url":
            image = part.get("image_url") or {}
            parts.append(image_from_url(image.get("url") or "", image.get("detail")))
        # Lossy: input_audio and file parts have no unified form and are dropped.
    return parts


def assistant_parts(message: dict) -> list:
    parts: list = []
    for key in REASONING_KEYS:
        if isinstance(message.get(key), str) and message[key]:
            parts.append(Reasoning(message[key], origin=NAME))
    text = _text(message.get("content")) + (message.get("refusal") or "")
    if text:
        parts.append(Text(text))
    for call in message.get("tool_calls") or ():
        if call.get("type") == TOOL_TYPE_CUSTOM:
            custom = call.get("custom") or {}
            parts.append(ToolCall(call.get("id") or "", custom.get("name") or "",
                                  custom_arguments(string(custom.get("input")))))
            continue
        function = call.get("function") or {}
        parts.append(ToolCall(call.get("id") or "", function.get("name") or "", function.get("arguments") or ""))
    return parts


def _tools_to_ir(tools: Any) -> list[Tool]:
    out: list[Tool] = []
    for t in tools or ():
        if t.get("type") == TOOL_TYPE_FUNCTION:
            f = t.get("function") or {}
            out.append(Tool(f.get("name") or "", f.get("description"), f.get("parameters"), f.get("strict")))
        elif t.get("type") == TOOL_TYPE_CUSTOM:
            custom = t.get("custom") or {}
            fmt: dict = custom.get("format") or FORMAT_TEXT
            if fmt.get("type") == "grammar":  # Chat nests the grammar; the unified form keeps Responses' flat one
                fmt = {"type": "grammar", **(fmt.get("grammar") or {})}
            out.append(Tool(custom.get("name") or "", custom.get("description"), custom_format=fmt))
    return out


def _message(message: dict) -> Message | None:
    role = message.get("role")
    if role in INSTRUCTION_ROLES:
        return Message(role, [Text(_text(message.get("content")))])
    if role == ROLE_USER:
        return Message(role, _user_parts(message.get("content")))
    if role == ROLE_ASSISTANT:
        return Message(role, assistant_parts(message))
    if role == ROLE_TOOL:
        return Message(ROLE_TOOL, [ToolResult(message.get("tool_call_id") or "", _user_parts(message.get("content")))])
    return None  # Lossy: the legacy `function` role is dropped.


def _tool_choice(choice: object) -> ToolChoice | None:
    if isinstance(choice, str) and choice in CHOICE_MODES:
        return ToolChoice(choice)
    if isinstance(choice, dict) and choice.get("type") in (TOOL_TYPE_FUNCTION, TOOL_TYPE_CUSTOM):
        return ToolChoice(CHOICE_TOOL, (choice.get(choice["type"]) or {}).get("name"))
    return ToolChoice(CHOICE_AUTO) if choice else None  # Lossy: allowed_tools choices become auto.


def _response_format(value: object) -> ResponseFormat | None:
    if not isinstance(value, dict):
        return None
    if value.get("type") == FORMAT_JSON_OBJECT:
        return ResponseFormat()
    if value.get("type") == FORMAT_JSON_SCHEMA:
        schema = value.get("json_schema") or {}
        return ResponseFormat(schema.get("schema") or {}, schema.get("name"), schema.get("strict"))
    return None


def request_to_ir(body: dict, model: str = "") -> Request:
    """Lossy: n, logprobs, penalties, logit_bias, audio, prediction, metadata, store and service_tier have no
    unified form, and message `name`s are dropped."""
    stop = body.get("stop")
    effort = body.get("reasoning_effort")
    request = Request(
        model=body.get("model") or model,
        messages=[m for m in map(_message, body.get("messages") or ()) if m is not None],
        tools=_tools_to_ir(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=body.get("parallel_tool_calls"),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        stop=[stop] if isinstance(stop, str) else list(stop or ()),
        seed=body.get("seed"),
        reasoning=ReasoningConfig(effort, enabled=effort != "none") if isinstance(effort, str) else None,
        response_format=_response_format(body.get("response_format")),
        user=body.get("safety_identifier") or body.get("user"),
        stream=body.get("stream") is True,
        include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
    )
    name_tool_results(request.messages)
    return request
