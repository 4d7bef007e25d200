"""A unified request written as the OpenAI Chat Completions request body sent upstream (`request_from_ir`)."""

from __future__ import annotations

from protocols.capabilities import Capabilities, effort_for
from protocols.openai_chat.stream import TOOL_TYPE_FUNCTION
from protocols.openai_chat.translate.vocabulary import FORMAT_JSON_OBJECT, FORMAT_JSON_SCHEMA, NAME, REASONING_KEY
from protocols.translate.common import image_url, output_cap, with_json_instruction
from protocols.translate.tools import as_function
from protocols.unified import (
    CHOICE_TOOL,
    INSTRUCTION_ROLES,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_USER,
    Image,
    Message,
    Reasoning,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolResult,
)


def _content(parts: list) -> str | list:
    """A user content: a plain string when it is all text, else text and image_url parts."""
    if all(isinstance(p, Text) for p in parts):
        return "".join(p.text for p in parts)
    return [
        {"type": "text", "text": p.text} if isinstance(p, Text)
        else {"type": "image_url", "image_url": {"url": image_url(p), **({"detail": p.detail} if p.detail else {})}}
        for p in parts if isinstance(p, (Text, Image))
    ]


def assistant_message(message: Message) -> dict:
    out: dict = {"role": ROLE_ASSISTANT, "content": "".join(p.text for p in message.parts if isinstance(p, Text))
                 or None}
    # Lossy: reasoning goes back only to where it came from (a Chat client's own reasoning_content);
    # other vendors' thinking and all signatures are dropped.
    reasoning = "".join(p.text for p in message.parts if isinstance(p, Reasoning) and p.origin == NAME)
    if reasoning:
        out[REASONING_KEY] = reasoning
    calls = [p for p in message.parts if isinstance(p, ToolCall)]
    if calls:
        out["tool_calls"] = [
            {"id": c.id, "type": TOOL_TYPE_FUNCTION, "function": {"name": c.name, "arguments": c.arguments or "{}"}}
            for c in calls
        ]
    return out


def _tool_messages(message: Message) -> list[dict]:
    """One `tool` message per result. Lossy: Chat tool messages carry text only, so a result's images follow in
    a user message."""
    out: list[dict] = []
    images: list = []
    for part in message.parts:
        if isinstance(part, ToolResult):
            text = part.text()
            out.append({"role": ROLE_TOOL, "tool_call_id": part.call_id,
                        "content": f"Error: {text}" if part.is_error else text})  # Lossy: no error flag in Chat
            images += [p for p in part.content if isinstance(p, Image)]
    if images:
        out.append({"role": ROLE_USER, "content": _content(images)})
    return out


def _messages(request: Request) -> list[dict]:
    system = with_json_instruction(request, request.system, always=False)
    out: list[dict] = [{"role": "system", "content": system}] if system else []
    for message in request.messages:
        if message.role in INSTRUCTION_ROLES:
            out.append({"role": message.role, "content": "".join(p.text for p in message.parts if isinstance(p, Text))})
        elif message.role == ROLE_ASSISTANT:
            out.append(assistant_message(message))
        elif message.role == ROLE_TOOL:
            out += _tool_messages(message)
        else:
            out.append({"role": ROLE_USER, "content": _content(message.parts)})
    return out


def _tool(tool: Tool) -> dict:
    function: dict = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": TOOL_TYPE_FUNCTION, "function": function}


def request_from_ir(request: Request, caps: Capabilities | None = None) -> dict:
    """OpenAI models differ only in what `capabilities.fit` has already adjusted: `caps` shapes nothing here."""
    body: dict = {"model": request.model, "messages": _messages(request)}
    if request.tools:
        # Custom tools go as functions: how Chat streams a custom call is not in the SDK's types.
        body["tools"] = [_tool(t) for t in map(as_function, request.tools)]
    choice = request.tool_choice
    if choice is not None and request.tools:  # OpenAI refuses a tool_choice without tools
        body["tool_choice"] = ({"type": TOOL_TYPE_FUNCTION, "function": {"name": choice.name}}
                               if choice.mode == CHOICE_TOOL else choice.mode)
    if request.parallel_tool_calls is not None and request.tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    # `max_tokens`, which every OpenAI-compatible vendor takes (OpenAI's reasoning models want
    # max_completion_tokens: an adapter renames it).
    for key, value in (("max_tokens", output_cap(request.max_tokens)), ("temperature", request.temperature),
                       ("top_p", request.top_p), ("seed", request.seed), ("user", request.user)):
        if value is not None:
            body[key] = value
    # Lossy: top_k has no Chat field and is dropped.
    if request.stop:
        body["stop"] = request.stop
    if request.reasoning is not None and (effort := effort_for(request.reasoning)):
        body["reasoning_effort"] = effort
    fmt = request.response_format
    if fmt is not None:
        body["response_format"] = (
            {"type": FORMAT_JSON_OBJECT} if fmt.schema is None
            else {"type": FORMAT_JSON_SCHEMA, "json_schema": {
                "name": fmt.name or "response", "schema": fmt.schema,
                **({"strict": fmt.strict} if fmt.strict is not None else {})}}
        )
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # the translated answer needs the usage
    return body
