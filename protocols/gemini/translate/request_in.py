"""A client's Gemini generateContent request read into the unified form (`request_to_ir`)."""

from __future__ import annotations

from typing import Any

from protocols.gemini.stream import ROLE_MODEL
from protocols.gemini.translate.vocabulary import ERROR_KEY, JSON_MIME, NAME, OUTPUT_KEY, get_field
from protocols.translate.common import dump_arguments
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_USER,
    Image,
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
    stable_tool_id,
)

MODE_FROM = {"AUTO": CHOICE_AUTO, "VALIDATED": CHOICE_AUTO, "ANY": CHOICE_REQUIRED, "NONE": CHOICE_NONE}


def _schema_to_json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema (types may be upper case: "OBJECT") as JSON Schema."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _schema_to_json_schema(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_schema_to_json_schema(v) for v in schema]
    return schema


def _result_content(response: object) -> tuple[list, bool]:
    """A functionResponse's `response` object as text, and whether it reports an error."""
    if isinstance(response, dict) and set(response) == {OUTPUT_KEY} and isinstance(response[OUTPUT_KEY], str):
        return [Text(response[OUTPUT_KEY])], False
    if isinstance(response, dict) and set(response) == {ERROR_KEY}:
        error = response[ERROR_KEY]
        return [Text(error if isinstance(error, str) else dump_arguments(error))], True
    return [Text(dump_arguments(response))], False


def _user_parts(parts: Any, pending: list[ToolCall]) -> tuple[list[ToolResult], list]:
    """A user content's function responses (matched to the calls they answer) and its other parts."""
    results: list[ToolResult] = []
    other: list = []
    for part in parts or ():
        response = get_field(part, "functionResponse")
        inline = get_field(part, "inlineData")
        file = get_field(part, "fileData")
        if response is not None:
            name = response.get("name") or ""
            # Without an id, a response answers the first open call of its name (Gemini keeps them in order).
            call = next((c for c in pending if (c.id == response.get("id")) or
                         (not response.get("id") and c.name == name)), None)
            if call is not None:
                pending.remove(call)
            content, is_error = _result_content(response.get("response"))
            call_id = response.get("id") or (call.id if call else stable_tool_id(name, None, len(results)))
            results.append(ToolResult(call_id, content, name, is_error))
        elif "text" in part:
            other.append(Text(part.get("text") or ""))
        elif inline is not None:
            other.append(Image(data=inline.get("data"), media_type=get_field(inline, "mimeType")))
        elif file is not None:
            other.append(Image(url=get_field(file, "fileUri"), media_type=get_field(file, "mimeType")))
    return results, other


def model_parts(parts: Any) -> list:
    out: list = []
    for part in parts or ():
        call = get_field(part, "functionCall")
        signature = get_field(part, "thoughtSignature")
        if call is not None:
            args = call.get("args") or {}
            ordinal = sum(isinstance(p, ToolCall) for p in out)
            call_id = call.get("id") or stable_tool_id(call.get("name") or "", args, ordinal)
            out.append(ToolCall(call_id, call.get("name") or "", dump_arguments(args), signature,
                                NAME if signature else None))
        elif part.get("thought"):
            out.append(Reasoning(part.get("text") or "", signature, NAME))
        elif "text" in part:
            out.append(Text(part.get("text") or ""))  # Lossy: a signature on a text part is dropped.
    return out


def _contents_to_ir(contents: Any) -> list[Message]:
    out: list[Message] = []
    pending: list[ToolCall] = []
    for content in contents or ():
        if content.get("role") == ROLE_MODEL:
            parts = model_parts(content.get("parts"))
            pending = [p for p in parts if isinstance(p, ToolCall)]
            out.append(Message(ROLE_ASSISTANT, parts))
            continue
        results, other = _user_parts(content.get("parts"), pending)
        if results:
            out.append(Message(ROLE_TOOL, list(results)))
        if other:
            out.append(Message(ROLE_USER, other))
    return out


def _tools_to_ir(tools: Any) -> list[Tool]:
    out: list[Tool] = []
    for tool in tools or ():
        for declaration in get_field(tool, "functionDeclarations") or ():
            schema = get_field(declaration, "parametersJsonSchema")
            if schema is None and declaration.get("parameters") is not None:
                schema = _schema_to_json_schema(declaration["parameters"])
            out.append(Tool(declaration.get("name") or "", declaration.get("description"), schema))
    return out  # Lossy: Google Search, code execution and other built-in tools are dropped.


def _choice_to_ir(config: Any) -> ToolChoice | None:
    calling = get_field(config or {}, "functionCallingConfig") or {}
    mode = calling.get("mode")
    if not mode:
        return None
    names = get_field(calling, "allowedFunctionNames") or []
    if mode == "ANY" and len(names) == 1:
        return ToolChoice(CHOICE_TOOL, names[0])
    return ToolChoice(MODE_FROM.get(mode, CHOICE_AUTO))  # Lossy: several allowed names become "required".


def _reasoning_to_ir(config: Any) -> ReasoningConfig | None:
    thinking = get_field(config, "thinkingConfig") or {}
    if not thinking:
        return None
    budget = get_field(thinking, "thinkingBudget")
    level = get_field(thinking, "thinkingLevel")
    return ReasoningConfig(
        effort=level.lower() if isinstance(level, str) else None,
        budget=budget if isinstance(budget, int) and budget > 0 else None,  # -1: the model decides
        enabled=budget != 0,
        include_thoughts=get_field(thinking, "includeThoughts"),
    )


def _format_to_ir(config: Any) -> ResponseFormat | None:
    if get_field(config, "responseMimeType") != JSON_MIME:
        return None
    schema = get_field(config, "responseJsonSchema")
    if schema is None and get_field(config, "responseSchema") is not None:
        schema = _schema_to_json_schema(get_field(config, "responseSchema"))
    return ResponseFormat(schema)


def request_to_ir(body: dict, model: str = "") -> Request:
    config = get_field(body, "generationConfig") or {}
    system = get_field(body, "systemInstruction")
    if isinstance(system, dict):
        system = "".join(p.get("text") or "" for p in system.get("parts") or ())
    return Request(
        model=model or body.get("model") or "",
        system=system or None,
        messages=_contents_to_ir(body.get("contents")),
        tools=_tools_to_ir(body.get("tools")),
        tool_choice=_choice_to_ir(get_field(body, "toolConfig")),
        max_tokens=get_field(config, "maxOutputTokens"),
        temperature=config.get("temperature"),
        top_p=get_field(config, "topP"),
        top_k=get_field(config, "topK"),
        stop=list(get_field(config, "stopSequences") or ()),
        seed=config.get("seed"),
        reasoning=_reasoning_to_ir(config),
        response_format=_format_to_ir(config),
    )  # Lossy: safetySettings, cachedContent, candidateCount and continuationToken are dropped.
