"""OpenAI Responses: `POST .../responses` (the generation call only, not `/responses/{id}`)."""

from __future__ import annotations

from typing import Any

from protocols.base import Aggregator, Protocol, Repairer, count, integer, member, whole_json
from protocols.errors import openai_error
from protocols.events import Event
from protocols.sse import COMMENT_HEARTBEAT, dumps, json_event, load_object

PATH_SUFFIX = "/responses"

CREATED = "response.created"
IN_PROGRESS = "response.in_progress"
QUEUED = "response.queued"
COMPLETED = "response.completed"
INCOMPLETE = "response.incomplete"
FAILED = "response.failed"
ERROR = "error"
OUTPUT_ITEM_ADDED = "response.output_item.added"
OUTPUT_ITEM_DONE = "response.output_item.done"
CONTENT_PART_ADDED = "response.content_part.added"
OUTPUT_TEXT_DELTA = "response.output_text.delta"
REFUSAL_DELTA = "response.refusal.delta"
ARGUMENTS_DELTA = "response.function_call_arguments.delta"
CUSTOM_INPUT_DELTA = "response.custom_tool_call_input.delta"
SUMMARY_TEXT_DELTA = "response.reasoning_summary_text.delta"
REASONING_TEXT_DELTA = "response.reasoning_text.delta"

PRELUDE = frozenset({CREATED, IN_PROGRESS, QUEUED})
# Structure that opens an empty message or reasoning item carries no token yet: a stall after it is still retried.
EMPTY_OPENINGS = frozenset({CONTENT_PART_ADDED, "response.reasoning_summary_part.added"})
EMPTY_ITEMS = frozenset({"message", "reasoning"})
TERMINAL = frozenset({COMPLETED, INCOMPLETE, FAILED, ERROR})
FAILURES = frozenset({FAILED, ERROR})

RESPONSE_EVENTS = "response."  # the prefix of the API's own event types (besides `error`)

STATUS_IN_PROGRESS = "in_progress"
STATUS_INCOMPLETE = "incomplete"
STATUS_FAILED = "failed"
REASON_MAX_OUTPUT_TOKENS = "max_output_tokens"
SERVER_ERROR_CODE = "server_error"
RATE_LIMITED_CODE = "rate_limit_exceeded"

ITEM_MESSAGE = "message"
ITEM_FUNCTION_CALL = "function_call"
ITEM_CUSTOM_CALL = "custom_tool_call"
CALL_INPUT = {ITEM_FUNCTION_CALL: "arguments", ITEM_CUSTOM_CALL: "input"}  # what streams into a call item
ITEM_REASONING = "reasoning"
PART_OUTPUT_TEXT = "output_text"
PART_REFUSAL = "refusal"
PART_SUMMARY_TEXT = "summary_text"
PART_REASONING_TEXT = "reasoning_text"
SYNTHETIC_ID = "resp_rotator"


class _OpenItem:
    """An output item between `output_item.added` and `.done`, with the text streamed into it so far."""

    __slots__ = ("item", "parts", "part_types", "arguments", "summary", "reasoning")

    def __init__(self, item: dict) -> None:
        self.item = item
        self.parts: dict[int, list[str]] = {}
        self.part_types: dict[int, str] = {}
        self.arguments: list[str] = []
        self.summary: dict[int, list[str]] = {}
        self.reasoning: dict[int, list[str]] = {}

    def snapshot(self) -> dict:
        """The item as it stands, marked incomplete."""
        kind = self.item.get("type")
        if kind == ITEM_MESSAGE:
            content = [self._part(index) for index in sorted(self.parts)]
            return {**self.item, "content": content, "status": STATUS_INCOMPLETE}
        if isinstance(kind, str) and kind in CALL_INPUT:
            return {**self.item, CALL_INPUT[kind]: "".join(self.arguments), "status": STATUS_INCOMPLETE}
        if kind == ITEM_REASONING:
            item = {**self.item, "status": STATUS_INCOMPLETE}
            item["summary"] = [{"type": PART_SUMMARY_TEXT, "text": "".join(self.summary[i])}
                               for i in sorted(self.summary)]
            if self.reasoning:
                item["content"] = [
                    {"type": PART_REASONING_TEXT, "text": "".join(self.reasoning[i])} for i in sorted(self.reasoning)
                ]
            return item
        return self.item

    def pieces(self) -> tuple[int, int]:
        """The deltas streamed into the item (about one token each): all of them, and those of reasoning."""
        reasoning = sum(map(len, self.summary.values())) + sum(map(len, self.reasoning.values()))
        return sum(map(len, self.parts.values())) + len(self.arguments) + reasoning, reasoning

    def _part(self, index: int) -> dict:
        text = "".join(self.parts[index])
        if self.part_types.get(index) == PART_REFUSAL:
            return {"type": PART_REFUSAL, "refusal": text}
        return {"type": PART_OUTPUT_TEXT, "text": text, "annotations": []}


class ResponseTracker:
    """What a Responses stream has said so far: the response snapshot, its output items, its sequence numbers."""

    def __init__(self, body: dict) -> None:
        self.model = body.get("model") or ""
        self.snapshot: dict | None = None
        self.final: dict | None = None
        self.error: dict | None = None
        self.usage: dict | None = None
        self.open: dict[Any, _OpenItem] = {}  # int keys, looked up by whatever output_index an event carries
        self.done: dict[int, dict] = {}
        self._done_pieces = [0, 0]  # the deltas of the items already done: all, reasoning
        self._last_sequence = -1

    def next_sequence(self) -> int:
        self._last_sequence += 1
        return self._last_sequence

    def feed(self, event: dict) -> str | None:
        """Take in one event; its type."""
        kind = event.get("type")
        sequence = event.get("sequence_number")
        self._last_sequence = sequence if isinstance(sequence, int) else self._last_sequence + 1
        if kind in (OUTPUT_TEXT_DELTA, REFUSAL_DELTA):
            item = self.open.get(event.get("output_index"))
            if item is not None:
                index = integer(event, "content_index")
                item.parts.setdefault(index, []).append(_text(event))
                if kind == REFUSAL_DELTA:
                    item.part_types[index] = PART_REFUSAL
        elif kind in (ARGUMENTS_DELTA, CUSTOM_INPUT_DELTA):
            item = self.open.get(event.get("output_index"))
            if item is not None:
                item.arguments.append(_text(event))
        elif kind in (SUMMARY_TEXT_DELTA, REASONING_TEXT_DELTA):
            item = self.open.get(event.get("output_index"))
            if item is not None:
                texts = item.summary if kind == SUMMARY_TEXT_DELTA else item.reasoning
                index = integer(event, "summary_index" if kind == SUMMARY_TEXT_DELTA else "content_index")
                texts.setdefault(index, []).append(_text(event))
        elif kind == CONTENT_PART_ADDED:
            item = self.open.get(event.get("output_index"))
            if item is not None:
                index = integer(event, "content_index")
                item.parts.setdefault(index, [])
                item.part_types[index] = _object(event, "part").get("type") or PART_OUTPUT_TEXT
        elif kind == OUTPUT_ITEM_ADDED:
            index = integer(event, "output_index", len(self.open) + len(self.done))
            self.open[index] = _OpenItem(_object(event, "item"))
        elif kind == OUTPUT_ITEM_DONE:
            index = integer(event, "output_index")
            finished = self.open.pop(index, None)
            if finished is not None:
                pieces, reasoning = finished.pieces()
                self._done_pieces[0] += pieces
                self._done_pieces[1] += reasoning
            self.done[index] = _object(event, "item")
        elif kind in PRELUDE or kind in TERMINAL:
            self._feed_response(kind, event)
        return kind

    def _feed_response(self, kind: str, event: dict) -> None:
        response = event.get("response")
        if kind == ERROR:
            nested = event.get("error")
            self.error = nested if isinstance(nested, dict) else {k: event.get(k) for k in ("code", "message", "param")}
        elif not isinstance(response, dict):
            return
        elif kind in TERMINAL:
            self.final = response
        else:
            self.snapshot = response
        if isinstance(response, dict) and response.get("usage"):
            self.usage = response["usage"]

    def incomplete_response(self) -> dict:
        """The response as it stands, with status incomplete for running out of output tokens."""
        output = {**self.done, **{index: item.snapshot() for index, item in self.open.items()}}
        return {
            **(self.snapshot or self.synthetic_snapshot()),
            "status": STATUS_INCOMPLETE,
            "incomplete_details": {"reason": REASON_MAX_OUTPUT_TOKENS},
            "output": [output[index] for index in sorted(output)],
            "usage": self.counted_usage(),
        }

    def failed_response(self, error: dict) -> dict:
        """The response as it stands, failed with `error`."""
        return {**self.incomplete_response(), "status": STATUS_FAILED, "incomplete_details": None, "error": error}

    def counted_usage(self) -> dict:
        """A usage like the vendor's for an ending Rotator writes (SDKs read a null one as an unknown finish): the
        input tokens the stream reported (else 0), the output counted as one token per delta sent, or what the
        stream reported if more."""
        reported = self.usage
        pieces, reasoning = self._done_pieces
        for item in self.open.values():
            more, more_reasoning = item.pieces()
            pieces, reasoning = pieces + more, reasoning + more_reasoning
        output = max(count(reported, "output_tokens"), pieces)
        input_tokens = count(reported, "input_tokens")
        reasoning = max(count(member(reported, "output_tokens_details"), "reasoning_tokens"), reasoning)
        cache = member(reported, "input_tokens_details")
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": count(cache, "cached_tokens"),
                                     "cache_write_tokens": count(cache, "cache_write_tokens")},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output,
        }

    def synthetic_snapshot(self) -> dict:
        """A minimal in-progress response, for a stream cut before `response.created`."""
        return {
            "id": SYNTHETIC_ID,
            "object": "response",
            "created_at": 0,
            "status": STATUS_IN_PROGRESS,
            "model": self.model,
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
        }


# An event whose fields have the wrong type cannot be followed (and would break the ending built from them later):
# the reader raises TypeError at once, which the engine treats as a broken body.

def _text(event: dict) -> str:
    delta = event.get("delta") or ""
    if not isinstance(delta, str):
        raise TypeError(f"{event.get('type')}: delta is not a string")
    return delta


def _object(event: dict, key: str) -> dict:
    value = event.get(key) or {}
    if not isinstance(value, dict):
        raise TypeError(f"{event.get('type')}: {key} is not an object")
    return value


def _response_event(kind: str, sequence: int, response: dict) -> bytes:
    return json_event({"type": kind, "sequence_number": sequence, "response": response}, kind)


def _error_event(sequence: int, status: int, message: str, code: str | None = None) -> bytes:
    """The `error` event in both shapes: the nested one the SDK raises on, the flat one the docs describe."""
    nested = openai_error(status, message)
    nested["code"] = code or nested["code"] or SERVER_ERROR_CODE
    flat = {"type": ERROR, "sequence_number": sequence, "code": nested["code"], "message": message, "param": None}
    return json_event({**flat, "error": nested}, ERROR)


# What an error among a stream's first events means, as the status of an error answer saying the same (its code's;
# another code is the request's own fault, as a 400 is).
FAILURE_STATUS = {SERVER_ERROR_CODE: 500, RATE_LIMITED_CODE: 429, "insufficient_quota": 429,
                  "usage_limit_reached": 429, "server_is_overloaded": 503, "slow_down": 503}
REQUEST_FAULT_STATUS = 400


def failure_answer(kind: str, payload: dict) -> tuple[int, bytes]:
    """The (status, body) of the error answer a `response.failed` or `error` event stands for."""
    error: Any = payload.get("error") if kind == ERROR else (payload.get("response") or {}).get("error")
    if kind == ERROR and not isinstance(error, dict):
        error = {k: payload.get(k) for k in ("code", "message", "param")}
    error = error if isinstance(error, dict) else {}
    status = payload.get("status")
    if not (isinstance(status, int) and 400 <= status <= 599):
        code = error.get("code") or error.get("type")
        status = FAILURE_STATUS.get(code, REQUEST_FAULT_STATUS) if isinstance(code, str) else REQUEST_FAULT_STATUS
    return status, dumps({"error": error})


def api_event(kind: object) -> bool:
    """Whether an event's type is one of the API's own (a vendor may add its own: `codex.rate_limits`)."""
    return isinstance(kind, str) and (kind.startswith(RESPONSE_EVENTS) or kind == ERROR)


def _carries_content(kind: str | None, payload: dict) -> bool:
    if kind in PRELUDE or kind in EMPTY_OPENINGS:
        return False
    if not api_event(kind):
        return False  # a vendor's own event (the Codex backend's `codex.rate_limits`): no token of the answer
    if kind == OUTPUT_ITEM_ADDED:
        return (payload.get("item") or {}).get("type") not in EMPTY_ITEMS
    return True


class ResponsesRepairer(Repairer):
    """Ends a cut stream with `response.incomplete` (max_output_tokens) holding the output streamed so far.

    A stream cut before `response.created` gets one first: the SDK's stream helper requires it. A `response.failed`
    or `error` before any content is its `early_error` (see Repairer); events of a type the API does not have (a
    vendor's own, such as the Codex backend's `codex.rate_limits`) carry no content.
    """

    def __init__(self, body: dict) -> None:
        self._tracker = ResponseTracker(body)

    def feed(self, event: Event) -> bytes:
        if event.data is None:
            return event.raw
        payload = load_object(event.data)
        if payload is None:
            return event.raw
        kind = self._tracker.feed(payload)
        if not self.started and (kind in FAILURES or self.early_error is not None):  # inside a 200, before content
            if self.early_error is None:
                self.complete = self.failed = True
                self.early_error = failure_answer(kind or ERROR, payload)
            return event.raw
        if not self.started and _carries_content(kind, payload):
            self.started = True
        if kind in TERMINAL:
            self.complete = True
            self.failed = kind in FAILURES
        return event.raw

    def length_ending(self) -> bytes:
        tracker = self._tracker
        created = b""
        if tracker.snapshot is None:
            tracker.snapshot = tracker.synthetic_snapshot()
            created = _response_event(CREATED, tracker.next_sequence(), tracker.snapshot)
        return created + _response_event(INCOMPLETE, tracker.next_sequence(), tracker.incomplete_response())

    def error_event(self, message: str, status: int = 502) -> bytes:
        """The `error` event, then the `response.failed` the vendor sends after it, which carries the usage."""
        self.complete = self.failed = True
        tracker = self._tracker
        error = _error_event(tracker.next_sequence(), status, message)
        code = RATE_LIMITED_CODE if status == 429 else SERVER_ERROR_CODE  # of the few response.error knows
        failed = tracker.failed_response({"code": code, "message": message})
        return error + _response_event(FAILED, tracker.next_sequence(), failed)


class ResponsesAggregator(Aggregator):
    """The final `response` of the stream, or one built from its items if the stream was cut."""

    def __init__(self, body: dict) -> None:
        self._tracker = ResponseTracker(body)

    @property
    def truncated(self) -> bool:
        return self._tracker.final is None and self._tracker.error is None

    def feed(self, event: Event) -> None:
        if event.data is None:
            return
        payload = load_object(event.data)
        if payload is None:
            return
        self._tracker.feed(payload)
        if self._tracker.error is not None:
            self.error = self._tracker.error
        elif self._tracker.final is not None and self._tracker.final.get("error"):
            self.error = self._tracker.final["error"]

    def result(self) -> dict:
        if self._tracker.final is not None:
            return self._tracker.final
        response = self._tracker.incomplete_response()
        # A call cut before its item was done is left out: no agent runs half-written arguments (or a custom
        # call's raw input, which nothing can tell whole).
        response["output"] = [item for item in response["output"] if not _cut_call(item)]
        return response


def _cut_call(item: dict) -> bool:
    return item.get("status") == STATUS_INCOMPLETE and (
        item.get("type") == ITEM_CUSTOM_CALL or item.get("type") == ITEM_FUNCTION_CALL
        and not whole_json(item.get("arguments") or ""))


class OpenAIResponses(Protocol):
    name = "openai_responses"
    family = "openai"
    heartbeat = COMMENT_HEARTBEAT
    path_suffix = PATH_SUFFIX
    repairer_class = ResponsesRepairer
    aggregator_class = ResponsesAggregator

    def error_body(self, status: int, message: str) -> bytes:
        return dumps({"error": openai_error(status, message)})

    def folds(self, body: dict) -> bool:
        """(A background response's answer is the response queued, polled for by its id: a stream of it would hold
        the client until it is done.)"""
        return body.get("background") is not True

    def makes_state(self, body: dict) -> bool:
        """A background response, or one stored: `store` true or left out (the API's default is true)."""
        return body.get("background") is True or body.get("store") is not False
