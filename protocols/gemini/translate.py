"""Gemini generateContent <-> the unified representation.

Gemini names the model and streaming in the path, not the body: `request_to_ir` takes the model from the caller,
and `endpoint` gives the path to call. Its JSON is lowerCamelCase; requests in snake_case are read as well.
"""

from __future__ import annotations

from typing import Any

from protocols.base import Event, count
from protocols.capabilities import (
    EFFORT_NONE,
    THINKING_BUDGET,
    THINKING_LEVEL,
    THINKING_NONE,
    Capabilities,
    effort_for,
    lookup,
)
from protocols.errors import gemini_error
from protocols.gemini.stream import FINISH_MAX_TOKENS, ROLE_MODEL
from protocols.sse import dumps
from protocols.translate.base import Decoder, Encoder, Translator
from protocols.translate.common import (
    budget_for,
    dump_arguments,
    error_from_object,
    guess_image_type,
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
    GENERATED_TOOL_ID_PREFIX,
    ROLE_ASSISTANT,
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
    instructions,
    stable_tool_id,
    whole_arguments,
)
from protocols.urls import segment

NAME = "gemini"
FAMILY = "gemini"
# Effort -> thinkingLevel: the effort in capitals; no level is called MAX, the highest is XHIGH.
LEVELS = {"max": "XHIGH"}
# Efforts above every 2.5 budget: the model decides how much to think (thinkingBudget -1).
DYNAMIC_EFFORTS = frozenset({"xhigh", "max"})
DYNAMIC_BUDGET = -1
STREAM_PATH = "/v1beta/models/{model}:streamGenerateContent"
GENERATE_PATH = "/v1beta/models/{model}:generateContent"
STREAM_QUERY = "alt=sse"
MODELS_PREFIX = "models/"
JSON_MIME = "application/json"
FINISH_STOP_NAME = "STOP"
FINISH_SAFETY = "SAFETY"
OUTPUT_KEY = "output"
ERROR_KEY = "error"
CRLF = b"\r\n"

FINISH_FROM = {FINISH_STOP_NAME: FINISH_STOP, FINISH_MAX_TOKENS: FINISH_LENGTH}
# Every other finishReason is a safety or policy stop, a tool-call problem or a catch-all.
TOOL_PROBLEMS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "OTHER",
                           "FINISH_REASON_UNSPECIFIED"})
FINISH_TO = {FINISH_LENGTH: FINISH_MAX_TOKENS, FINISH_CONTENT_FILTER: FINISH_SAFETY}
MODE_FROM = {"AUTO": CHOICE_AUTO, "VALIDATED": CHOICE_AUTO, "ANY": CHOICE_REQUIRED, "NONE": CHOICE_NONE}
MODE_TO = {CHOICE_AUTO: "AUTO", CHOICE_REQUIRED: "ANY", CHOICE_NONE: "NONE", CHOICE_TOOL: "ANY"}


def _get(obj: dict, camel: str, snake: str | None = None) -> Any:
    """A field by its lowerCamelCase name, or the snake_case one the proto-JSON parser also takes."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake or "".join(f"_{c.lower()}" if c.isupper() else c for c in camel))
    return value


def finish_to_ir(reason: str | None) -> str:
    if reason in FINISH_FROM:
        return FINISH_FROM[reason]
    # Lossy: tool-call problems and catch-alls are told as a plain stop.
    return FINISH_STOP if reason in TOOL_PROBLEMS or not reason else FINISH_CONTENT_FILTER


# --- requests


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
        response = _get(part, "functionResponse")
        inline = _get(part, "inlineData")
        file = _get(part, "fileData")
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
            other.append(Image(data=inline.get("data"), media_type=_get(inline, "mimeType")))
        elif file is not None:
            other.append(Image(url=_get(file, "fileUri"), media_type=_get(file, "mimeType")))
    return results, other


def _model_parts(parts: Any) -> list:
    out: list = []
    for part in parts or ():
        call = _get(part, "functionCall")
        signature = _get(part, "thoughtSignature")
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
            parts = _model_parts(content.get("parts"))
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
        for declaration in _get(tool, "functionDeclarations") or ():
            schema = _get(declaration, "parametersJsonSchema")
            if schema is None and declaration.get("parameters") is not None:
                schema = _schema_to_json_schema(declaration["parameters"])
            out.append(Tool(declaration.get("name") or "", declaration.get("description"), schema))
    return out  # Lossy: Google Search, code execution and other built-in tools are dropped.


def _choice_to_ir(config: Any) -> ToolChoice | None:
    calling = _get(config or {}, "functionCallingConfig") or {}
    mode = calling.get("mode")
    if not mode:
        return None
    names = _get(calling, "allowedFunctionNames") or []
    if mode == "ANY" and len(names) == 1:
        return ToolChoice(CHOICE_TOOL, names[0])
    return ToolChoice(MODE_FROM.get(mode, CHOICE_AUTO))  # Lossy: several allowed names become "required".


def _reasoning_to_ir(config: Any) -> ReasoningConfig | None:
    thinking = _get(config, "thinkingConfig") or {}
    if not thinking:
        return None
    budget = _get(thinking, "thinkingBudget")
    level = _get(thinking, "thinkingLevel")
    return ReasoningConfig(
        effort=level.lower() if isinstance(level, str) else None,
        budget=budget if isinstance(budget, int) and budget > 0 else None,  # -1: the model decides
        enabled=budget != 0,
        include_thoughts=_get(thinking, "includeThoughts"),
    )


def _format_to_ir(config: Any) -> ResponseFormat | None:
    if _get(config, "responseMimeType") != JSON_MIME:
        return None
    schema = _get(config, "responseJsonSchema")
    if schema is None and _get(config, "responseSchema") is not None:
        schema = _schema_to_json_schema(_get(config, "responseSchema"))
    return ResponseFormat(schema)


def request_to_ir(body: dict, model: str = "") -> Request:
    config = _get(body, "generationConfig") or {}
    system = _get(body, "systemInstruction")
    if isinstance(system, dict):
        system = "".join(p.get("text") or "" for p in system.get("parts") or ())
    return Request(
        model=model or body.get("model") or "",
        system=system or None,
        messages=_contents_to_ir(body.get("contents")),
        tools=_tools_to_ir(body.get("tools")),
        tool_choice=_choice_to_ir(_get(body, "toolConfig")),
        max_tokens=_get(config, "maxOutputTokens"),
        temperature=config.get("temperature"),
        top_p=_get(config, "topP"),
        top_k=_get(config, "topK"),
        stop=list(_get(config, "stopSequences") or ()),
        seed=config.get("seed"),
        reasoning=_reasoning_to_ir(config),
        response_format=_format_to_ir(config),
    )  # Lossy: safetySettings, cachedContent and candidateCount are dropped.


def _media(image: Image) -> dict:
    """Lossy: an OpenAI image `detail` has no Gemini form; a URL's media type is guessed from its extension, and
    Gemini may only fetch some URLs (its Files API, and public ones on newer models)."""
    if image.url:
        return {"fileData": {"mimeType": image.media_type or guess_image_type(image.url), "fileUri": image.url}}
    return {"inlineData": {"mimeType": image.media_type or "image/jpeg", "data": image.data or ""}}


def _call_part(call: ToolCall) -> dict:
    function: dict = {"name": call.name, "args": parse_arguments(call.arguments)}
    if call.id and not call.id.startswith(GENERATED_TOOL_ID_PREFIX):
        function["id"] = call.id
    part: dict = {"functionCall": function}
    if call.origin == NAME and call.signature:
        part["thoughtSignature"] = call.signature  # signatures go back only to the vendor that issued them
    return part


def _response_part(result: ToolResult) -> dict:
    text = result.text()
    response = {"functionResponse": {"name": result.name or "", "response": {ERROR_KEY if result.is_error
                                                                              else OUTPUT_KEY: text}}}
    if result.call_id and not result.call_id.startswith(GENERATED_TOOL_ID_PREFIX):
        response["functionResponse"]["id"] = result.call_id
    return response


def _part(part: Part) -> list[dict]:
    if isinstance(part, Text):
        return [{"text": part.text}] if part.text else []
    if isinstance(part, Image):
        return [_media(part)]
    if isinstance(part, ToolCall):
        return [_call_part(part)]
    if isinstance(part, ToolResult):
        # Lossy: a function response carries text; a result's images follow it in the same turn.
        return [_response_part(part), *(_media(p) for p in part.content if isinstance(p, Image))]
    if isinstance(part, Reasoning) and part.origin == NAME and (part.text or part.signature):
        thought: dict = {"text": part.text, "thought": True}
        if part.signature:
            thought["thoughtSignature"] = part.signature
        return [thought]
    return []  # Lossy: other vendors' reasoning is not replayed to Gemini.


def _contents(request: Request) -> list[dict]:
    out: list[dict] = []
    for message in request.messages:
        if message.role not in (ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL):
            continue  # instructions go to systemInstruction
        role = ROLE_MODEL if message.role == ROLE_ASSISTANT else ROLE_USER
        parts = [p for part in message.parts for p in _part(part)]
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"] += parts
        else:
            out.append({"role": role, "parts": parts})
    return out


def _generation_config(request: Request, caps: Capabilities) -> dict:
    config: dict = {}
    for key, value in (("maxOutputTokens", request.max_tokens), ("temperature", request.temperature),
                       ("topP", request.top_p), ("topK", request.top_k), ("seed", request.seed)):
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = request.stop
    if request.response_format is not None:
        config["responseMimeType"] = JSON_MIME
        if request.response_format.schema is not None:
            config["responseJsonSchema"] = request.response_format.schema
    thinking = _thinking_config(request.reasoning, caps)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _thinking_config(reasoning: ReasoningConfig | None, caps: Capabilities) -> dict:
    """A level (Gemini 3) or a budget (2.5), never both: Gemini refuses the pair."""
    if reasoning is None or caps.thinking == THINKING_NONE:
        return {}
    off = not reasoning.enabled or reasoning.effort == EFFORT_NONE
    if off:  # a level model cannot turn thinking off: `fit` has already raised it to its lowest level
        return {"thinkingBudget": 0} if caps.thinking == THINKING_BUDGET else {}
    out: dict = {"includeThoughts": reasoning.include_thoughts is not False}
    if caps.thinking == THINKING_LEVEL:
        if effort := effort_for(reasoning):
            out["thinkingLevel"] = LEVELS.get(effort, effort.upper())
    elif reasoning.effort in DYNAMIC_EFFORTS:
        out["thinkingBudget"] = DYNAMIC_BUDGET
    elif (budget := budget_for(reasoning)) is not None:
        out["thinkingBudget"] = budget
    return out


def request_from_ir(request: Request, caps: Capabilities | None = None) -> dict:
    """`caps`: what the target model accepts (the built-in table's entry for the request's model if not given)."""
    caps = caps or lookup(FAMILY, request.model)
    body: dict = {"contents": _contents(request)}
    system = instructions(request)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [
            {"name": t.name, **({"description": t.description} if t.description else {}),
             **({"parametersJsonSchema": t.parameters} if t.parameters else {})}
            for t in map(as_function, request.tools)]}]
        choice = request.tool_choice
        if choice is not None:
            calling: dict = {"mode": MODE_TO.get(choice.mode, "AUTO")}
            if choice.mode == CHOICE_TOOL and choice.name:
                calling["allowedFunctionNames"] = [choice.name]
            body["toolConfig"] = {"functionCallingConfig": calling}
    # Lossy: parallel_tool_calls and user have no Gemini field and are dropped.
    config = _generation_config(request, caps)
    if config:
        body["generationConfig"] = config
    return body


# --- answers


def usage_to_ir(usage: dict) -> Usage:
    """Tool-use prompt tokens count as input; thoughts as output (Gemini counts them apart from candidates)."""
    thoughts = count(usage, "thoughtsTokenCount", "thoughts_token_count")
    return Usage(
        input_tokens=count(usage, "promptTokenCount", "prompt_token_count")
        + count(usage, "toolUsePromptTokenCount", "tool_use_prompt_token_count"),
        output_tokens=count(usage, "candidatesTokenCount", "candidates_token_count") + thoughts,
        reasoning_tokens=thoughts,
        cache_read_tokens=count(usage, "cachedContentTokenCount", "cached_content_token_count"),
    )


def usage_from_ir(usage: Usage) -> dict:
    out = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    # Lossy: Gemini has no cache-write count.
    return out


def _finish_of(body: dict) -> str:
    candidates = body.get("candidates") or ()
    if not candidates and (_get(body, "promptFeedback") or {}).get("blockReason"):
        return FINISH_CONTENT_FILTER
    return finish_to_ir(_get(candidates[0], "finishReason") if candidates else None)


def answer_to_ir(body: dict, ids: ToolIds | None = None) -> Answer:
    ids = ids or ToolIds()
    candidates = body.get("candidates") or [{}]
    parts = _model_parts((candidates[0].get("content") or {}).get("parts"))  # Lossy: only the first candidate.
    for ordinal, call in enumerate(p for p in parts if isinstance(p, ToolCall)):
        vendor_id = None if call.id.startswith(GENERATED_TOOL_ID_PREFIX) else call.id
        call.id = ids.issue(vendor_id, call.name, parse_arguments(call.arguments), ordinal)
    return Answer(
        id=_get(body, "responseId") or "",
        model=_get(body, "modelVersion") or "",
        parts=parts,
        finish=_finish_of(body),
        usage=usage_to_ir(_get(body, "usageMetadata") or {}),
    )


def _answer_part(part: Text | Reasoning | ToolCall) -> dict | None:
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Reasoning):
        thought: dict = {"text": part.text, "thought": True}
        if part.origin == NAME and part.signature:
            thought["thoughtSignature"] = part.signature
        return thought if part.text or "thoughtSignature" in thought else None
    if isinstance(part, ToolCall):
        call = _call_part(part)
        call["functionCall"]["id"] = part.id  # the client sends it back with the result
        return call
    return None


def answer_from_ir(answer: Answer, request: Request) -> dict:
    finish = client_finish(answer.finish, bool(answer.tool_calls()))
    parts = [p for p in map(_answer_part, answer.parts) if p is not None]
    candidate = {"content": {"role": ROLE_MODEL, "parts": parts},
                 "finishReason": FINISH_TO.get(finish, FINISH_STOP_NAME),
                 "index": 0}
    return {"candidates": [candidate], "usageMetadata": usage_from_ir(answer.usage),
            "modelVersion": answer.model or request.model, "responseId": answer.id}


def error_from_ir(error: Error) -> tuple[int, bytes]:
    body = gemini_error(error.status, error.message)
    return body["code"], dumps({"error": body})


# --- streams


class GeminiDecoder(Decoder):
    """Gemini chunks -> unified events. Calls arrive whole; usage is a cumulative snapshot on each chunk."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._began = False
        self._calls = 0
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        if event.data is None or self._done:
            return []
        chunk = load_object(event.data)
        if chunk is None:
            return []
        if isinstance(chunk.get("error"), dict):
            self._done = True
            return [error_from_object(chunk["error"])]
        out: list[StreamEvent] = []
        if not self._began:
            self._began = True
            out.append(Start(string(_get(chunk, "responseId")), string(_get(chunk, "modelVersion"))))
        candidates = chunk.get("candidates") or ()
        candidate = next((c for c in candidates if c.get("index", 0) == 0), None)  # Lossy: the first only.
        if candidate is not None:
            for part in (candidate.get("content") or {}).get("parts") or ():
                self._part(part, out)
        usage = _get(chunk, "usageMetadata")
        if usage:
            out.append(UsageUpdate(usage_to_ir(usage)))
        finish = _get(candidate, "finishReason") if candidate is not None else None
        if finish or (not candidates and (_get(chunk, "promptFeedback") or {}).get("blockReason")):
            # Lossy: a chunk after the one with finishReason (reported of early models) is not translated.
            self._done = True
            out.append(Finish(_finish_of(chunk)))
        return out

    def _part(self, part: dict, out: list[StreamEvent]) -> None:
        call = _get(part, "functionCall")
        signature = _get(part, "thoughtSignature")
        if call is not None:
            index, self._calls = self._calls, self._calls + 1
            name = string(call.get("name"))
            args = call.get("args") or {}
            call_id = self._ids.issue(string(call.get("id")), name, args, index)
            out += [ToolCallStart(index, call_id, name, signature, NAME if signature else None),
                    ToolArgumentsDelta(index, dump_arguments(args)), ToolCallEnd(index)]
        elif part.get("thought"):
            if string(part.get("text")):
                out.append(ReasoningDelta(part["text"]))
            if signature:
                out.append(ReasoningEnd(signature, NAME))
        elif string(part.get("text")):
            out.append(TextDelta(part["text"]))  # Lossy: a signature on a text part is dropped.


class GeminiEncoder(Encoder):
    """Unified events -> Gemini chunks (`data:` lines only, CRLF like Google). Tool calls go out whole once their
    arguments are complete; finishReason and the final usage ride on the last chunk."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._model = request.model
        self._id = ""
        self._calls: dict[int, ToolCall] = {}
        self._sent = False

    def _chunk(self, parts: list[dict] | None, finish: str | None = None) -> bytes:
        candidate: dict = {"content": {"role": ROLE_MODEL, "parts": parts} if parts else {"role": ROLE_MODEL},
                           "index": 0}
        if finish:
            candidate["finishReason"] = finish
        chunk: dict = {"candidates": [candidate]}
        if self.usage is not None or finish:
            chunk["usageMetadata"] = usage_from_ir(self.usage or Usage())
        chunk["modelVersion"] = self._model
        if self._id:
            chunk["responseId"] = self._id
        return b"data: " + dumps(chunk) + CRLF + CRLF

    def start(self, event: Start) -> bytes:
        self._id = event.id
        self._model = event.model or self._model
        return b""

    def text(self, text: str) -> bytes:
        return self._chunk([{"text": text}])

    def reasoning(self, text: str) -> bytes:
        return self._chunk([{"text": text, "thought": True}])

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        if event.origin == NAME and event.signature:
            return self._chunk([{"text": "", "thought": True, "thoughtSignature": event.signature}])
        return b""  # Lossy: another vendor's signature is not Gemini's.

    def tool_start(self, event: ToolCallStart) -> bytes:
        self._calls[event.index] = ToolCall(event.id, event.name, "", event.signature, event.origin)
        return b""

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        call = self._calls.get(index)
        if call is not None:
            call.arguments += fragment  # Gemini has no argument fragments: a call goes out whole
        return b""

    def tool_end(self, index: int) -> bytes:
        call = self._calls.pop(index, None)
        return self._chunk([self._call(call)]) if call is not None else b""

    def _call(self, call: ToolCall) -> dict:
        self._sent = True
        part = _call_part(call)
        part["functionCall"]["id"] = call.id
        return part

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        # A call cut mid-arguments is never sent: no agent runs half-written arguments.
        calls = [self._call(c) for _, c in sorted(self._calls.items()) if not truncated or whole_arguments(c.arguments)]
        self._calls = {}
        finish = FINISH_LENGTH if truncated else client_finish(reason, self._sent)
        return self._chunk(calls, FINISH_TO.get(finish, FINISH_STOP_NAME))

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        return b"data: " + dumps({"error": gemini_error(status, message)}) + CRLF + CRLF


def endpoint(model: str, stream: bool) -> tuple[str, str]:
    model = segment(model.removeprefix(MODELS_PREFIX))
    if stream:
        return STREAM_PATH.format(model=model), STREAM_QUERY
    return GENERATE_PATH.format(model=model), ""


TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, endpoint, answer_to_ir, answer_from_ir,
    GeminiDecoder, GeminiEncoder, error_from_ir,
)
