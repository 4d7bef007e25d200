"""OpenAI Chat Completions <-> the unified representation."""

from __future__ import annotations

from typing import Any

from protocols.base import Event, count, member
from protocols.capabilities import Capabilities, effort_for
from protocols.errors import OPENAI_TRUNCATED_CODE, openai_error
from protocols.openai_chat.chunks import CHOICES_MEMBER, constant_head, plain_text, templated_text, text_template
from protocols.openai_chat.stream import (
    CHUNK_OBJECT,
    COMPLETION_OBJECT,
    DONE,
    DONE_EVENT,
    REASONING_KEYS,
    TOOL_TYPE_FUNCTION,
)
from protocols.sse import dumps
from protocols.translate.base import Decoder, Encoder, Translator, fixed_endpoint
from protocols.translate.common import error_from_object, image_from_url, image_url, load_object, string
from protocols.translate.tools import FORMAT_TEXT, as_function, client_tool, custom_arguments, custom_input
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
    client_finish,
    name_tool_results,
)

NAME = "openai_chat"
TOOL_TYPE_CUSTOM = "custom"
PATH = "/chat/completions"
SYNTHETIC_ID = "chatcmpl-rotator"
REASONING_KEY = REASONING_KEYS[0]  # reasoning_content (DeepSeek), the default the docs recommend emitting
CONTEXT_LENGTH_CODE = "context_length_exceeded"
FORMAT_JSON_SCHEMA = "json_schema"
FORMAT_JSON_OBJECT = "json_object"

FINISH_FROM = {
    "stop": FINISH_STOP,
    "length": FINISH_LENGTH,
    "tool_calls": FINISH_TOOL_CALLS,
    "function_call": FINISH_TOOL_CALLS,
    "content_filter": FINISH_CONTENT_FILTER,
}
FINISH_TO = {FINISH_STOP: "stop", FINISH_LENGTH: "length", FINISH_TOOL_CALLS: "tool_calls",
             FINISH_CONTENT_FILTER: "content_filter"}
CHOICE_MODES = frozenset({CHOICE_AUTO, CHOICE_NONE, CHOICE_REQUIRED})
TEMPLATE_TRIES = 3  # plain-text chunks a stream's text template is learnt from before giving up on it


# --- requests


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


def _assistant_parts(message: dict) -> list:
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
        return Message(role, _assistant_parts(message))
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


def _content(parts: list) -> str | list:
    """A user content: a plain string when it is all text, else text and image_url parts."""
    if all(isinstance(p, Text) for p in parts):
        return "".join(p.text for p in parts)
    return [
        {"type": "text", "text": p.text} if isinstance(p, Text)
        else {"type": "image_url", "image_url": {"url": image_url(p), **({"detail": p.detail} if p.detail else {})}}
        for p in parts if isinstance(p, (Text, Image))
    ]


def _assistant(message: Message) -> dict:
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
    out: list[dict] = [{"role": "system", "content": request.system}] if request.system else []
    for message in request.messages:
        if message.role in INSTRUCTION_ROLES:
            out.append({"role": message.role, "content": "".join(p.text for p in message.parts if isinstance(p, Text))})
        elif message.role == ROLE_ASSISTANT:
            out.append(_assistant(message))
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
    for key, value in (("max_tokens", request.max_tokens), ("temperature", request.temperature),
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


# --- answers


def usage_to_ir(usage: dict) -> Usage:
    """Lossy: audio and prediction token counts are dropped."""
    prompt = member(usage, "prompt_tokens_details")
    return Usage(
        input_tokens=count(usage, "prompt_tokens"),
        output_tokens=count(usage, "completion_tokens"),
        reasoning_tokens=count(member(usage, "completion_tokens_details"), "reasoning_tokens"),
        # DeepSeek reports cache hits as prompt_cache_hit_tokens.
        cache_read_tokens=count(prompt, "cached_tokens") or count(usage, "prompt_cache_hit_tokens"),
        cache_write_tokens=count(prompt, "cache_write_tokens"),
    )


def usage_from_ir(usage: Usage) -> dict:
    prompt = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        prompt["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": prompt,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    choices = body.get("choices") or [{}]
    choice = choices[0]  # Lossy: only the first of n choices is translated.
    parts = _assistant_parts(choice.get("message") or {})
    ids = ids or ToolIds()
    for ordinal, call in enumerate(p for p in parts if isinstance(p, ToolCall)):
        call.id = ids.issue(call.id or None, call.name, body.get("id"), ordinal)
    return Answer(
        id=body.get("id") or "",
        model=body.get("model") or "",
        created=body.get("created") or 0,
        parts=parts,
        finish=FINISH_FROM.get(choice.get("finish_reason"), FINISH_STOP),
        usage=usage_to_ir(body.get("usage") or {}),
    )


def _client_call(call: dict, request: Request) -> dict:
    """A call of a client's custom tool as the custom call it expects."""
    tool = client_tool(request, call["function"]["name"])
    if tool is None or tool.custom_format is None:
        return call
    return {"id": call["id"], "type": TOOL_TYPE_CUSTOM,
            "custom": {"name": tool.name, "input": custom_input(call["function"]["arguments"])}}


def _message_from_ir(answer: Answer, request: Request) -> dict:
    message = _assistant(Message(ROLE_ASSISTANT, list(answer.parts)))
    if "tool_calls" in message:
        message["tool_calls"] = [_client_call(c, request) for c in message["tool_calls"]]
    reasoning = "".join(p.text for p in answer.parts if isinstance(p, Reasoning))
    if reasoning:  # answers carry any vendor's reasoning text (signatures are dropped)
        message[REASONING_KEY] = reasoning
    return {**message, "refusal": None, "annotations": []}


def answer_from_ir(answer: Answer, request: Request) -> dict:
    finish = client_finish(answer.finish, bool(answer.tool_calls()))
    return {
        "id": answer.id or SYNTHETIC_ID,
        "object": COMPLETION_OBJECT,
        "created": answer.created,
        "model": answer.model or request.model,
        "choices": [{"index": 0, "message": _message_from_ir(answer, request), "logprobs": None,
                     "finish_reason": FINISH_TO.get(finish, "stop")}],
        "usage": usage_from_ir(answer.usage),
    }


def error_from_ir(error: Error) -> tuple[int, bytes]:
    return error.status, dumps({"error": _error_object(error.message, error.status, error.kind)})


def _error_object(message: str, status: int, kind: str | None) -> dict:
    error = openai_error(status, message)
    if kind == KIND_CONTEXT_LENGTH:
        error["code"] = CONTEXT_LENGTH_CODE
    elif kind == KIND_TRUNCATED:
        error["code"] = OPENAI_TRUNCATED_CODE
    return error


# --- streams


class ChatDecoder(Decoder):
    """Chat chunks -> unified events. The finish waits for `[DONE]`, so the usage chunk before it is included."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._began = False
        self._id = ""
        self._calls: dict[int, int] = {}  # Chat tool call index -> unified index
        self._open: list[int] = []
        self._finish: str | None = None
        self._done = False
        self._head = ""  # see chat_chunks.constant_head
        self._template: tuple[str, str] | None = None  # see chat_chunks.text_template
        self._learning = TEMPLATE_TRIES

    def feed(self, event: Event) -> list[StreamEvent]:
        data = event.data
        if data is None or self._done:
            return []
        template = self._template
        if template is not None:
            text = templated_text(data, template)
            if text is not None:
                return [TextDelta(text)] if text else []
        if data.startswith(DONE):
            return self._end(self._finish or FINISH_STOP)
        head = self._head
        if head and data.startswith(head) and data.startswith(CHOICES_MEMBER, len(head)):
            chunk = load_object("{" + data[len(head):])  # the head's members were read in the first chunk
        else:
            chunk = load_object(data)
        if chunk is None:
            return []
        if self._began:
            text = plain_text(chunk)
            if text is not None:
                if template is None and self._learning:
                    self._learning -= 1
                    self._template = text_template(data, text)
                return [TextDelta(text)] if text else []
        out: list[StreamEvent] = []
        if chunk.get("error"):
            error = chunk["error"]
            self._done = True
            return [error_from_object(error) if isinstance(error, dict) else Error(500, str(error))]
        choices = chunk.get("choices") or ()
        if not self._began and (choices or chunk.get("usage")):
            self._began = True
            self._id = string(chunk.get("id"))
            created = chunk.get("created")
            out.append(Start(self._id, string(chunk.get("model")), created if isinstance(created, int) else 0))
            self._head = constant_head(data, chunk)
        for choice in choices:
            if choice.get("index", 0) == 0:  # Lossy: only the first of n choices is translated.
                self._choice(choice, out)
        if chunk.get("usage"):
            out.append(UsageUpdate(usage_to_ir(chunk["usage"])))
        return out

    def _choice(self, choice: dict, out: list[StreamEvent]) -> None:
        delta = choice.get("delta") or {}
        for key in REASONING_KEYS:
            if isinstance(delta.get(key), str) and delta[key]:
                out.append(ReasoningDelta(delta[key]))
        for key in ("content", "refusal"):  # Lossy: a refusal is told as plain text.
            if isinstance(delta.get(key), str) and delta[key]:
                out.append(TextDelta(delta[key]))
        for fragment in delta.get("tool_calls") or ():
            self._tool_fragment(fragment, out)
        if choice.get("finish_reason"):
            self._finish = FINISH_FROM.get(choice["finish_reason"], FINISH_STOP)
            out += [ToolCallEnd(index) for index in self._open]
            self._open = []

    def _tool_fragment(self, fragment: dict, out: list[StreamEvent]) -> None:
        function = fragment.get("function") or {}
        index = self._calls.get(fragment.get("index", 0))
        if index is None:
            index = self._calls[fragment.get("index", 0)] = len(self._calls)
            name = string(function.get("name"))
            out.append(ToolCallStart(index, self._ids.issue(string(fragment.get("id")), name, self._id, index), name))
            self._open.append(index)
        if string(function.get("arguments")):
            out.append(ToolArgumentsDelta(index, function["arguments"]))

    def close(self) -> list[StreamEvent]:
        """A stream that said its finish_reason but ended before `[DONE]` is complete all the same."""
        return self._end(self._finish) if self._finish is not None and not self._done else []

    def _end(self, finish: str) -> list[StreamEvent]:
        self._done = True
        out: list[StreamEvent] = [ToolCallEnd(index) for index in self._open]
        self._open = []
        return [*out, Finish(finish)]


class ChatEncoder(Encoder):
    """Unified events -> Chat chunks: a role chunk, deltas (tool call id and name only in a call's first
    fragment), a finish chunk, the usage chunk if the client asked for it, `[DONE]`."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._request = request
        self._created = created
        self._began = False
        self._head = b""
        self._calls: set[int] = set()

    def _begin(self, id_: str = "", model: str = "", created: int = 0) -> bytes:
        self._began = True
        self._id = id_ or SYNTHETIC_ID
        self._model = model or self._request.model
        self._created = created or self._created
        head = {"id": self._id, "object": CHUNK_OBJECT, "created": self._created, "model": self._model}
        self._head = b"data: " + dumps(head)[:-1] + b',"choices":[{"index":0,"delta":'
        return self._chunk({"role": ROLE_ASSISTANT, "content": ""})

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        lead = b"" if self._began else self._begin()
        reason = b'"' + finish.encode() + b'"' if finish else b"null"
        return lead + self._head + dumps(delta) + b',"logprobs":null,"finish_reason":' + reason + b"}]}\n\n"

    def start(self, event: Start) -> bytes:
        return b"" if self._began else self._begin(event.id, event.model, event.created)

    def text(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def reasoning(self, text: str) -> bytes:
        return self._chunk({REASONING_KEY: text})

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        return b""  # Lossy: Chat has no place for reasoning signatures.

    def tool_start(self, event: ToolCallStart) -> bytes:
        # Lossy: a custom tool's call streams as a function call of {"input": ...}: the SDK's chunk types
        # have no custom call (non-stream answers carry one).
        self._calls.add(event.index)
        call = {"index": event.index, "id": event.id, "type": TOOL_TYPE_FUNCTION,
                "function": {"name": event.name, "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def tool_end(self, index: int) -> bytes:
        return b""

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        reason = FINISH_LENGTH if truncated else client_finish(reason, bool(self._calls))
        out = self._chunk({}, FINISH_TO.get(reason, "stop"))
        if self._request.include_usage:
            head = {"id": self._id, "object": CHUNK_OBJECT, "created": self._created, "model": self._model,
                    "choices": [], "usage": usage_from_ir(self.usage or Usage())}
            out += b"data: " + dumps(head) + b"\n\n"
        return out + DONE_EVENT

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        return b"data: " + dumps({"error": _error_object(message, status, kind)}) + b"\n\n"


TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, fixed_endpoint(PATH), answer_to_ir, answer_from_ir,
    ChatDecoder, ChatEncoder, error_from_ir,
)
