"""A client's Bedrock Converse request read into the unified form (`request_to_ir`).

The model and streaming are in the path (`/model/{modelId}/converse-stream`), not the body: the caller gives them."""

from __future__ import annotations

import json
from typing import Any

from protocols.bedrock_converse.events import (
    IMAGE,
    REASONING,
    REASONING_TEXT,
    REDACTED,
    SIGNATURE,
    TEXT,
    TOOL_RESULT,
    TOOL_USE,
)
from protocols.bedrock_converse.translate.vocabulary import FORMAT_JSON_SCHEMA, NAME, STATUS_ERROR, media_type
from protocols.translate.common import dump_arguments
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_USER,
    Image,
    Message,
    Part,
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


def image_to_ir(image: dict) -> Image:
    """Inline bytes (base64 in the JSON body), or an S3 object by its URI."""
    source = image.get("source") or {}
    s3 = source.get("s3Location")
    if isinstance(s3, dict):
        return Image(url=s3.get("uri"), media_type=media_type(image.get("format")))
    return Image(data=source.get("bytes"), media_type=media_type(image.get("format")))


def _result_to_ir(result: dict) -> ToolResult:
    parts: list[Text | Image] = []
    for block in result.get("content") or ():
        if TEXT in block:
            parts.append(Text(block.get(TEXT) or ""))
        elif "json" in block:
            parts.append(Text(dump_arguments(block["json"])))
        elif IMAGE in block:
            parts.append(image_to_ir(block[IMAGE]))
        # Lossy: documents, videos and search results in a result are dropped.
    return ToolResult(result.get("toolUseId") or "", parts, is_error=result.get("status") == STATUS_ERROR)


def reasoning_to_ir(reasoning: dict) -> Reasoning | None:
    text = reasoning.get(REASONING_TEXT)
    if isinstance(text, dict):
        return Reasoning(text.get(TEXT) or "", text.get(SIGNATURE) or None, NAME)
    if reasoning.get(REDACTED):
        return Reasoning("", reasoning[REDACTED], NAME, redacted=True)
    return None


def block_to_ir(block: dict) -> Part | None:
    if TEXT in block:
        return Text(block.get(TEXT) or "")
    if IMAGE in block:
        return image_to_ir(block[IMAGE])
    if TOOL_USE in block:
        call = block[TOOL_USE]
        return ToolCall(call.get("toolUseId") or "", call.get("name") or "", dump_arguments(call.get("input")))
    if TOOL_RESULT in block:
        return _result_to_ir(block[TOOL_RESULT])
    if REASONING in block:
        return reasoning_to_ir(block[REASONING])
    return None  # Lossy: documents, video, audio, cache points, guardrail content and citations are dropped.


def _messages_to_ir(messages: Any) -> list[Message]:
    out: list[Message] = []
    for message in messages or ():
        role = ROLE_ASSISTANT if message.get("role") == ROLE_ASSISTANT else ROLE_USER
        parts = [p for p in map(block_to_ir, message.get("content") or ()) if p is not None]
        results: list[Part] = [p for p in parts if isinstance(p, ToolResult)]
        if results:
            out.append(Message(ROLE_TOOL, results))
            parts = [p for p in parts if not isinstance(p, ToolResult)]
            if not parts:
                continue
        out.append(Message(role, parts))
    return out


def _system_text(system: Any) -> str | None:
    # Lossy: cache points and guardrail content in the system prompt are dropped.
    return "\n\n".join(b.get(TEXT) or "" for b in system or () if TEXT in b) or None


def _tools_to_ir(config: dict) -> tuple[list[Tool], ToolChoice | None]:
    tools = []
    for tool in config.get("tools") or ():
        spec = tool.get("toolSpec")
        if isinstance(spec, dict):  # Lossy: system tools and cache points are dropped.
            schema = (spec.get("inputSchema") or {}).get("json")
            tools.append(Tool(spec.get("name") or "", spec.get("description"), schema, spec.get("strict")))
    choice = config.get("toolChoice") or {}
    if "tool" in choice:
        return tools, ToolChoice(CHOICE_TOOL, (choice["tool"] or {}).get("name"))
    if "any" in choice:
        return tools, ToolChoice(CHOICE_REQUIRED)
    return tools, ToolChoice(CHOICE_AUTO) if "auto" in choice else None


def _reasoning_to_ir(fields: dict, output: dict) -> ReasoningConfig | None:
    """An Anthropic model's `thinking` passed through `additionalModelRequestFields`, with `outputConfig.effort`."""
    effort = output.get("effort") if isinstance(output.get("effort"), str) else None
    thinking = fields.get("thinking")
    thinking = thinking if isinstance(thinking, dict) else {}
    kind = thinking.get("type")
    if kind == "disabled":
        return ReasoningConfig(enabled=False)
    if kind == "enabled":
        return ReasoningConfig(effort, thinking.get("budget_tokens"), include_thoughts=True)
    if kind == "adaptive":
        return ReasoningConfig(effort, include_thoughts=True)
    return ReasoningConfig(effort) if effort else None  # Lossy: other models' reasoning fields are dropped.


def _format_to_ir(output: dict) -> ResponseFormat | None:
    fmt = output.get("textFormat") or {}
    if fmt.get("type") != FORMAT_JSON_SCHEMA:
        return None
    schema = ((fmt.get("structure") or {}).get("jsonSchema") or {})
    try:
        parsed = json.loads(schema.get("schema") or "{}")
    except ValueError:
        parsed = {}
    return ResponseFormat(parsed if isinstance(parsed, dict) else {}, schema.get("name"))


def request_to_ir(body: dict, model: str = "") -> Request:
    """Lossy: guardrails, prompt variables, request metadata, performance and service tiers are dropped."""
    config = body.get("inferenceConfig") or {}
    fields = body.get("additionalModelRequestFields") or {}
    output = body.get("outputConfig") or {}
    tools, choice = _tools_to_ir(body.get("toolConfig") or {})
    top_k = fields.get("top_k")
    request = Request(
        model=model or body.get("modelId") or "",
        system=_system_text(body.get("system")),
        messages=_messages_to_ir(body.get("messages")),
        tools=tools,
        tool_choice=choice,
        max_tokens=config.get("maxTokens"),
        temperature=config.get("temperature"),
        top_p=config.get("topP"),
        top_k=top_k if isinstance(top_k, int) else None,
        stop=list(config.get("stopSequences") or ()),
        reasoning=_reasoning_to_ir(fields, output),
        response_format=_format_to_ir(output),
    )
    name_tool_results(request.messages)
    return request
