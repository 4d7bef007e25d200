"""A unified request written as the OpenAI Responses request body sent upstream (`request_from_ir`)."""

from __future__ import annotations

from protocols.capabilities import Capabilities, effort_for
from protocols.openai_responses.translate.vocabulary import (
    FORMAT_JSON_OBJECT,
    FORMAT_JSON_SCHEMA,
    INPUT_IMAGE,
    INPUT_TEXT,
    ITEM_CUSTOM_CALL,
    ITEM_CUSTOM_CALL_OUTPUT,
    ITEM_FUNCTION_CALL_OUTPUT,
    NAME,
    TOOL_CUSTOM,
    TOOL_FUNCTION,
)
from protocols.openai_responses.vocabulary import ITEM_FUNCTION_CALL, ITEM_MESSAGE, ITEM_REASONING, PART_SUMMARY_TEXT
from protocols.translate.common import image_url, output_cap, with_json_instruction
from protocols.translate.tools import custom_input
from protocols.unified import (
    CHOICE_AUTO,
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

LEAST_OUTPUT_TOKENS = 16  # the API refuses less ("integer below minimum value")


def _content(parts: list, text_type: str) -> list[dict]:
    return [
        {"type": text_type, "text": p.text} if isinstance(p, Text)
        else {"type": INPUT_IMAGE, "image_url": image_url(p), "detail": p.detail or "auto"}
        for p in parts if isinstance(p, (Text, Image))
    ]


def _assistant_items(message: Message, custom: set[str]) -> list[dict]:
    """`custom`: the names of the request's custom tools."""
    items: list[dict] = []
    for part in message.parts:
        if isinstance(part, Text):
            if items and items[-1].get("role") == ROLE_ASSISTANT:
                items[-1]["content"] += part.text
            else:
                items.append({"type": ITEM_MESSAGE, "role": ROLE_ASSISTANT, "content": part.text})
        elif isinstance(part, ToolCall) and part.name in custom:
            items.append({"type": ITEM_CUSTOM_CALL, "call_id": part.id, "name": part.name,
                          "input": custom_input(part.arguments)})
        elif isinstance(part, ToolCall):
            items.append({"type": ITEM_FUNCTION_CALL, "call_id": part.id, "name": part.name,
                          "arguments": part.arguments or "{}"})
        elif isinstance(part, Reasoning) and part.origin == NAME and part.signature:
            item = {"type": ITEM_REASONING, "summary": [{"type": PART_SUMMARY_TEXT, "text": part.text}] if part.text
                    else [], "encrypted_content": part.signature}
            items.append({"id": part.id, **item} if part.id else item)
        # Lossy: other vendors' reasoning cannot be replayed to Responses and is dropped.
    return items


def _input(request: Request) -> list[dict]:
    items: list[dict] = []
    custom = {t.name for t in request.tools if t.custom_format is not None}
    custom_calls = {p.id for m in request.messages for p in m.parts if isinstance(p, ToolCall) and p.name in custom}
    for message in request.messages:
        if message.role == ROLE_ASSISTANT:
            items += _assistant_items(message, custom)
        elif message.role == ROLE_TOOL:
            for result in message.parts:
                if isinstance(result, ToolResult):
                    only_text = all(isinstance(p, Text) for p in result.content)
                    output = result.text() if only_text else _content(result.content, INPUT_TEXT)
                    if result.is_error and only_text:
                        output = f"Error: {output}"  # Lossy: Responses has no error flag on a call's output.
                    kind = ITEM_CUSTOM_CALL_OUTPUT if result.call_id in custom_calls else ITEM_FUNCTION_CALL_OUTPUT
                    items.append({"type": kind, "call_id": result.call_id, "output": output})
        elif message.role in INSTRUCTION_ROLES:
            items.append({"type": ITEM_MESSAGE, "role": message.role,
                          "content": "".join(p.text for p in message.parts if isinstance(p, Text))})
        else:
            items.append({"type": ITEM_MESSAGE, "role": ROLE_USER, "content": _content(message.parts, INPUT_TEXT)})
    return items


def _tool(t: Tool) -> dict:
    described = {"description": t.description} if t.description else {}
    if t.custom_format is not None:
        return {"type": TOOL_CUSTOM, "name": t.name, **described, "format": t.custom_format}
    # Responses makes a function tool strict unless told otherwise; other protocols' schemas are not written
    # for strict mode, so a tool that does not say is sent as not strict.
    return {"type": TOOL_FUNCTION, "name": t.name, **described,
            "parameters": t.parameters or {"type": "object", "properties": {}}, "strict": bool(t.strict)}


def tools(request: Request) -> list[dict]:
    return [_tool(t) for t in request.tools]


def tool_choice(request: Request) -> str | dict:
    choice = request.tool_choice
    if choice is None:
        return CHOICE_AUTO
    if choice.mode != CHOICE_TOOL:
        return choice.mode
    custom = any(t.name == choice.name and t.custom_format is not None for t in request.tools)
    return {"type": TOOL_CUSTOM if custom else TOOL_FUNCTION, "name": choice.name}


def request_from_ir(request: Request, caps: Capabilities | None = None) -> dict:
    """OpenAI models differ only in what `capabilities.fit` has already adjusted: `caps` shapes nothing here."""
    body: dict = {"model": request.model, "input": _input(request)}
    if system := with_json_instruction(request, request.system, always=False):
        body["instructions"] = system
    if request.tools:
        body["tools"] = tools(request)
        if request.tool_choice is not None:
            body["tool_choice"] = tool_choice(request)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    cap = output_cap(request.max_tokens, LEAST_OUTPUT_TOKENS)
    for key, value in (("max_output_tokens", cap), ("temperature", request.temperature),
                       ("top_p", request.top_p), ("safety_identifier", request.user)):
        if value is not None:
            body[key] = value
    # Lossy: stop sequences, top_k and seed have no Responses field and are dropped.
    if request.reasoning is not None and (effort := effort_for(request.reasoning)):
        body["reasoning"] = {"effort": effort, **({"summary": "auto"} if request.reasoning.include_thoughts else {})}
    fmt = request.response_format
    if fmt is not None:
        body["text"] = {"format": {"type": FORMAT_JSON_OBJECT} if fmt.schema is None else {
            "type": FORMAT_JSON_SCHEMA, "name": fmt.name or "response", "schema": fmt.schema,
            **({"strict": fmt.strict} if fmt.strict is not None else {})}}
    if request.stream:
        body["stream"] = True
    return body
