"""A continued Responses answer spliced onto the cut one (`ResponsesSplicer`, made by resume.py's observer): the
continuation's events renumbered into the first stream's output items and sequence, its text released past the
seam, the items it held ended as the first stream's would have, and the usage of both."""

from __future__ import annotations

from protocols.base import count, member
from protocols.events import Event
from protocols.openai_responses import vocabulary as V
from protocols.openai_responses.stream import api_event
from protocols.openai_responses.tracker import ResponseTracker
from protocols.openai_responses.vocabulary import PART_DONE, TEXT_DONE
from protocols.resume import Seam, SeamSplicer
from protocols.resume.holding import Unsaid
from protocols.resume.kept import json_block
from protocols.sse import load_object


def _is_delta(payload: dict) -> bool:
    return payload.get("type") == V.OUTPUT_TEXT_DELTA


def _delta_text(payload: dict) -> str:
    return delta if isinstance(delta := payload.get("delta"), str) else ""


class _Items:
    """The client's output items as a continuation adds to them: the output index each continuation item takes (the
    cut message item goes on under its own index, id and content index; a new one after the client's), the text the
    client has of each part, and the items done. A cut item whose text the client was sent the end of
    (`finished`: its `output_text.done`) is not gone on with: it is done, and the continuation's text is a new item."""

    def __init__(self, tracker: ResponseTracker, finished: set[tuple[object, ...]]) -> None:
        used = [*tracker.done, *tracker.open]
        self.next = max(used) + 1 if used else 0
        self.first_done, self.first_open = tracker.done, tracker.open
        self.open: tuple[int, str, int] | None = None  # the cut message item: output index, id, content index
        self.prefix: list[dict] = []  # that item's parts before the one continued
        self.ended: set[str] = set()  # the `*.done` events of its part the client was sent
        self.texts: dict[tuple[int, int], list[str]] = {}  # (output, content index): the text the client has
        for index, item in tracker.open.items():
            snapshot = item.snapshot()
            parts = snapshot.get("content") or []
            part = max(item.parts, default=0)
            self.open = (index, snapshot.get("id") or "", part)
            self.prefix = parts[:-1] if item.parts else parts
            self.texts[(index, part)] = ["".join(item.parts.get(part, []))]
            self.ended = {kind for kind, *at in finished if at == [index, part] and isinstance(kind, str)}
        self.indexes: dict[int, int] = {}  # continuation output index -> the client's
        self.dropped: set[int] = set()  # continuation output indexes none of whose events reach the client
        self.done: dict[int, dict] = {}

    def added(self, payload: dict, decided: bool) -> bool:
        """Take in an `output_item.added`; True when it is dropped: the item continued, or reasoning before the
        text (the continuation thinking again about an answer already under way)."""
        index, kind = payload.get("output_index"), member(payload, "item").get("type")
        if not isinstance(index, int):
            return False
        if kind == V.ITEM_REASONING and not decided:
            self.dropped.add(index)
            return True
        cut = self.open[0] if self.open is not None and TEXT_DONE not in self.ended else None
        if kind == V.ITEM_MESSAGE and cut is not None and cut not in self.indexes.values() and cut not in self.done:
            self.indexes[index] = cut  # the first message goes on in the cut item (not once that is done)
            return True
        self.indexes[index] = self.next
        self.next += 1
        return False

    def unsaid(self, client: int) -> None:
        """The item the continuation opened at `client` (the last) ended with none of its text for the client: it
        is dropped, and its index is the next item's."""
        self.dropped |= {index for index, given in self.indexes.items() if given == client}
        self.next = client

    def placed(self, payload: dict, index: int) -> dict | None:
        """The event with the client's output index, item id and content index; None for the continued item's
        first `content_part.added`."""
        client = self.indexes.get(index, index)
        payload = {**payload, "output_index": client}
        if self.open is None or client != self.open[0]:
            return payload
        _, item_id, part = self.open
        if "item_id" in payload:
            payload["item_id"] = item_id
        if isinstance(payload.get("content_index"), int):
            if payload["type"] == V.CONTENT_PART_ADDED and payload["content_index"] == 0:
                return None
            payload["content_index"] += part
        if isinstance(payload.get("item"), dict):
            payload["item"] = {**payload["item"], "id": item_id}
        return payload

    def said(self, placed: dict, text: str) -> None:
        self.texts.setdefault((placed["output_index"], placed.get("content_index", 0)), []).append(text)

    def with_full_text(self, payload: dict) -> dict:
        """A `*.done` event carrying the text the client has of its part or item."""
        kind, key = payload.get("type"), (payload.get("output_index"), payload.get("content_index"))
        if kind == TEXT_DONE and key in self.texts:
            return {**payload, "text": "".join(self.texts[key])}
        if kind == PART_DONE and key in self.texts:
            return {**payload, "part": {**member(payload, "part"), "text": "".join(self.texts[key])}}
        if kind == V.OUTPUT_ITEM_DONE:
            item = self._full_item(payload["output_index"], member(payload, "item"))
            self.done[payload["output_index"]] = item
            return {**payload, "item": item}
        return payload

    def _full_item(self, index: int, item: dict) -> dict:
        if item.get("type") != V.ITEM_MESSAGE:
            return item
        continued = self.open is not None and index == self.open[0]
        offset = self.open[2] if self.open is not None and continued else 0
        parts = [dict(part) for part in item.get("content") or ()]
        for number, part in enumerate(parts):
            if (index, number + offset) in self.texts and part.get("type") == V.PART_OUTPUT_TEXT:
                part["text"] = "".join(self.texts[(index, number + offset)])
        return {**item, "content": self.prefix + parts if continued else parts}

    def open_ending(self) -> list[dict]:
        """The done events of the cut item (those the client was not sent yet) when the continuation does not go
        on with it: before another item opens, or at the end."""
        if self.open is None or self.open[0] in self.done or self.open[0] in self.indexes.values():
            return []
        index, item_id, part = self.open
        text = "".join(self.texts.get((index, part), []))
        ids = {"item_id": item_id, "output_index": index, "content_index": part}
        content = {"type": V.PART_OUTPUT_TEXT, "text": text, "annotations": []}
        item = {**self.first_open[index].item, "status": "completed", "content": [*self.prefix, content]}
        self.done[index] = item
        events = [{"type": TEXT_DONE, **ids, "text": text, "logprobs": []}, {"type": PART_DONE, **ids, "part": content}]
        return [e for e in events if e["type"] not in self.ended] + [
            {"type": V.OUTPUT_ITEM_DONE, "output_index": index, "item": item}]

    def output(self) -> list[dict]:
        done = {**self.first_done, **self.done}
        return [done[index] for index in sorted(done)]


class ResponsesSplicer(SeamSplicer):
    """The continuation's events rewritten into the first attempt's response; text through the seam, and every
    event held back until the seam has decided (a continuation that started over leaves no trace). A message item
    the continuation opens whose text the seam trims all of (the words before a tool call said again) waits for its
    first words, and reaches the client not at all if it has none."""

    def __init__(self, tracker: ResponseTracker, seam: Seam, finished: set[tuple[object, ...]]) -> None:
        super().__init__(seam)
        self._first = tracker
        self._response = tracker.snapshot or tracker.synthetic_snapshot()
        self._items = _Items(tracker, finished)
        self._unsaid = Unsaid("output_index", V.OUTPUT_ITEM_ADDED, V.OUTPUT_ITEM_DONE, _is_delta)

    def feed(self, event: Event) -> list[Event]:
        payload = load_object(event.data) if event.data is not None else None
        kind = payload.get("type") if payload is not None else None
        if self.failed or payload is None or kind in V.PRELUDE:
            return []
        if not api_event(kind):  # a vendor's own (Codex's `codex.rate_limits`): passed on, the seam still open
            return [self._emit(payload)]
        if kind in V.TERMINAL:
            return self._flush() + self._close_open() + self._terminal(payload)
        index, items = payload.get("output_index"), self._items
        if kind == V.OUTPUT_ITEM_ADDED and items.added(payload, self._seam.decided) or index in items.dropped:
            return []
        if isinstance(index, int) and (payload := items.placed(payload, index)) is None:
            return []
        if kind == V.OUTPUT_TEXT_DELTA:  # (the last delta held stands for them all: `_release`)
            return self._through_seam(payload, _delta_text(payload)) if isinstance(index, int) else []
        if kind in (V.CONTENT_PART_ADDED, V.OUTPUT_ITEM_ADDED) and not self._seam.decided:
            self._pending.append(payload)
            return []
        out = self._flush()
        if self.failed:
            return []
        if self._unsaid.holds(payload):
            if (given := self._unsaid.hold(payload)) is not None:
                self._items.unsaid(given)
            return out
        return out + self._sent(self._items.with_full_text(payload))

    def _passed(self, event: dict, text: str) -> list[Event]:
        if text and self._unsaid.holds(event):  # the item's first words: it opens for the client
            return [e for p in self._unsaid.said() for e in self._sent(p)] + self._delta(event, text)
        return self._delta(event, text)

    def _release(self, text: str) -> list[Event]:
        """The events held while the seam decided, the text it let through in the last delta held (an item it let
        none of through waits for its first words)."""
        held, self._pending = self._pending, []
        deltas = [p for p in held if _is_delta(p)]
        out = [e for p in self._unsaid.sort(held, text) if not _is_delta(p) for e in self._sent(p)]
        return out + (self._delta(deltas[-1], text) if deltas else [])

    def _delta(self, placed: dict, text: str) -> list[Event]:
        if not text:
            return []
        self._items.said(placed, text)
        return [self._emit({**placed, "delta": text})]

    def _close_open(self) -> list[Event]:
        return [self._emit(payload) for payload in self._items.open_ending()]

    def _terminal(self, payload: dict) -> list[Event]:
        response = member(payload, "response")
        if not response:
            return [self._emit(payload)]
        first = self._response
        response = {**response, "id": first.get("id"), "created_at": first.get("created_at"),
                    "model": first.get("model") or response.get("model"), "output": self._items.output(),
                    "usage": _usage(self._first, member(response, "usage"))}
        return [self._emit({**payload, "response": response})]

    def _sent(self, payload: dict) -> list[Event]:
        """An event for the client; an item opens only once the cut one is done."""
        return (self._close_open() if payload.get("type") == V.OUTPUT_ITEM_ADDED else []) + [self._emit(payload)]

    def _emit(self, payload: dict) -> Event:
        kind = payload.get("type")
        payload = {**payload, "sequence_number": self._first.next_sequence()}
        return json_block(payload, kind if isinstance(kind, str) else None)


def _usage(first: ResponseTracker, later: dict) -> dict:
    """The first attempt's input if it reported one, else the continuation's; both attempts' output."""
    counted = first.counted_usage()
    input_tokens = counted["input_tokens"] if first.usage else count(later, "input_tokens")
    output = counted["output_tokens"] + count(later, "output_tokens")
    reasoning = (counted["output_tokens_details"]["reasoning_tokens"]
                 + count(member(later, "output_tokens_details"), "reasoning_tokens"))
    details = counted["input_tokens_details"] if first.usage else member(later, "input_tokens_details")
    return {"input_tokens": input_tokens, "input_tokens_details": details, "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": input_tokens + output}
