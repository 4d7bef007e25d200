"""A client's Anthropic Messages request read into the unified form (`request_to_ir`)."""

from __future__ import annotations

from typing import Any

from protocols.anthropic_messages.translate.vocabulary import (
    BILLING_LINE,
    BLOCK_IMAGE,
    BLOCK_REDACTED,
    BLOCK_TEXT,
    BLOCK_THINKING,
    BLOCK_TOOL_RESULT,
    BLOCK_TOOL_USE,
    FORMAT_JSON_SCHEMA,
    NAME,
)
from protocols.translate.common import dump_arguments
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    ROLE_ASSISTANT,
    ROLE_SYSTEM,
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

CLIENT_TOOL_TYPES = frozenset({None, "custom"})  # others are Anthropic's server tools
CHOICE_FROM: dict[object, str] = {"auto": CHOICE_AUTO, "any": CHOICE_REQUIRED, "none": CHOICE_NONE, "tool": CHOICE_TOOL}


def _image_to_ir(block: dict) -> Image:
    source = block.get("source") or {}
    if source.get("type") == "url":
        return Image(url=source.get("url"))
    return Image(data=source.get("data"), media_type=source.get("media_type"))


def _result_to_ir(block: dict) -> ToolResult:
    content = block.get("content")
    parts: list[Text | Image] = [Text(content)] if isinstance(content, str) else [
        Text(b.get("text") or "") if b.get("type") == BLOCK_TEXT else _image_to_ir(b)
        for b in content or () if b.get("type") in (BLOCK_TEXT, BLOCK_IMAGE)
    ]
    return ToolResult(block.get("tool_use_id") or "", parts, is_error=block.get("is_error") is True)


def block_to_ir(block: dict) -> Part | None:
    kind = block.get("type")
    if kind == BLOCK_TEXT:
        return Text(block.get("text") or "")
    if kind == BLOCK_IMAGE:
        return _image_to_ir(block)
    if kind == BLOCK_THINKING:
        return Reasoning(block.get("thinking") or "", block.get("signature") or None, NAME)
    if kind == BLOCK_REDACTED:
        return Reasoning("", block.get("data"), NAME, redacted=True)
    if kind == BLOCK_TOOL_USE:
        return ToolCall(block.get("id") or "", block.get("name") or "", dump_arguments(block.get("input")))
    if kind == BLOCK_TOOL_RESULT:
        return _result_to_ir(block)
    return None  # Lossy: documents, server-tool blocks and search results are dropped.


def _messages_to_ir(messages: Any) -> list[Message]:
    out: list[Message] = []
    for message in messages or ():
        content = message.get("content")
        if message.get("role") == ROLE_SYSTEM:  # instructions in their place (API version 2026-10-21)
            out.append(Message(ROLE_SYSTEM, [Text(_system_text(content) or "")]))
            continue
        role = ROLE_ASSISTANT if message.get("role") == ROLE_ASSISTANT else ROLE_USER
        parts: list[Part] = [Text(content)] if isinstance(content, str) else [
            p for p in map(block_to_ir, content or ()) if p is not None
        ]
        results: list[Part] = [p for p in parts if isinstance(p, ToolResult)]
        if results:
            out.append(Message(ROLE_TOOL, results))
            parts = [p for p in parts if not isinstance(p, ToolResult)]
            if not parts:
                continue
        out.append(Message(role, parts))
    return out


def _system_text(system: Any) -> str | None:
    """Without Claude Code's billing line (BILLING_LINE). Lossy: cache_control on system blocks is dropped."""
    if isinstance(system, str):
        if system.startswith(BILLING_LINE):
            system = system.partition("\n")[2].lstrip("\n")
        return system or None
    return "\n\n".join(b.get("text") or "" for b in system or ()
                       if b.get("type") == BLOCK_TEXT and not (b.get("text") or "").startswith(BILLING_LINE)) or None


def _thinking_to_ir(thinking: Any, effort: Any) -> ReasoningConfig | None:
    """`thinking` with `output_config.effort`. Lossy: `display` is dropped."""
    effort = effort if isinstance(effort, str) else None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return ReasoningConfig(enabled=False)
    if kind == "enabled":
        return ReasoningConfig(effort, thinking.get("budget_tokens"), include_thoughts=True)
    if kind in ("adaptive", "between_tools"):
        return ReasoningConfig(effort, include_thoughts=True)
    return ReasoningConfig(effort) if effort else None


def _format_to_ir(fmt: object) -> ResponseFormat | None:
    if isinstance(fmt, dict) and fmt.get("type") == FORMAT_JSON_SCHEMA:
        return ResponseFormat(fmt.get("schema") or {})
    return None


def request_to_ir(body: dict, model: str = "") -> Request:
    """Lossy: cache_control, service_tier, container, mcp_servers and metadata other than user_id are dropped."""
    choice = body.get("tool_choice") or {}
    metadata = body.get("metadata") or {}
    output = body.get("output_config") or {}
    request = Request(
        model=body.get("model") or model,
        system=_system_text(body.get("system")),
        messages=_messages_to_ir(body.get("messages")),
        tools=[  # Lossy: server tools (web search, code execution, ...) and cache_control are dropped.
            Tool(t.get("name") or "", t.get("description"), t.get("input_schema"))
            for t in body.get("tools") or () if t.get("type") in CLIENT_TOOL_TYPES
        ],
        tool_choice=(ToolChoice(CHOICE_FROM.get(choice.get("type"), CHOICE_AUTO), choice.get("name"))
                     if choice else None),
        parallel_tool_calls=False if choice.get("disable_parallel_tool_use") else None,
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        top_k=body.get("top_k"),
        stop=list(body.get("stop_sequences") or ()),
        reasoning=_thinking_to_ir(body.get("thinking"), output.get("effort")),
        response_format=_format_to_ir(output.get("format")),
        user=metadata.get("user_id"),
        stream=body.get("stream") is True,
    )
    name_tool_results(request.messages)
    return request
