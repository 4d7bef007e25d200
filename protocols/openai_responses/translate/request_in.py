"""A client's OpenAI Responses request read into the unified form (`request_to_ir`)."""

from __future__ import annotations

from typing import Any

from protocols.openai_responses.translate.vocabulary import (
    FORMAT_JSON_OBJECT,
    FORMAT_JSON_SCHEMA,
    INPUT_IMAGE,
    INPUT_TEXT,
    ITEM_CUSTOM_CALL,
    ITEM_CUSTOM_CALL_OUTPUT,
    ITEM_FUNCTION_CALL_OUTPUT,
    NAME,
    SUMMARY_SEPARATOR,
    TOOL_CUSTOM,
    TOOL_FUNCTION,
)
from protocols.openai_responses.vocabulary import (
    ITEM_FUNCTION_CALL,
    ITEM_MESSAGE,
    ITEM_REASONING,
    PART_OUTPUT_TEXT,
    PART_REFUSAL,
)
from protocols.translate.common import image_from_url, string
from protocols.translate.tools import FORMAT_TEXT, custom_arguments, flat_name, in_namespace
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

TEXT_PARTS = frozenset({INPUT_TEXT, PART_OUTPUT_TEXT})
CALL_OUTPUTS = frozenset({ITEM_FUNCTION_CALL_OUTPUT, ITEM_CUSTOM_CALL_OUTPUT})
ITEM_ADDITIONAL_TOOLS = "additional_tools"  # Codex: tools offered from this point of the input on
ITEM_CONFIGURATION_UPDATE = "configuration_update"  # reasoning effort, text format: in force until the next one
TOOL_NAMESPACE = "namespace"
CHOICE_MODES = frozenset({CHOICE_AUTO, CHOICE_NONE, CHOICE_REQUIRED})


def content_to_ir(content: Any) -> list:
    if isinstance(content, str):
        return [Text(content)]
    parts: list = []
    for part in content or ():
        kind = part.get("type")
        if kind in TEXT_PARTS:
            parts.append(Text(part.get("text") or ""))
        elif kind == PART_REFUSAL:
            parts.append(Text(part.get("refusal") or ""))
        elif kind == INPUT_IMAGE and part.get("image_url"):
            parts.append(image_from_url(part["image_url"], part.get("detail")))
        # Lossy: input_file, and images by file_id, are dropped.
    return parts


def reasoning_to_ir(item: dict) -> Reasoning:
    texts = [s.get("text") or "" for s in item.get("summary") or ()]
    if not texts:
        texts = [c.get("text") or "" for c in item.get("content") or ()]
    return Reasoning(SUMMARY_SEPARATOR.join(texts), item.get("encrypted_content"), NAME, id=item.get("id"))


def _item_to_ir(item: dict) -> tuple[str, list] | None:
    """(role, parts) of one input item; None for items with no unified form."""
    kind = item.get("type") or ITEM_MESSAGE
    if kind == ITEM_MESSAGE:
        role = item.get("role") or ROLE_USER
        role = role if role in (*INSTRUCTION_ROLES, ROLE_ASSISTANT) else ROLE_USER
        return role, content_to_ir(item.get("content"))
    if kind == ITEM_FUNCTION_CALL:
        return ROLE_ASSISTANT, [ToolCall(item.get("call_id") or "", _call_name(item), item.get("arguments") or "")]
    if kind == ITEM_CUSTOM_CALL:
        return ROLE_ASSISTANT, [ToolCall(item.get("call_id") or "", _call_name(item),
                                         custom_arguments(string(item.get("input"))))]
    if kind in CALL_OUTPUTS:
        output = item.get("output")
        return ROLE_TOOL, [ToolResult(item.get("call_id") or "", content_to_ir(output) if output is not None else [])]
    if kind == ITEM_REASONING:
        return ROLE_ASSISTANT, [reasoning_to_ir(item)]
    return None  # Lossy: item references and built-in tool items are dropped (item 5 replays references).


def _call_name(item: dict) -> str:
    """A call's name as the model saw it: a namespaced call's flattened name."""
    name, namespace = item.get("name") or "", item.get("namespace")
    return flat_name(namespace, name) if namespace else name


def _input_to_ir(items: Any) -> list[Message]:
    """Input items as messages: consecutive assistant-side items (text, calls, reasoning) form one assistant turn,
    consecutive call outputs one tool turn."""
    if isinstance(items, str):
        return [Message(ROLE_USER, [Text(items)])]
    out: list[Message] = []
    for item in items or ():
        converted = _item_to_ir(item)
        if converted is None:
            continue
        role, parts = converted
        if out and out[-1].role == role and role in (ROLE_ASSISTANT, ROLE_TOOL):
            out[-1].parts += parts
        else:
            out.append(Message(role, parts))
    return out


def _tools_to_ir(tools: Any, namespace: dict | None = None) -> list[Tool]:
    """Function and custom tools, those of a namespace flattened. Lossy: built-in tools (web search, file
    search, shell, ...) are dropped."""
    out: list[Tool] = []
    for t in tools or ():
        kind = t.get("type")
        if kind == TOOL_NAMESPACE and namespace is None:
            out += _tools_to_ir(t.get("tools"), t)
            continue
        if kind == TOOL_FUNCTION:
            tool = Tool(t.get("name") or "", t.get("description"), t.get("parameters"), t.get("strict"))
        elif kind == TOOL_CUSTOM:
            tool = Tool(t.get("name") or "", t.get("description"), custom_format=t.get("format") or FORMAT_TEXT)
        else:
            continue
        out.append(in_namespace(tool, namespace.get("name") or "", namespace.get("description"))
                   if namespace is not None else tool)
    return out


def _request_tools(body: dict) -> list[Tool]:
    """The top-level tools and those of every `additional_tools` input item. Lossy: an item's position is lost:
    its tools are offered from the start."""
    items = body.get("input")
    added = [t for item in items if item.get("type") == ITEM_ADDITIONAL_TOOLS
             for t in item.get("tools") or ()] if isinstance(items, list) else []
    return _tools_to_ir([*(body.get("tools") or ()), *added])


def _tool_choice_to_ir(choice: object) -> ToolChoice | None:
    if isinstance(choice, str) and choice in CHOICE_MODES:
        return ToolChoice(choice)
    if isinstance(choice, dict) and choice.get("type") in (TOOL_FUNCTION, TOOL_CUSTOM):
        return ToolChoice(CHOICE_TOOL, choice.get("name"))
    return ToolChoice(CHOICE_AUTO) if choice else None  # Lossy: allowed_tools and built-in choices become auto.


def _format_to_ir(text: Any) -> ResponseFormat | None:
    fmt = (text or {}).get("format") or {}
    if fmt.get("type") == FORMAT_JSON_OBJECT:
        return ResponseFormat()
    if fmt.get("type") == FORMAT_JSON_SCHEMA:
        return ResponseFormat(fmt.get("schema") or {}, fmt.get("name"), fmt.get("strict"))
    return None


def _configured(body: dict) -> tuple[dict, Any]:
    """`reasoning` and `text` as the input's `configuration_update` items leave them for the answer asked for: each
    item's effort and format stay in force until a later item replaces them. Lossy: where an update stood is lost."""
    reasoning, text = body.get("reasoning") or {}, body.get("text")
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        if item.get("type") != ITEM_CONFIGURATION_UPDATE:
            continue
        if (item.get("reasoning") or {}).get("effort") is not None:
            reasoning = {**reasoning, "effort": item["reasoning"]["effort"]}
        if (item.get("text") or {}).get("format") is not None:
            text = {**(text or {}), "format": item["text"]["format"]}
    return reasoning, text


def request_to_ir(body: dict, model: str = "") -> Request:
    """Lossy: previous_response_id (replayed by the continuity layer), store, include, truncation, background,
    metadata, prompt_cache_key and text.verbosity have no unified form."""
    reasoning, text = _configured(body)
    effort = reasoning.get("effort")
    request = Request(
        model=body.get("model") or model,
        system=body.get("instructions") or None,
        messages=_input_to_ir(body.get("input")),
        tools=_request_tools(body),
        tool_choice=_tool_choice_to_ir(body.get("tool_choice")),
        parallel_tool_calls=body.get("parallel_tool_calls"),
        max_tokens=body.get("max_output_tokens"),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        reasoning=ReasoningConfig(effort, enabled=effort != "none",
                                  include_thoughts=bool(reasoning.get("summary"))) if reasoning else None,
        response_format=_format_to_ir(text),
        user=body.get("safety_identifier") or body.get("user"),
        stream=body.get("stream") is True,
    )
    name_tool_results(request.messages)
    return request
