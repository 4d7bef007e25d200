"""Unified stream events written as the OpenAI Responses client's stream (the translator's encoder)."""

from __future__ import annotations

from protocols.errors import openai_error
from protocols.openai_responses.translate.answer_out import (
    call_item,
    close_response,
    message_item,
    output_item_id,
    reasoning_item,
    response_id_for,
    response_object,
    usage_from_ir,
)
from protocols.openai_responses.translate.vocabulary import (
    CUSTOM_INPUT_DELTA,
    ITEM_CUSTOM_CALL,
    NAME,
    SUMMARY_PART_ADDED,
    SYNTHETIC_ID,
)
from protocols.openai_responses.vocabulary import (
    ARGUMENTS_DELTA,
    COMPLETED,
    CONTENT_PART_ADDED,
    CREATED,
    ERROR,
    FAILED,
    IN_PROGRESS,
    INCOMPLETE,
    ITEM_MESSAGE,
    ITEM_REASONING,
    OUTPUT_ITEM_ADDED,
    OUTPUT_ITEM_DONE,
    OUTPUT_TEXT_DELTA,
    PART_OUTPUT_TEXT,
    PART_SUMMARY_TEXT,
    RATE_LIMITED_CODE,
    SERVER_ERROR_CODE,
    STATUS_IN_PROGRESS,
    STATUS_INCOMPLETE,
    SUMMARY_TEXT_DELTA,
)
from protocols.sse import dumps
from protocols.translate.base import Encoder
from protocols.translate.tools import client_tool
from protocols.unified import FINISH_LENGTH, ROLE_ASSISTANT, Request, Tool, ToolCall, Usage
from protocols.unified_stream import ReasoningEnd, Start, ToolCallStart, whole_arguments

STATUS_FAILED = "failed"
SUMMARY_PART_DONE = "response.reasoning_summary_part.done"
SUMMARY_TEXT_DONE = "response.reasoning_summary_text.done"
OUTPUT_TEXT_DONE = "response.output_text.done"
CONTENT_PART_DONE = "response.content_part.done"
ARGUMENTS_DONE = "response.function_call_arguments.done"
CUSTOM_INPUT_DONE = "response.custom_tool_call_input.done"


class _Item:
    """An output item the encoder has opened: its output index and what streamed into it."""

    __slots__ = ("index", "id", "kind", "text", "tool")

    def __init__(self, index: int, item_id: str, kind: str) -> None:
        self.index = index
        self.id = item_id
        self.kind = kind
        self.text: list[str] = []
        self.tool: Tool | None = None  # the client's custom or namespaced tool the call is for


class _Response:
    """The response a Responses stream writes: its events' sequence numbers, the response object once begun, and
    its output items as they are added and done."""

    def __init__(self, request: Request, created: int) -> None:
        self.request = request
        self.created = created
        self.object: dict | None = None
        self.sequence = 0
        self.output: dict[int, dict] = {}  # output_index -> finished item
        self.count = 0

    def event(self, kind: str, **fields: object) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"

    def begin(self, source_id: str = "", model: str = "", created: int = 0) -> tuple[bytes, dict]:
        """The events that begin the response, and the response."""
        response_id = response_id_for(source_id)
        response = self.object = response_object(response_id, model, created or self.created, self.request)
        return self.event(CREATED, response=response) + self.event(IN_PROGRESS, response=response), response

    def begun(self) -> tuple[bytes, dict]:
        """The response, after the events that begin it if they were not sent yet."""
        return (b"", self.object) if self.object is not None else self.begin()

    def add(self, kind: str, prefix: str, item: dict) -> tuple[bytes, _Item]:
        out, response = self.begun()
        opened = _Item(self.count, output_item_id(prefix, response["id"], self.count), kind)
        self.count += 1
        out += self.event(OUTPUT_ITEM_ADDED, output_index=opened.index, item={"id": opened.id, **item})
        return out, opened

    def done(self, opened: _Item, item: dict) -> bytes:
        self.output[opened.index] = item
        return self.event(OUTPUT_ITEM_DONE, output_index=opened.index, item=item)

    def items(self) -> list[dict]:
        """The finished output items, in order."""
        return [self.output[i] for i in sorted(self.output)]


class ResponsesEncoder(Encoder):
    """Unified events -> Responses events: response.created, each output item's lifecycle (added, deltas, done)
    with consecutive sequence numbers, and response.completed or response.incomplete with the whole output."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._request = request
        self._out = _Response(request, created)
        self._open: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, tuple[_Item, ToolCall]] = {}  # unified tool call index -> its open item, its call

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
        return (self._out.event(OUTPUT_TEXT_DONE, **ids, text=text, logprobs=[])
                + self._out.event(CONTENT_PART_DONE, **ids, part=part)
                + self._out.done(opened, message_item(opened.id, text)))

    def _close_reasoning(self, opened: _Item, signature: str | None, origin: str | None) -> bytes:
        text = "".join(opened.text)
        ids = {"item_id": opened.id, "output_index": opened.index, "summary_index": 0}
        return (self._out.event(SUMMARY_TEXT_DONE, **ids, text=text)
                + self._out.event(SUMMARY_PART_DONE, **ids, part={"type": PART_SUMMARY_TEXT, "text": text})
                + self._out.done(opened, reasoning_item(opened.id, text, signature, origin)))

    def start(self, event: Start) -> bytes:
        return b"" if self._out.object is not None else self._out.begin(event.id, event.model, event.created)[0]

    def text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.kind != ITEM_MESSAGE:
            out = self._close()
            added, self._open = self._out.add(ITEM_MESSAGE, "msg", {"type": ITEM_MESSAGE, "status": STATUS_IN_PROGRESS,
                                                                 "content": [], "role": ROLE_ASSISTANT})
            part = {"type": PART_OUTPUT_TEXT, "annotations": [], "logprobs": [], "text": ""}
            out += added + self._out.event(CONTENT_PART_ADDED, item_id=self._open.id, output_index=self._open.index,
                                       content_index=0, part=part)
        self._open.text.append(text)
        return out + self._out.event(OUTPUT_TEXT_DELTA, item_id=self._open.id, output_index=self._open.index,
                                 content_index=0, delta=text, logprobs=[])

    def reasoning(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.kind != ITEM_REASONING:
            out = self._close()
            added, self._open = self._out.add(ITEM_REASONING, "rs", {"type": ITEM_REASONING, "summary": []})
            out += added + self._out.event(SUMMARY_PART_ADDED, item_id=self._open.id, output_index=self._open.index,
                                       summary_index=0, part={"type": PART_SUMMARY_TEXT, "text": ""})
        self._open.text.append(text)
        return out + self._out.event(SUMMARY_TEXT_DELTA, item_id=self._open.id, output_index=self._open.index,
                                 summary_index=0, delta=text)

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        if self._open is not None and self._open.kind == ITEM_REASONING:
            opened, self._open = self._open, None
            return self._close_reasoning(opened, event.signature, event.origin)
        if event.origin == NAME and event.signature:  # opaque reasoning without text
            out = self._close()
            added, opened = self._out.add(ITEM_REASONING, "rs", {"type": ITEM_REASONING, "summary": []})
            return out + added + self._out.done(opened, reasoning_item(opened.id, "", event.signature, event.origin))
        return b""  # Lossy: another vendor's opaque reasoning has no place here.

    def tool_start(self, event: ToolCallStart) -> bytes:
        call = ToolCall(event.id, event.name)
        tool = client_tool(self._request, event.name)
        item = call_item("", call, tool, STATUS_IN_PROGRESS)
        del item["id"]
        out = self._close()
        added, opened = self._out.add(item["type"], "fc", item)
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
        return self._out.event(ARGUMENTS_DELTA, item_id=opened.id, output_index=opened.index, delta=fragment)

    def tool_end(self, index: int) -> bytes:
        open_call = self._calls.pop(index, None)
        if open_call is None:
            return b""
        opened, call = open_call
        item = call_item(opened.id, call, opened.tool)
        ids = {"item_id": opened.id, "output_index": opened.index}
        if opened.kind == ITEM_CUSTOM_CALL:
            delta = self._out.event(CUSTOM_INPUT_DELTA, **ids, delta=item["input"]) if item["input"] else b""
            return delta + self._out.event(CUSTOM_INPUT_DONE, **ids, input=item["input"]) + self._out.done(opened, item)
        return self._out.event(ARGUMENTS_DONE, **ids, arguments=call.arguments) + self._out.done(opened, item)

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        out, begun = self._out.begun()
        out += self._close()
        for index, (_, call) in list(self._calls.items()):
            # A call cut mid-arguments is never finished, and is left out of the output: no agent runs it.
            if not truncated or whole_arguments(call.arguments):
                out += self.tool_end(index)
        finish = FINISH_LENGTH if truncated else reason
        response = {**begun, "output": self._out.items()}
        response = close_response(response, finish, self.usage or Usage())
        terminal = INCOMPLETE if response["status"] == STATUS_INCOMPLETE else COMPLETED
        return out + self._out.event(terminal, response=response)

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        """The `error` event in both shapes (the nested one the SDK raises on, the flat one the docs describe), then
        the `response.failed` the vendor sends after it, which carries the usage."""
        nested = openai_error(status, message, kind)
        nested["code"] = nested["code"] or SERVER_ERROR_CODE
        out = self._out.event(ERROR, code=nested["code"], message=message, param=None, error=nested)
        response = self._out.object or response_object(SYNTHETIC_ID, "", self._out.created, self._request)
        code = RATE_LIMITED_CODE if status == 429 else SERVER_ERROR_CODE  # of the few response.error knows
        failed = {**response, "output": self._out.items(), "status": STATUS_FAILED,
                  "error": {"code": code, "message": message}, "usage": usage_from_ir(self.counted_usage())}
        return out + self._out.event(FAILED, response=failed)
