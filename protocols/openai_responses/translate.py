"""OpenAI Responses <-> the unified representation."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from protocols.base import Event, count, member
from protocols.capabilities import Capabilities, effort_for
from protocols.errors import OPENAI_TRUNCATED_CODE, openai_error
from protocols.openai_chat.translate import CONTEXT_LENGTH_CODE, FORMAT_JSON_OBJECT, FORMAT_JSON_SCHEMA
from protocols.openai_responses.stream import (
    ARGUMENTS_DELTA,
    COMPLETED,
    CONTENT_PART_ADDED,
    CREATED,
    ERROR,
    FAILED,
    IN_PROGRESS,
    INCOMPLETE,
    ITEM_FUNCTION_CALL,
    ITEM_MESSAGE,
    ITEM_REASONING,
    OUTPUT_ITEM_ADDED,
    OUTPUT_ITEM_DONE,
    OUTPUT_TEXT_DELTA,
    PART_OUTPUT_TEXT,
    PART_REFUSAL,
    PART_SUMMARY_TEXT,
    PRELUDE,
    RATE_LIMITED_CODE,
    REASON_MAX_OUTPUT_TOKENS,
    REASONING_TEXT_DELTA,
    REFUSAL_DELTA,
    SERVER_ERROR_CODE,
    STATUS_IN_PROGRESS,
    STATUS_INCOMPLETE,
    SUMMARY_TEXT_DELTA,
)
from protocols.sse import dumps
from protocols.translate.base import Decoder, Encoder, Translator, fixed_endpoint
from protocols.translate.common import error_from_object, image_from_url, image_url, load_object, string
from protocols.translate.tools import FORMAT_TEXT, client_tool, custom_arguments, custom_input, flat_name, in_namespace
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    FINISH_CONTENT_FILTER,
    FINISH_LENGTH,
    FINISH_STOP,
    INSTRUCTION_ROLES,
    KIND_CONTEXT_LENGTH,
    KIND_TRUNCATED,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_USER,
    Answer,
    Error,
    Finish,
    Image,
    Message,
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
    name_tool_results,
    whole_arguments,
)

NAME = "openai_responses"
PATH = "/responses"
SYNTHETIC_ID = "resp_rotator"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
REASON_CONTENT_FILTER = "content_filter"
SUMMARY_SEPARATOR = "\n\n"  # between the parts of a reasoning summary, once they are one text
INPUT_TEXT = "input_text"
INPUT_IMAGE = "input_image"
TEXT_PARTS = frozenset({INPUT_TEXT, PART_OUTPUT_TEXT})
ITEM_FUNCTION_CALL_OUTPUT = "function_call_output"
ITEM_CUSTOM_CALL = "custom_tool_call"
ITEM_CUSTOM_CALL_OUTPUT = "custom_tool_call_output"
ITEM_ADDITIONAL_TOOLS = "additional_tools"  # Codex: tools offered from this point of the input on
CALL_OUTPUTS = frozenset({ITEM_FUNCTION_CALL_OUTPUT, ITEM_CUSTOM_CALL_OUTPUT})
TOOL_FUNCTION = "function"
TOOL_CUSTOM = "custom"
TOOL_NAMESPACE = "namespace"
CHOICE_MODES = frozenset({CHOICE_AUTO, CHOICE_NONE, CHOICE_REQUIRED})

SUMMARY_PART_ADDED = "response.reasoning_summary_part.added"
SUMMARY_PART_DONE = "response.reasoning_summary_part.done"
SUMMARY_TEXT_DONE = "response.reasoning_summary_text.done"
OUTPUT_TEXT_DONE = "response.output_text.done"
CONTENT_PART_DONE = "response.content_part.done"
ARGUMENTS_DONE = "response.function_call_arguments.done"
CUSTOM_INPUT_DELTA = "response.custom_tool_call_input.delta"
CUSTOM_INPUT_DONE = "response.custom_tool_call_input.done"
CUSTOM_ARGUMENTS_HEAD, CUSTOM_ARGUMENTS_TAIL = '{"input": "', '"}'  # a custom call's input as unified arguments


# --- requests


def _content_to_ir(content: Any) -> list:
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


def _reasoning_to_ir(item: dict) -> Reasoning:
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
        return role, _content_to_ir(item.get("content"))
    if kind == ITEM_FUNCTION_CALL:
        return ROLE_ASSISTANT, [ToolCall(item.get("call_id") or "", _call_name(item), item.get("arguments") or "")]
    if kind == ITEM_CUSTOM_CALL:
        return ROLE_ASSISTANT, [ToolCall(item.get("call_id") or "", _call_name(item),
                                         custom_arguments(string(item.get("input"))))]
    if kind in CALL_OUTPUTS:
        output = item.get("output")
        return ROLE_TOOL, [ToolResult(item.get("call_id") or "", _content_to_ir(output) if output is not None else [])]
    if kind == ITEM_REASONING:
        return ROLE_ASSISTANT, [_reasoning_to_ir(item)]
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


def request_to_ir(body: dict, model: str = "") -> Request:
    """Lossy: previous_response_id (replayed by the continuity layer), store, include, truncation, background,
    metadata, prompt_cache_key and text.verbosity have no unified form."""
    reasoning = body.get("reasoning") or {}
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
        response_format=_format_to_ir(body.get("text")),
        user=body.get("safety_identifier") or body.get("user"),
        stream=body.get("stream") is True,
    )
    name_tool_results(request.messages)
    return request


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


def _tools(request: Request) -> list[dict]:
    return [_tool(t) for t in request.tools]


def _tool_choice(request: Request) -> str | dict:
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
    if request.system:
        body["instructions"] = request.system
    if request.tools:
        body["tools"] = _tools(request)
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    for key, value in (("max_output_tokens", request.max_tokens), ("temperature", request.temperature),
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


# --- answers


def usage_to_ir(usage: dict) -> Usage:
    inputs = member(usage, "input_tokens_details")
    return Usage(
        input_tokens=count(usage, "input_tokens"),
        output_tokens=count(usage, "output_tokens"),
        reasoning_tokens=count(member(usage, "output_tokens_details"), "reasoning_tokens"),
        cache_read_tokens=count(inputs, "cached_tokens"),
        cache_write_tokens=count(inputs, "cache_write_tokens"),
    )


def usage_from_ir(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens,
                                 "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _finish_to_ir(response: dict) -> str:
    if response.get("status") != STATUS_INCOMPLETE:
        return FINISH_STOP
    reason = (response.get("incomplete_details") or {}).get("reason")
    return FINISH_CONTENT_FILTER if reason == REASON_CONTENT_FILTER else FINISH_LENGTH


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    ids = ids or ToolIds()
    parts: list = []
    for item in body.get("output") or ():
        kind = item.get("type")
        if kind == ITEM_MESSAGE:
            parts += [p for p in _content_to_ir(item.get("content")) if isinstance(p, Text)]
        elif kind in (ITEM_FUNCTION_CALL, ITEM_CUSTOM_CALL):
            ordinal = sum(isinstance(p, ToolCall) for p in parts)
            call_id = ids.issue(item.get("call_id"), item.get("name") or "", body.get("id"), ordinal)
            arguments = item.get("arguments") if kind == ITEM_FUNCTION_CALL else custom_arguments(
                string(item.get("input")))
            parts.append(ToolCall(call_id, item.get("name") or "", arguments or ""))
        elif kind == ITEM_REASONING:
            parts.append(_reasoning_to_ir(item))
    return Answer(
        id=body.get("id") or "",
        model=body.get("model") or "",
        created=body.get("created_at") or 0,
        parts=parts,
        finish=_finish_to_ir(body),
        usage=usage_to_ir(body.get("usage") or {}),
    )


def _item_id(prefix: str, response_id: str, index: int) -> str:
    digest = hashlib.sha256(response_id.encode()).hexdigest()[:16]
    return f"{prefix}_{digest}{index:03d}"


def _reasoning_item(item_id: str, text: str, signature: str | None, origin: str | None) -> dict:
    """Lossy: another vendor's whole thinking text is shown as the reasoning summary (what Responses clients
    display); only Responses' own encrypted_content is kept."""
    item = {"id": item_id, "type": ITEM_REASONING,
            "summary": [{"type": PART_SUMMARY_TEXT, "text": text}] if text else []}
    if origin == NAME and signature:
        item["encrypted_content"] = signature
    return item


def _message_item(item_id: str, text: str, status: str = STATUS_COMPLETED) -> dict:
    return {"id": item_id, "type": ITEM_MESSAGE, "status": status, "role": ROLE_ASSISTANT,
            "content": [{"type": PART_OUTPUT_TEXT, "text": text, "annotations": [], "logprobs": []}]}


def _call_item(item_id: str, call: ToolCall, tool: Tool | None, status: str = STATUS_COMPLETED) -> dict:
    """A call as the client sent its tool (`client_tool`): a custom call's raw input, a namespaced call's own
    name and namespace."""
    name = tool.name_in_namespace if tool is not None and tool.namespace is not None else call.name
    namespace = {"namespace": tool.namespace} if tool is not None and tool.namespace is not None else {}
    if tool is not None and tool.custom_format is not None:
        return {"id": item_id, "type": ITEM_CUSTOM_CALL, "call_id": call.id,  # (no status: the type has none)
                "input": custom_input(call.arguments), "name": name, **namespace}
    return {"id": item_id, "type": ITEM_FUNCTION_CALL, "status": status, "arguments": call.arguments,
            "call_id": call.id, "name": name, **namespace}


def _output(answer: Answer, response_id: str, request: Request) -> list[dict]:
    out: list[dict] = []
    for part in answer.parts:
        if isinstance(part, Text) and out and out[-1]["type"] == ITEM_MESSAGE:
            out[-1]["content"][0]["text"] += part.text
        elif isinstance(part, Text):
            out.append(_message_item(_item_id("msg", response_id, len(out)), part.text))
        elif isinstance(part, Reasoning):
            item_id = part.id if part.origin == NAME and part.id else _item_id("rs", response_id, len(out))
            out.append(_reasoning_item(item_id, part.text, part.signature, part.origin))
        elif isinstance(part, ToolCall):
            out.append(_call_item(_item_id("fc", response_id, len(out)), part, client_tool(request, part.name)))
    return out


def _response(response_id: str, model: str, created: int, request: Request) -> dict:
    """A response object with the request's settings echoed, as the API returns it."""
    effort = effort_for(request.reasoning) if request.reasoning is not None else None
    return {
        "id": response_id, "object": "response", "created_at": created, "status": STATUS_IN_PROGRESS,
        "background": False, "error": None, "incomplete_details": None, "instructions": request.system,
        "max_output_tokens": request.max_tokens, "model": model or request.model, "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False, "previous_response_id": None,
        "reasoning": {"effort": effort, "summary": None},
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": {"format": {"type": "text"}}, "tool_choice": _tool_choice(request),
        "tools": _tools(request), "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": "disabled", "usage": None, "metadata": {},
    }


def _response_id(source_id: str) -> str:
    if not source_id:
        return SYNTHETIC_ID
    return source_id if source_id.startswith("resp_") else f"resp_{source_id}"


def _close_response(response: dict, finish: str, usage: Usage) -> dict:
    if finish in (FINISH_LENGTH, FINISH_CONTENT_FILTER):
        reason = REASON_MAX_OUTPUT_TOKENS if finish == FINISH_LENGTH else REASON_CONTENT_FILTER
        return {**response, "status": STATUS_INCOMPLETE, "incomplete_details": {"reason": reason},
                "usage": usage_from_ir(usage)}
    return {**response, "status": STATUS_COMPLETED, "usage": usage_from_ir(usage)}


def answer_from_ir(answer: Answer, request: Request) -> dict:
    response_id = _response_id(answer.id)
    response = _response(response_id, answer.model, answer.created, request)
    response["output"] = _output(answer, response_id, request)
    return _close_response(response, answer.finish, answer.usage)


def _error_object(message: str, status: int, kind: str | None) -> dict:
    error = openai_error(status, message)
    if kind == KIND_CONTEXT_LENGTH:
        error["code"] = CONTEXT_LENGTH_CODE
    elif kind == KIND_TRUNCATED:
        error["code"] = OPENAI_TRUNCATED_CODE
    return error


def error_from_ir(error: Error) -> tuple[int, bytes]:
    return error.status, dumps({"error": _error_object(error.message, error.status, error.kind)})


# --- streams


class ResponsesDecoder(Decoder):
    """Responses events -> unified events: each output item's lifecycle becomes a text, reasoning or tool call."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._began = False
        self._id = ""
        # Keyed by each event's output_index as sent (an integer from a well-formed upstream).
        self._items: dict[object, object] = {}  # output_index -> item type
        self._calls: dict[object, int] = {}  # output_index -> unified tool call index
        self._streamed: set[object] = set()  # output indexes whose content arrived as deltas
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        if event.data is None or self._done:
            return []
        payload = load_object(event.data)
        if payload is None:
            return []
        kind = payload.get("type") or event.event
        index = payload.get("output_index")
        if kind in (OUTPUT_TEXT_DELTA, REFUSAL_DELTA):
            self._streamed.add(index)
            return [TextDelta(string(payload.get("delta")))]
        if kind in (SUMMARY_TEXT_DELTA, REASONING_TEXT_DELTA):
            self._streamed.add(index)
            return [ReasoningDelta(string(payload.get("delta")))]
        if kind in (ARGUMENTS_DELTA, CUSTOM_INPUT_DELTA):
            self._streamed.add(index)
            call = self._calls.get(index)
            delta = string(payload.get("delta"))
            if kind == CUSTOM_INPUT_DELTA:
                delta = _json_string_body(delta)
            return [ToolArgumentsDelta(call, delta)] if call is not None else []
        if kind == SUMMARY_PART_ADDED and payload.get("summary_index", 0) > 0:
            return [ReasoningDelta(SUMMARY_SEPARATOR)]
        if kind == OUTPUT_ITEM_ADDED:
            return self._item_added(index, payload.get("item") or {})
        if kind == OUTPUT_ITEM_DONE:
            return self._item_done(index, payload.get("item") or {})
        if kind in PRELUDE:
            return self._start(payload.get("response") or {})
        if kind in (COMPLETED, INCOMPLETE):
            self._done = True
            response = payload.get("response") or {}
            return [*self._start(response), UsageUpdate(usage_to_ir(response.get("usage") or {})),
                    Finish(_finish_to_ir(response))]
        if kind in (FAILED, ERROR):
            self._done = True
            return [self._error(kind, payload)]
        return []  # Lossy: annotations and built-in tool events are dropped.

    def _start(self, response: dict) -> list[StreamEvent]:
        if self._began:
            return []
        self._began = True
        self._id = string(response.get("id"))
        created = response.get("created_at")
        return [Start(self._id, string(response.get("model")), created if isinstance(created, int) else 0)]

    def _item_added(self, index: object, item: dict) -> list[StreamEvent]:
        kind = self._items[index] = item.get("type")
        if kind not in (ITEM_FUNCTION_CALL, ITEM_CUSTOM_CALL):
            return []
        call = self._calls[index] = len(self._calls)
        name = string(item.get("name"))
        call_id = self._ids.issue(string(item.get("call_id")), name, self._id, call)
        out: list[StreamEvent] = [ToolCallStart(call, call_id, name)]
        if kind == ITEM_CUSTOM_CALL:  # its raw input streams as the arguments {"input": "..."}
            out.append(ToolArgumentsDelta(call, CUSTOM_ARGUMENTS_HEAD + _json_string_body(string(item.get("input")))))
            if string(item.get("input")):
                self._streamed.add(index)
        elif string(item.get("arguments")):
            self._streamed.add(index)
            out.append(ToolArgumentsDelta(call, item["arguments"]))
        return out

    def _item_done(self, index: object, item: dict) -> list[StreamEvent]:
        """Close the item; content the stream did not deliver as deltas comes from the finished item."""
        kind = self._items.pop(index, item.get("type"))
        streamed = index in self._streamed
        if kind == ITEM_FUNCTION_CALL and index in self._calls:
            call = self._calls[index]
            out: list[StreamEvent] = [] if streamed or not string(item.get("arguments")) else [
                ToolArgumentsDelta(call, item["arguments"])]
            return [*out, ToolCallEnd(call)]
        if kind == ITEM_CUSTOM_CALL and index in self._calls:
            call = self._calls[index]
            rest = "" if streamed else _json_string_body(string(item.get("input")))
            return [ToolArgumentsDelta(call, rest + CUSTOM_ARGUMENTS_TAIL), ToolCallEnd(call)]
        if kind == ITEM_REASONING:
            reasoning = _reasoning_to_ir(item)
            out = [] if streamed or not reasoning.text else [ReasoningDelta(reasoning.text)]
            return [*out, ReasoningEnd(reasoning.signature, NAME, id=item.get("id"))]
        if kind == ITEM_MESSAGE and not streamed:
            text = "".join(p.text for p in _content_to_ir(item.get("content")) if isinstance(p, Text))
            return [TextDelta(text)] if text else []
        return []

    @staticmethod
    def _error(kind: str, payload: dict) -> Error:
        if kind == FAILED:
            error = (payload.get("response") or {}).get("error") or {}
        else:
            nested = payload.get("error")
            error = nested if isinstance(nested, dict) else {k: payload.get(k) for k in ("code", "message")}
        return error_from_object(error) if isinstance(error, dict) else Error(500, str(error))


def _json_string_body(text: str) -> str:
    """`text` as it reads inside a JSON string, without the quotes."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


class _Item:
    """An output item the encoder has opened: its output index and what streamed into it."""

    __slots__ = ("index", "id", "kind", "text", "tool")

    def __init__(self, index: int, item_id: str, kind: str) -> None:
        self.index = index
        self.id = item_id
        self.kind = kind
        self.text: list[str] = []
        self.tool: Tool | None = None  # the client's custom or namespaced tool the call is for


class ResponsesEncoder(Encoder):
    """Unified events -> Responses events: response.created, each output item's lifecycle (added, deltas, done)
    with consecutive sequence numbers, and response.completed or response.incomplete with the whole output."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._request = request
        self._created = created
        self._response: dict | None = None
        self._sequence = 0
        self._output: dict[int, dict] = {}  # output_index -> finished item
        self._open: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, tuple[_Item, ToolCall]] = {}  # unified tool call index -> its open item, its call
        self._count = 0

    def _event(self, kind: str, **fields: object) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"

    def _begin(self, source_id: str = "", model: str = "", created: int = 0) -> tuple[bytes, dict]:
        """The events that begin the response, and the response."""
        response = self._response = _response(_response_id(source_id), model, created or self._created, self._request)
        return self._event(CREATED, response=response) + self._event(IN_PROGRESS, response=response), response

    def _begun(self) -> tuple[bytes, dict]:
        """The response, after the events that begin it if they were not sent yet."""
        return (b"", self._response) if self._response is not None else self._begin()

    def _add(self, kind: str, prefix: str, item: dict) -> tuple[bytes, _Item]:
        out, response = self._begun()
        opened = _Item(self._count, _item_id(prefix, response["id"], self._count), kind)
        self._count += 1
        out += self._event(OUTPUT_ITEM_ADDED, output_index=opened.index, item={"id": opened.id, **item})
        return out, opened

    def _done(self, opened: _Item, item: dict) -> bytes:
        self._output[opened.index] = item
        return self._event(OUTPUT_ITEM_DONE, output_index=opened.index, item=item)

    def _close(self) -> bytes:
        """Finish the open message or reasoning item."""
        opened, self._open = self._open, None
        if opened is None:
            return b""
        if opened.kind == ITEM_MESSAGE:
            return self._close_message(opened)
        return self._close_reasoning(opened, None, None)

    def _close_message(self, opened: _Item) -> bytes:
        text = "".join(opened.text)
        ids = {"item_id": opened.id, "output_index": opened.index, "content_index": 0}
        part = {"type": PART_OUTPUT_TEXT, "annotations": [], "logprobs": [], "text": text}
        return (self._event(OUTPUT_TEXT_DONE, **ids, text=text, logprobs=[])
                + self._event(CONTENT_PART_DONE, **ids, part=part)
                + self._done(opened, _message_item(opened.id, text)))

    def _close_reasoning(self, opened: _Item, signature: str | None, origin: str | None) -> bytes:
        text = "".join(opened.text)
        ids = {"item_id": opened.id, "output_index": opened.index, "summary_index": 0}
        return (self._event(SUMMARY_TEXT_DONE, **ids, text=text)
                + self._event(SUMMARY_PART_DONE, **ids, part={"type": PART_SUMMARY_TEXT, "text": text})
                + self._done(opened, _reasoning_item(opened.id, text, signature, origin)))

    def start(self, event: Start) -> bytes:
        return b"" if self._response is not None else self._begin(event.id, event.model, event.created)[0]

    def text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.kind != ITEM_MESSAGE:
            out = self._close()
            added, self._open = self._add(ITEM_MESSAGE, "msg", {"type": ITEM_MESSAGE, "status": STATUS_IN_PROGRESS,
                                                                 "content": [], "role": ROLE_ASSISTANT})
            part = {"type": PART_OUTPUT_TEXT, "annotations": [], "logprobs": [], "text": ""}
            out += added + self._event(CONTENT_PART_ADDED, item_id=self._open.id, output_index=self._open.index,
                                       content_index=0, part=part)
        self._open.text.append(text)
        return out + self._event(OUTPUT_TEXT_DELTA, item_id=self._open.id, output_index=self._open.index,
                                 content_index=0, delta=text, logprobs=[])

    def reasoning(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.kind != ITEM_REASONING:
            out = self._close()
            added, self._open = self._add(ITEM_REASONING, "rs", {"type": ITEM_REASONING, "summary": []})
            out += added + self._event(SUMMARY_PART_ADDED, item_id=self._open.id, output_index=self._open.index,
                                       summary_index=0, part={"type": PART_SUMMARY_TEXT, "text": ""})
        self._open.text.append(text)
        return out + self._event(SUMMARY_TEXT_DELTA, item_id=self._open.id, output_index=self._open.index,
                                 summary_index=0, delta=text)

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        if self._open is not None and self._open.kind == ITEM_REASONING:
            opened, self._open = self._open, None
            return self._close_reasoning(opened, event.signature, event.origin)
        if event.origin == NAME and event.signature:  # opaque reasoning without text
            out = self._close()
            added, opened = self._add(ITEM_REASONING, "rs", {"type": ITEM_REASONING, "summary": []})
            return out + added + self._done(opened, _reasoning_item(opened.id, "", event.signature, event.origin))
        return b""  # Lossy: another vendor's opaque reasoning has no place here.

    def tool_start(self, event: ToolCallStart) -> bytes:
        call = ToolCall(event.id, event.name)
        tool = client_tool(self._request, event.name)
        item = _call_item("", call, tool, STATUS_IN_PROGRESS)
        del item["id"]
        out = self._close()
        added, opened = self._add(item["type"], "fc", item)
        opened.tool = tool
        self._calls[event.index] = opened, call
        return out + added

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        open_call = self._calls.get(index)
        if open_call is None:
            return b""
        opened, call = open_call
        call.arguments += fragment
        if opened.kind == ITEM_CUSTOM_CALL:
            return b""  # Lossy: a custom call's input is the unwrapped arguments, so it is sent whole at its end
        return self._event(ARGUMENTS_DELTA, item_id=opened.id, output_index=opened.index, delta=fragment)

    def tool_end(self, index: int) -> bytes:
        open_call = self._calls.pop(index, None)
        if open_call is None:
            return b""
        opened, call = open_call
        item = _call_item(opened.id, call, opened.tool)
        ids = {"item_id": opened.id, "output_index": opened.index}
        if opened.kind == ITEM_CUSTOM_CALL:
            delta = self._event(CUSTOM_INPUT_DELTA, **ids, delta=item["input"]) if item["input"] else b""
            return delta + self._event(CUSTOM_INPUT_DONE, **ids, input=item["input"]) + self._done(opened, item)
        return self._event(ARGUMENTS_DONE, **ids, arguments=call.arguments) + self._done(opened, item)

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        out, begun = self._begun()
        out += self._close()
        for index, (_, call) in list(self._calls.items()):
            # A call cut mid-arguments is never finished, and is left out of the output: no agent runs it.
            if not truncated or whole_arguments(call.arguments):
                out += self.tool_end(index)
        finish = FINISH_LENGTH if truncated else reason
        response = {**begun, "output": [self._output[i] for i in sorted(self._output)]}
        response = _close_response(response, finish, self.usage or Usage())
        terminal = INCOMPLETE if response["status"] == STATUS_INCOMPLETE else COMPLETED
        return out + self._event(terminal, response=response)

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        """The `error` event in both shapes (the nested one the SDK raises on, the flat one the docs describe), then
        the `response.failed` the vendor sends after it, which carries the usage."""
        nested = _error_object(message, status, kind)
        nested["code"] = nested["code"] or SERVER_ERROR_CODE
        out = self._event(ERROR, code=nested["code"], message=message, param=None, error=nested)
        response = self._response or _response(SYNTHETIC_ID, "", self._created, self._request)
        code = RATE_LIMITED_CODE if status == 429 else SERVER_ERROR_CODE  # of the few response.error knows
        failed = {**response, "output": [self._output[i] for i in sorted(self._output)], "status": STATUS_FAILED,
                  "error": {"code": code, "message": message}, "usage": usage_from_ir(self.counted_usage())}
        return out + self._event(FAILED, response=failed)


TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, fixed_endpoint(PATH), answer_to_ir, answer_from_ir,
    ResponsesDecoder, ResponsesEncoder, error_from_ir,
)
