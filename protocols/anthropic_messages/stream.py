"""Anthropic Messages: `POST .../v1/messages` (not `/v1/messages/count_tokens` or the batch API)."""

from __future__ import annotations

import json

from protocols.base import Aggregator, Protocol, Repairer, count, member, whole_json
from protocols.errors import anthropic_error
from protocols.events import Event
from protocols.sse import dumps, json_event, load_object

PATH_SUFFIX = "/v1/messages"
HEARTBEAT = b'event: ping\ndata: {"type": "ping"}\n\n'

MESSAGE_START = "message_start"
CONTENT_BLOCK_START = "content_block_start"
CONTENT_BLOCK_DELTA = "content_block_delta"
CONTENT_BLOCK_STOP = "content_block_stop"
MESSAGE_DELTA = "message_delta"
MESSAGE_STOP = "message_stop"
PING = "ping"
ERROR = "error"
CONTENT_EVENTS = frozenset({CONTENT_BLOCK_DELTA, MESSAGE_DELTA, MESSAGE_STOP})
# A block that opens empty (text "", thinking "") carries no token yet: a stall after it is still retried.
# Other blocks (tool_use with its name, redacted_thinking, server tools) do.
EMPTY_BLOCKS = frozenset({"text", "thinking"})

TEXT_DELTA = "text_delta"
INPUT_JSON_DELTA = "input_json_delta"
THINKING_DELTA = "thinking_delta"
SIGNATURE_DELTA = "signature_delta"
CITATIONS_DELTA = "citations_delta"

STOP_END_TURN = "end_turn"
STOP_MAX_TOKENS = "max_tokens"
MESSAGE_TYPE = "message"
ROLE_ASSISTANT = "assistant"
SYNTHETIC_ID = "msg_rotator"


def _message_start(model: str) -> dict:
    return {
        "type": MESSAGE_START,
        "message": {
            "id": SYNTHETIC_ID,
            "type": MESSAGE_TYPE,
            "role": ROLE_ASSISTANT,
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        },
    }


def _event(payload: dict) -> bytes:
    return json_event(payload, payload["type"])


class MessagesRepairer(Repairer):
    """Ends a cut stream by closing the open block, then `message_delta` (max_tokens) and `message_stop`."""

    def __init__(self, body: dict) -> None:
        self._model = body.get("model") or ""
        self._message_started = False
        self._open_block: int | None = None
        self._stop_reason: str | None = None
        self._usage: dict = {}  # the cumulative usage the stream reported
        self._deltas = 0  # content deltas sent, for the usage of an ending Rotator writes

    def feed(self, event: Event) -> bytes:
        if event.event == CONTENT_BLOCK_DELTA:
            self.started = True
            self._deltas += 1
            return event.raw
        if event.data is None or event.event == PING:
            return event.raw
        payload = load_object(event.data)
        if payload is None:
            return event.raw
        kind = payload.get("type") or event.event
        if kind in CONTENT_EVENTS:
            self.started = True
        if kind == CONTENT_BLOCK_START:
            self._open_block = payload.get("index", 0)
            block = payload.get("content_block") or {}
            if block.get("type") not in EMPTY_BLOCKS or block.get("text") or block.get("thinking"):
                self.started = True
        elif kind == CONTENT_BLOCK_STOP:
            self._open_block = None
        elif kind == MESSAGE_START:
            self._message_started = True
            self._take_usage(member(member(payload, "message"), "usage"))
        elif kind == MESSAGE_DELTA:
            self._stop_reason = (payload.get("delta") or {}).get("stop_reason") or self._stop_reason
            self._take_usage(member(payload, "usage"))
        elif kind == CONTENT_BLOCK_DELTA:  # one without its `event:` line
            self._deltas += 1
        elif kind == MESSAGE_STOP:
            self.complete = True
        elif kind == ERROR:
            self.started = self.complete = self.failed = True
        return event.raw

    @property
    def finished(self) -> bool:
        return self.complete or self._stop_reason is not None

    def length_ending(self) -> bytes:
        events = []
        if not self._message_started:
            events.append(_message_start(self._model))
        if self._open_block is not None:
            events.append({"type": CONTENT_BLOCK_STOP, "index": self._open_block})
        if self._stop_reason is None:
            delta = {"stop_reason": STOP_MAX_TOKENS, "stop_sequence": None}
            events.append({"type": MESSAGE_DELTA, "delta": delta, "usage": self._counted_usage()})
        events.append({"type": MESSAGE_STOP})
        return b"".join(_event(payload) for payload in events)

    def _take_usage(self, usage: dict) -> None:
        self._usage.update((key, value) for key, value in usage.items() if value is not None)  # cumulative

    def _counted_usage(self) -> dict:
        """The cumulative usage a `message_delta` carries, like the vendor's: the input and cache counts the
        stream reported (else 0), the output counted as one token per content delta sent, or what the stream
        reported if more."""
        reported = self._usage
        return {
            "input_tokens": count(reported, "input_tokens"),
            "cache_creation_input_tokens": count(reported, "cache_creation_input_tokens"),
            "cache_read_input_tokens": count(reported, "cache_read_input_tokens"),
            "output_tokens": max(count(reported, "output_tokens"), self._deltas),
        }

    def error_event(self, message: str, status: int = 502) -> bytes:
        self.complete = self.failed = True
        return _event({"type": ERROR, "error": anthropic_error(status, message)})


class _Block:
    __slots__ = ("start", "text", "json", "thinking", "signature", "citations", "stopped")

    def __init__(self, start: dict) -> None:
        self.start = start
        self.stopped = False
        self.text: list[str] = []
        self.json: list[str] = []
        self.thinking: list[str] = []
        self.signature: str | None = None
        self.citations: list = []

    def feed(self, delta: dict) -> None:
        kind = delta.get("type")
        if kind == TEXT_DELTA:
            self.text.append(delta.get("text") or "")
        elif kind == INPUT_JSON_DELTA:
            self.json.append(delta.get("partial_json") or "")
        elif kind == THINKING_DELTA:
            self.thinking.append(delta.get("thinking") or "")
        elif kind == SIGNATURE_DELTA:
            self.signature = delta.get("signature")
        elif kind == CITATIONS_DELTA:
            self.citations.append(delta.get("citation"))

    def result(self) -> dict:
        block = dict(self.start)
        if self.text:
            block["text"] = (block.get("text") or "") + "".join(self.text)
        if self.citations:
            block["citations"] = (block.get("citations") or []) + self.citations
        if "input" in block:
            block["input"] = _parse_input("".join(self.json)) if self.json else (block["input"] or {})
        if self.thinking:
            block["thinking"] = (block.get("thinking") or "") + "".join(self.thinking)
        if self.signature is not None:
            block["signature"] = self.signature
        return block


def _parse_input(text: str) -> dict:
    """A tool's input from its concatenated JSON fragments; {} if there are none or they were cut short."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class MessagesAggregator(Aggregator):
    """Folds events into a `message`: text, thinking with signatures, tool_use input, the last cumulative usage."""

    def __init__(self, body: dict) -> None:
        self._model = body.get("model") or ""
        self._message: dict | None = None
        self._blocks: dict[int, _Block] = {}
        self._usage: dict = {}
        self._delta: dict = {}
        self._stopped = False

    @property
    def truncated(self) -> bool:
        return not self._stopped and self.error is None

    def feed(self, event: Event) -> None:
        if event.data is None or event.event == PING:
            return
        payload = load_object(event.data)
        if payload is None:
            return
        kind = payload.get("type") or event.event
        if kind == CONTENT_BLOCK_DELTA:
            block = self._blocks.get(payload.get("index", 0))
            if block is not None:
                block.feed(payload.get("delta") or {})
        elif kind == CONTENT_BLOCK_START:
            self._blocks[payload.get("index", len(self._blocks))] = _Block(payload.get("content_block") or {})
        elif kind == CONTENT_BLOCK_STOP:
            block = self._blocks.get(payload.get("index", 0))
            if block is not None:
                block.stopped = True
        elif kind == MESSAGE_START:
            self._message = payload.get("message") or {}
            self._usage = dict(self._message.get("usage") or {})
        elif kind == MESSAGE_DELTA:
            self._delta.update(payload.get("delta") or {})
            self._usage.update((key, value) for key, value in (payload.get("usage") or {}).items() if value is not None)
        elif kind == MESSAGE_STOP:
            self._stopped = True
        elif kind == ERROR:
            self.error = payload.get("error") or {}

    def result(self) -> dict:
        message = {**(self._message or _message_start(self._model)["message"]), **self._delta}
        message["content"] = [block.result() for _, block in sorted(self._blocks.items()) if self._whole(block)]
        if self.truncated and not self._delta.get("stop_reason"):
            message["stop_reason"] = STOP_MAX_TOKENS
            message["stop_sequence"] = None
        elif not message.get("stop_reason"):
            message["stop_reason"] = STOP_END_TURN
        message["usage"] = self._usage or {"input_tokens": 0, "output_tokens": 0}
        return message

    def _whole(self, block: _Block) -> bool:
        """A tool call cut before its block stopped is left out: no agent runs half-written input."""
        return block.stopped or not self.truncated or "input" not in block.start or whole_json("".join(block.json))


class AnthropicMessages(Protocol):
    name = "anthropic_messages"
    family = "anthropic"
    heartbeat = HEARTBEAT
    path_suffix = PATH_SUFFIX
    repairer_class = MessagesRepairer
    aggregator_class = MessagesAggregator

    def error_body(self, status: int, message: str) -> bytes:
        return dumps({"type": ERROR, "error": anthropic_error(status, message)})

