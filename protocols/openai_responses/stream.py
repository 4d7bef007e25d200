"""OpenAI Responses: `POST .../responses` (the generation call only, not `/responses/{id}`)."""

from __future__ import annotations

from typing import Any

from protocols.base import Aggregator, Protocol, Repairer, whole_json
from protocols.errors import openai_error
from protocols.events import Event
from protocols.openai_responses.tracker import ResponseTracker
from protocols.openai_responses.vocabulary import (
    CREATED,
    EMPTY_ITEMS,
    EMPTY_OPENINGS,
    ERROR,
    FAILED,
    FAILURES,
    INCOMPLETE,
    ITEM_CUSTOM_CALL,
    ITEM_FUNCTION_CALL,
    OUTPUT_ITEM_ADDED,
    PATH_SUFFIX,
    PRELUDE,
    RATE_LIMITED_CODE,
    RESPONSE_EVENTS,
    SERVER_ERROR_CODE,
    STATUS_INCOMPLETE,
    TERMINAL,
)
from protocols.sse import COMMENT_HEARTBEAT, dumps, json_event, load_object


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
