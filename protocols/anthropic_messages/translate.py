"""Anthropic Messages <-> the unified representation."""

from __future__ import annotations

import re
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, cast

from protocols.anthropic_messages.stream import (
    CONTENT_BLOCK_DELTA,
    CONTENT_BLOCK_START,
    CONTENT_BLOCK_STOP,
    ERROR,
    INPUT_JSON_DELTA,
    MESSAGE_DELTA,
    MESSAGE_START,
    MESSAGE_STOP,
    MESSAGE_TYPE,
    SIGNATURE_DELTA,
    SYNTHETIC_ID,
    TEXT_DELTA,
    THINKING_DELTA,
)
from protocols.base import Event, count, member
from protocols.capabilities import EFFORT_NONE, THINKING_ADAPTIVE, THINKING_NONE, Capabilities, effort_for, lookup
from protocols.errors import anthropic_error
from protocols.sse import dumps
from protocols.translate.base import Decoder, Encoder, Translator, fixed_endpoint
from protocols.translate.common import (
    budget_for,
    dump_arguments,
    error_from_object,
    load_object,
    parse_arguments,
    string,
)
from protocols.translate.tools import as_function
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    FINISH_CONTENT_FILTER,
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_TOOL_CALLS,
    INSTRUCTION_ROLES,
    KIND_CONTEXT_LENGTH,
    ROLE_ASSISTANT,
    ROLE_SYSTEM,
    ROLE_TOOL,
    ROLE_USER,
    Answer,
    Error,
    Finish,
    Image,
    Message,
    Part,
    Reasoning,
    ReasoningConfig,
    ReasoningDelta,
    ReasoningEnd,
    Request,
    ResponseFormat,
    Start,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolArgumentsDelta,
    ToolCall,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolIds,
    ToolResult,
    Usage,
    UsageUpdate,
    client_finish,
    name_tool_results,
)

NAME = "anthropic_messages"
FAMILY = "anthropic"
FORMAT_JSON_SCHEMA = "json_schema"
PATH = "/v1/messages"
# Anthropic requires max_tokens; a client of another protocol may not say it.
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
TOOL_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
CONTEXT_LENGTH_PREFIX = "prompt is too long: "  # what Claude Code recognises

BLOCK_TEXT = "text"
BLOCK_IMAGE = "image"
BLOCK_THINKING = "thinking"
BLOCK_REDACTED = "redacted_thinking"
BLOCK_TOOL_USE = "tool_use"
BLOCK_TOOL_RESULT = "tool_result"
CLIENT_TOOL_TYPES = frozenset({None, "custom"})  # others are Anthropic's server tools

STOP_FROM: dict[object, str] = {  # looked up by the stop_reason as sent
    "end_turn": FINISH_STOP,
    "stop_sequence": FINISH_STOP,
    "pause_turn": FINISH_STOP,
    "tool_use": FINISH_TOOL_CALLS,
    "max_tokens": FINISH_LENGTH,
    "model_context_window_exceeded": FINISH_LENGTH,
    "refusal": FINISH_CONTENT_FILTER,
}
STOP_TO = {FINISH_STOP: "end_turn", FINISH_TOOL_CALLS: "tool_use", FINISH_LENGTH: "max_tokens",
           FINISH_CONTENT_FILTER: "refusal"}
CHOICE_FROM: dict[object, str] = {"auto": CHOICE_AUTO, "any": CHOICE_REQUIRED, "none": CHOICE_NONE, "tool": CHOICE_TOOL}
CHOICE_TO = {CHOICE_AUTO: "auto", CHOICE_REQUIRED: "any", CHOICE_NONE: "none", CHOICE_TOOL: "tool"}

# The hot path of a translated stream: a delta of the open block, as a byte template filled with the block's index,
# the delta type and key (the text, JSON-quoted, follows).
DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":'
DELTA_TAIL = b"}}\n\n"


# --- requests


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


def _block_to_ir(block: dict) -> Part | None:
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
            p for p in map(_block_to_ir, content or ()) if p is not None
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
    if isinstance(system, str):
        return system or None
    # Lossy: cache_control on system blocks is dropped.
    return "\n\n".join(b.get("text") or "" for b in system or () if b.get("type") == BLOCK_TEXT) or None


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


def tool_id(id_: str) -> str:
    """A tool call id Anthropic accepts (letters, digits, `_` and `-`); a call and its result map alike."""
    return TOOL_ID_CHARS.sub("_", id_) or "toolu_"


def _image(image: Image) -> dict:
    """Lossy: an OpenAI image `detail` has no Anthropic form."""
    if image.url:
        return {"type": BLOCK_IMAGE, "source": {"type": "url", "url": image.url}}
    return {"type": BLOCK_IMAGE, "source": {"type": "base64", "media_type": image.media_type or "image/jpeg",
                                             "data": image.data or ""}}


def _result(result: ToolResult) -> dict:
    content = [{"type": BLOCK_TEXT, "text": p.text} if isinstance(p, Text) else _image(p)
               for p in result.content if not isinstance(p, Text) or p.text]
    block: dict = {"type": BLOCK_TOOL_RESULT, "tool_use_id": tool_id(result.call_id), "content": content}
    if result.is_error:
        block["is_error"] = True
    return block


def _block(part: Part) -> dict | None:
    if isinstance(part, Text):
        return {"type": BLOCK_TEXT, "text": part.text} if part.text else None  # Anthropic rejects empty text
    if isinstance(part, Image):
        return _image(part)
    if isinstance(part, ToolCall):
        return {"type": BLOCK_TOOL_USE, "id": tool_id(part.id), "name": part.name,
                "input": parse_arguments(part.arguments)}
    if isinstance(part, ToolResult):
        return _result(part)
    if isinstance(part, Reasoning) and part.origin == NAME and part.signature:
        if part.redacted:
            return {"type": BLOCK_REDACTED, "data": part.signature}
        return {"type": BLOCK_THINKING, "thinking": part.text, "signature": part.signature}
    # Lossy: thinking without an Anthropic signature (another vendor's, or none) is dropped, never forged.
    return None


def _placed_system(request: Request, i: int, out: list[dict], caps: Capabilities) -> bool:
    """Whether the instruction `request.messages[i]` may stay in place: after a user turn, and last or followed
    by an assistant turn (Anthropic's placement rule), on a model that takes it (the capability table's
    `mid_system`)."""
    following = next((m.role for m in request.messages[i + 1:] if m.role not in INSTRUCTION_ROLES), None)
    return (bool(out) and out[-1]["role"] == ROLE_USER and following in (None, ROLE_ASSISTANT)
            and caps.mid_system)


def _messages(request: Request, caps: Capabilities) -> tuple[list[dict], list[str]]:
    """User/assistant turns with consecutive same-role turns merged; tool results first in their user turn. And
    the instructions that could not stay in place, for the top-level `system`."""
    out: list[dict] = []
    hoisted: list[str] = []
    for i, message in enumerate(request.messages):
        if message.role in INSTRUCTION_ROLES:
            text = "".join(p.text for p in message.parts if isinstance(p, Text))
            if text and _placed_system(request, i, out, caps):
                out.append({"role": ROLE_SYSTEM, "content": text})
            elif text:
                hoisted.append(text)
            continue
        role = ROLE_ASSISTANT if message.role == ROLE_ASSISTANT else ROLE_USER
        blocks = [b for b in map(_block, message.parts) if b is not None]
        if not blocks:
            continue  # Anthropic rejects an empty turn
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        if turn["role"] == ROLE_USER:
            turn["content"].sort(key=lambda b: b["type"] != BLOCK_TOOL_RESULT)
    return out, hoisted


def _tool_choice(request: Request) -> dict | None:
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is not False:
        return None
    out: dict = {"type": CHOICE_TO.get(choice.mode, "auto") if choice else "auto"}
    if choice is not None and choice.mode == CHOICE_TOOL:
        out["name"] = choice.name
    if request.parallel_tool_calls is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _thinking(body: dict, request: Request, caps: Capabilities) -> None:
    """`thinking` and `output_config.effort` the way the model wants them: adaptive with an effort, or a budget."""
    reasoning = request.reasoning
    if reasoning is None or caps.thinking == THINKING_NONE:
        return
    if not reasoning.enabled or reasoning.effort == EFFORT_NONE:
        body["thinking"] = {"type": "disabled"}
        return
    effort = effort_for(reasoning)
    if caps.thinking == THINKING_ADAPTIVE:
        body["thinking"] = {"type": "adaptive"}
        if effort:
            body["output_config"] = {"effort": effort}
        return
    budget = budget_for(reasoning)
    if budget is not None:
        # The budget must be at least 1024 and below max_tokens. Lossy: a budget that does not fit is lowered,
        # and thinking is left off when max_tokens leaves no room for it.
        budget = min(max(budget, MIN_THINKING_BUDGET), body["max_tokens"] - 1)
        if budget >= MIN_THINKING_BUDGET:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if effort in caps.efforts:
        body["output_config"] = {"effort": effort}


def request_from_ir(request: Request, caps: Capabilities | None = None) -> dict:
    """`caps`: what the target model accepts (the built-in table's entry for the request's model if not given)."""
    caps = caps or lookup(FAMILY, request.model)
    body: dict = {"model": request.model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
                  "messages": []}
    body["messages"], hoisted = _messages(request, caps)
    system = "\n\n".join(text for text in (request.system, *hoisted) if text)
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [  # Lossy: `strict` is dropped.
            {"name": t.name, **({"description": t.description} if t.description else {}),
             "input_schema": t.parameters or {"type": "object", "properties": {}}}
            for t in map(as_function, request.tools)
        ]
    if request.tools and (choice := _tool_choice(request)) is not None:
        body["tool_choice"] = choice
    _thinking(body, request, caps)
    thinking = body.get("thinking", {}).get("type") not in (None, "disabled")
    # Lossy: with thinking on, Anthropic refuses temperature, top_k and a low top_p, so they are dropped.
    for key, value in (("temperature", request.temperature), ("top_p", request.top_p), ("top_k", request.top_k)):
        if value is not None and not thinking:
            body[key] = value
    if request.stop:
        body["stop_sequences"] = request.stop
    if request.user:
        body["metadata"] = {"user_id": request.user}
    fmt = request.response_format
    if fmt is not None and fmt.schema is not None:  # Lossy: a schema's name and strict flag have no Messages field
        body.setdefault("output_config", {})["format"] = {"type": FORMAT_JSON_SCHEMA, "schema": fmt.schema}
    # Lossy: JSON without a schema (json_object) and seed have no Messages field and are dropped.
    if request.stream:
        body["stream"] = True
    return body


# --- answers


def usage_to_ir(usage: dict) -> Usage:
    """Anthropic's input_tokens excludes cache reads and writes; the unified input includes them.

    Lossy: the cache-write split by TTL and server-tool request counts are dropped."""
    read = count(usage, "cache_read_input_tokens")
    write = count(usage, "cache_creation_input_tokens")
    return Usage(
        input_tokens=count(usage, "input_tokens") + read + write,
        output_tokens=count(usage, "output_tokens"),
        reasoning_tokens=count(member(usage, "output_tokens_details"), "thinking_tokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def usage_from_ir(usage: Usage) -> dict:
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    out: dict = {
        "input_tokens": max(0, usage.input_tokens - cached),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    ids = ids or ToolIds()
    parts: list[Text | Reasoning | ToolCall] = []
    for block in body.get("content") or ():
        part = _block_to_ir(block)
        if isinstance(part, ToolCall):
            part.id = ids.issue(part.id or None, part.name, body.get("id"), sum(isinstance(p, ToolCall) for p in parts))
        if isinstance(part, (Text, Reasoning, ToolCall)):
            parts.append(part)
    return Answer(
        id=body.get("id") or "",
        model=body.get("model") or "",
        parts=parts,
        finish=STOP_FROM.get(body.get("stop_reason"), FINISH_STOP),
        stop_sequence=body.get("stop_sequence"),
        usage=usage_to_ir(body.get("usage") or {}),
    )


def _stop_reason(finish: str, stop_sequence: str | None) -> str:
    """Lossy: other protocols do not say which stop sequence matched, so their stops read as end_turn."""
    if finish == FINISH_STOP and stop_sequence:
        return "stop_sequence"
    return STOP_TO.get(finish, "end_turn")


def _answer_block(part: Text | Reasoning | ToolCall) -> dict | None:
    if isinstance(part, Reasoning):
        if part.origin == NAME and part.redacted:
            return {"type": BLOCK_REDACTED, "data": part.signature or ""}
        # Another vendor's reasoning is shown as thinking; its signature stays behind (an empty one cannot be
        # replayed to Anthropic, and Rotator drops such thinking when it is).
        signature = part.signature if part.origin == NAME else ""
        return {"type": BLOCK_THINKING, "thinking": part.text, "signature": signature or ""}
    if isinstance(part, ToolCall):
        return {"type": BLOCK_TOOL_USE, "id": part.id, "name": part.name, "input": parse_arguments(part.arguments)}
    if isinstance(part, Text):
        return {"type": BLOCK_TEXT, "text": part.text} if part.text else None
    return None


def answer_from_ir(answer: Answer, request: Request) -> dict:
    finish = client_finish(answer.finish, bool(answer.tool_calls()))
    return {
        "id": answer.id or SYNTHETIC_ID,
        "type": MESSAGE_TYPE,
        "role": ROLE_ASSISTANT,
        "model": answer.model or request.model,
        "content": [b for b in map(_answer_block, answer.parts) if b is not None],
        "stop_reason": _stop_reason(finish, answer.stop_sequence),
        "stop_sequence": answer.stop_sequence if finish == FINISH_STOP else None,
        "usage": usage_from_ir(answer.usage),
    }


def _error_object(message: str, status: int, kind: str | None) -> dict:
    if kind == KIND_CONTEXT_LENGTH and CONTEXT_LENGTH_PREFIX.strip(": ") not in message:
        message = CONTEXT_LENGTH_PREFIX + message
    return anthropic_error(status, message)


def error_from_ir(error: Error) -> tuple[int, bytes]:
    return error.status, dumps({"type": ERROR, "error": _error_object(error.message, error.status, error.kind)})


# --- streams


class MessagesDecoder(Decoder):
    """Anthropic events -> unified events. Blocks are sequential; usage is cumulative (replaced, never added)."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._id = ""
        self._blocks: dict[int, object] = {}  # Anthropic block index -> block type (as sent)
        self._calls: dict[int, int] = {}  # Anthropic block index -> unified tool call index
        self._signature: str | None = None
        self._usage: dict = {}
        self._stop: str | None = None
        self._stop_sequence: str | None = None
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        if event.data is None or self._done:
            return []
        payload = load_object(event.data)
        if payload is None:
            return []
        kind = payload.get("type") or event.event
        if kind == CONTENT_BLOCK_DELTA:
            return self._delta(payload.get("index", 0), payload.get("delta") or {})
        if kind == CONTENT_BLOCK_START:
            return self._block_start(payload.get("index", 0), payload.get("content_block") or {})
        if kind == CONTENT_BLOCK_STOP:
            return self._block_stop(payload.get("index", 0))
        if kind == MESSAGE_START:
            message = payload.get("message") or {}
            self._id = string(message.get("id"))
            self._usage = dict(message.get("usage") or {})
            return [Start(self._id, string(message.get("model"))), UsageUpdate(usage_to_ir(self._usage))]
        if kind == MESSAGE_DELTA:
            delta = payload.get("delta") or {}
            self._stop = string(delta.get("stop_reason")) or self._stop
            self._stop_sequence = string(delta.get("stop_sequence")) or self._stop_sequence
            self._usage.update((k, v) for k, v in (payload.get("usage") or {}).items() if v is not None)
            return [UsageUpdate(usage_to_ir(self._usage))]
        if kind == MESSAGE_STOP:
            self._done = True
            return [Finish(STOP_FROM.get(self._stop, FINISH_STOP), self._stop_sequence)]
        if kind == ERROR:
            self._done = True
            error = payload.get("error") or {}
            return [error_from_object(error) if isinstance(error, dict) else Error(500, str(error))]
        return []  # ping, and event types this layer does not know

    def close(self) -> list[StreamEvent]:
        """A stream that said its stop reason but ended before message_stop is complete all the same."""
        if self._stop is None or self._done:
            return []
        self._done = True
        return [Finish(STOP_FROM.get(self._stop, FINISH_STOP), self._stop_sequence)]

    def _delta(self, index: int, delta: dict) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == TEXT_DELTA:
            return [TextDelta(string(delta.get("text")))]
        if kind == INPUT_JSON_DELTA:
            call = self._calls.get(index)
            fragment = string(delta.get("partial_json"))
            return [ToolArgumentsDelta(call, fragment)] if call is not None and fragment else []
        if kind == THINKING_DELTA:
            return [ReasoningDelta(string(delta.get("thinking")))]
        if kind == SIGNATURE_DELTA:
            self._signature = delta.get("signature")
        return []  # Lossy: citations are dropped.

    def _block_start(self, index: int, block: dict) -> list[StreamEvent]:
        kind = block.get("type")
        self._blocks[index] = kind
        if kind == BLOCK_TEXT and string(block.get("text")):
            return [TextDelta(block["text"])]
        if kind == BLOCK_THINKING:
            self._signature = block.get("signature") or None
            return [ReasoningDelta(block["thinking"])] if string(block.get("thinking")) else []
        if kind == BLOCK_REDACTED:
            return [ReasoningEnd(block.get("data"), NAME, redacted=True)]
        if kind == BLOCK_TOOL_USE:
            call = self._calls[index] = len(self._calls)
            name = string(block.get("name"))
            call_id = self._ids.issue(string(block.get("id")), name, self._id, call)
            out: list[StreamEvent] = [ToolCallStart(call, call_id, name)]
            if block.get("input"):  # a whole input up front (not how Anthropic streams, but valid)
                out.append(ToolArgumentsDelta(call, dump_arguments(block["input"])))
            return out
        return []  # Lossy: server-tool blocks are dropped.

    def _block_stop(self, index: int) -> list[StreamEvent]:
        kind = self._blocks.pop(index, None)
        if kind == BLOCK_THINKING:
            signature, self._signature = self._signature, None
            return [ReasoningEnd(signature, NAME if signature else None)]
        if kind == BLOCK_TOOL_USE:
            return [ToolCallEnd(self._calls[index])]
        return []


def _quoted(text: str) -> bytes:
    """`text` as a JSON string in UTF-8, as `dumps` writes it; a lone surrogate (which UTF-8 cannot carry) is
    written as its \\u escape instead of failing."""
    try:
        return encode_basestring(text).encode()
    except UnicodeEncodeError:
        return encode_basestring_ascii(text).encode()


class MessagesEncoder(Encoder):
    """Unified events -> Anthropic events: message_start, one block at a time (start, deltas, stop),
    message_delta with the stop reason and cumulative usage, message_stop."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._model = request.model
        self._id = SYNTHETIC_ID
        self._began = False
        self._open: tuple[str, int | None] | None = None  # (block type, tool call index) of the open block
        self._text_head: bytes | None = None  # DELTA_HEAD of the open block when it is a text block
        self._next = 0  # index of the next block
        self._tool_blocks: dict[int, int] = {}  # unified tool call index -> block index

    @staticmethod
    def _event(payload: dict) -> bytes:
        kind: str = payload["type"]
        return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"

    def _begin(self) -> bytes:
        """message_start, held back until the first content so that it carries the input usage if known."""
        self._began = True
        usage = usage_from_ir(self.usage or Usage())
        usage["output_tokens"] = 0
        message: dict = {"id": self._id, "type": MESSAGE_TYPE, "role": ROLE_ASSISTANT, "model": self._model,
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
        return self._event({"type": MESSAGE_START, "message": message})

    def _open_block(self, kind: str, block: dict, tool: int | None = None) -> bytes:
        out = (b"" if self._began else self._begin()) + self._close()
        self._open = (kind, tool)
        self._text_head = DELTA_HEAD % (self._next, b"text_delta", b"text") if kind == BLOCK_TEXT else None
        out += self._event({"type": CONTENT_BLOCK_START, "index": self._next, "content_block": block})
        return out

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = self._text_head = None
        self._next += 1
        return self._event({"type": CONTENT_BLOCK_STOP, "index": self._next - 1})

    def _delta(self, delta: dict, index: int | None = None) -> bytes:
        index = self._next if index is None else index
        return self._event({"type": CONTENT_BLOCK_DELTA, "index": index, "delta": delta})

    def _text_delta(self, kind: bytes, key: bytes, text: str) -> bytes:
        """A thinking delta of the open block, written without a dict."""
        return DELTA_HEAD % (self._next, kind, key) + _quoted(text) + DELTA_TAIL

    def start(self, event: Start) -> bytes:
        self._id = event.id if event.id.startswith("msg_") else f"msg_{event.id}" if event.id else SYNTHETIC_ID
        self._model = event.model or self._model
        return b""

    def text(self, text: str) -> bytes:
        head = self._text_head
        if head is not None:
            return head + _quoted(text) + DELTA_TAIL
        out = self._open_block(BLOCK_TEXT, {"type": BLOCK_TEXT, "text": ""})
        head = cast(bytes, self._text_head)  # what _open_block just set for a text block
        return out + head + _quoted(text) + DELTA_TAIL

    def reasoning(self, text: str) -> bytes:
        out = b""
        if self._open != (BLOCK_THINKING, None):
            out = self._open_block(BLOCK_THINKING, {"type": BLOCK_THINKING, "thinking": "", "signature": ""})
        return out + self._text_delta(b"thinking_delta", b"thinking", text)

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        anthropic = event.origin == NAME and event.signature
        if event.redacted:
            if not anthropic:
                return b""  # Lossy: another vendor's opaque reasoning has no place here.
            return self._open_block(BLOCK_REDACTED, {"type": BLOCK_REDACTED, "data": event.signature}) + self._close()
        if self._open != (BLOCK_THINKING, None):
            return b""
        # Lossy: another vendor's signature is not Anthropic's; the thinking block closes without one.
        out = self._delta({"type": SIGNATURE_DELTA, "signature": event.signature}) if anthropic else b""
        return out + self._close()

    def tool_start(self, event: ToolCallStart) -> bytes:
        block = {"type": BLOCK_TOOL_USE, "id": event.id, "name": event.name, "input": {}}
        out = self._open_block(BLOCK_TOOL_USE, block, event.index)
        self._tool_blocks[event.index] = self._next
        return out

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        block = self._tool_blocks.get(index)
        if block is None:
            return b""
        # An upstream that goes back to an earlier call after starting the next one (Chat allows it): the
        # fragment is addressed to that call's block, which the SDKs accumulate by index.
        return self._delta({"type": INPUT_JSON_DELTA, "partial_json": fragment}, block)

    def tool_end(self, index: int) -> bytes:
        return self._close() if self._open == (BLOCK_TOOL_USE, index) else b""

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        out = (b"" if self._began else self._begin()) + self._close()
        # A cut stream says max_tokens: a half-written tool call is never reported as tool use.
        reason = FINISH_LENGTH if truncated else client_finish(reason, bool(self._tool_blocks))
        delta = {"stop_reason": _stop_reason(reason, stop_sequence),
                 "stop_sequence": stop_sequence if reason == FINISH_STOP else None}
        out += self._event({"type": MESSAGE_DELTA, "delta": delta, "usage": usage_from_ir(self.usage or Usage())})
        return out + self._event({"type": MESSAGE_STOP})

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        return self._event({"type": ERROR, "error": _error_object(message, status, kind)})


TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, fixed_endpoint(PATH), answer_to_ir, answer_from_ir,
    MessagesDecoder, MessagesEncoder, error_from_ir,
)
