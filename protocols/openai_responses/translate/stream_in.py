"""An upstream's OpenAI Responses stream read into unified stream events (the translator's decoder)."""

from __future__ import annotations

import json

from protocols.events import Event
from protocols.openai_responses.translate.answer_in import finish_to_ir
from protocols.openai_responses.translate.request_in import content_to_ir, reasoning_to_ir
from protocols.openai_responses.translate.vocabulary import (
    CUSTOM_INPUT_DELTA,
    ITEM_CUSTOM_CALL,
    NAME,
    SUMMARY_PART_ADDED,
    SUMMARY_SEPARATOR,
)
from protocols.openai_responses.usage import usage_to_ir
from protocols.openai_responses.vocabulary import (
    ARGUMENTS_DELTA,
    COMPLETED,
    ERROR,
    FAILED,
    INCOMPLETE,
    ITEM_FUNCTION_CALL,
    ITEM_MESSAGE,
    ITEM_REASONING,
    OUTPUT_ITEM_ADDED,
    OUTPUT_ITEM_DONE,
    OUTPUT_TEXT_DELTA,
    PRELUDE,
    REASONING_TEXT_DELTA,
    REFUSAL_DELTA,
    SUMMARY_TEXT_DELTA,
)
from protocols.sse import load_object
from protocols.translate.base import Decoder
from protocols.translate.common import error_from_object, string
from protocols.unified import Text, ToolIds
from protocols.unified_stream import (
    Error,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)

CUSTOM_ARGUMENTS_HEAD, CUSTOM_ARGUMENTS_TAIL = '{"input": "', '"}'  # a custom call's input as unified arguments


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
                    Finish(finish_to_ir(response))]
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
            reasoning = reasoning_to_ir(item)
            out = [] if streamed or not reasoning.text else [ReasoningDelta(reasoning.text)]
            return [*out, ReasoningEnd(reasoning.signature, NAME, id=item.get("id"))]
        if kind == ITEM_MESSAGE and not streamed:
            text = "".join(p.text for p in content_to_ir(item.get("content")) if isinstance(p, Text))
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
