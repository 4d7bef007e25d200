"""What a Responses stream has said so far (`ResponseTracker`): its response snapshot, its output items (those still
open with the text streamed into them), its sequence numbers; what a repairer ends a cut stream with and a
continuation splices onto (protocols/openai_responses/stream.py, resume.py)."""

from __future__ import annotations

from typing import Any

from protocols.base import count, integer, member
from protocols.openai_responses.vocabulary import (
    ARGUMENTS_DELTA,
    CALL_INPUT,
    CONTENT_PART_ADDED,
    CUSTOM_INPUT_DELTA,
    ERROR,
    ITEM_MESSAGE,
    ITEM_REASONING,
    OUTPUT_ITEM_ADDED,
    OUTPUT_ITEM_DONE,
    OUTPUT_TEXT_DELTA,
    PART_OUTPUT_TEXT,
    PART_REASONING_TEXT,
    PART_REFUSAL,
    PART_SUMMARY_TEXT,
    PRELUDE,
    REASON_MAX_OUTPUT_TOKENS,
    REASONING_TEXT_DELTA,
    REFUSAL_DELTA,
    STATUS_FAILED,
    STATUS_IN_PROGRESS,
    STATUS_INCOMPLETE,
    SUMMARY_TEXT_DELTA,
    SYNTHETIC_ID,
    TERMINAL,
)


class OpenItem:
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
        self.open: dict[Any, OpenItem] = {}  # int keys, looked up by whatever output_index an event carries
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
            self.open[index] = OpenItem(_object(event, "item"))
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
