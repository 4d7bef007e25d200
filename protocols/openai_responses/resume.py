"""OpenAI Responses: what a cut stream delivered, the request for its continuation, and the splice that keeps one
response for the client (resume-notes §4): the first `response.id`, `created_at` and model; the continuation's
`response.created`/`in_progress` and the opening of the item being continued dropped; `item_id`, `output_index`,
`content_index` and `sequence_number` going on as the first attempt left them; the `*.done` events and the
completion carrying the full text. A cut item the client has the text's end of is done, not gone on with; a message
item the continuation opens that only says the partial's last words again (before a tool call) is left out. Usage in
the completion: the first attempt's input if it reported one, else the continuation's; output, what the client
received of both attempts.

A prefill is the partial's last message as the input's last item; a partial that ends in a function call (its output
follows it), or whose request asked for JSON (`text.format`), is asked for in words; a JSON answer is not continued at
all once its JSON began (protocols/resume/asking.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocols.base import count, member
from protocols.capabilities import Capabilities
from protocols.openai_responses import vocabulary as V
from protocols.openai_responses.splice import ResponsesSplicer
from protocols.openai_responses.tracker import OpenItem, ResponseTracker
from protocols.openai_responses.translate.request_out import LEAST_OUTPUT_TOKENS
from protocols.openai_responses.vocabulary import PART_DONE, TEXT_DONE
from protocols.resume import Delivered, Method, Seam
from protocols.resume.asking import INSTRUCTION, NOT_RUN, STRUCTURED, OutputCap, json_begun, prefill_text, spent
from protocols.resume.holding import BlockHolder
from protocols.resume.kept import KeptEvents

ROLE_ASSISTANT = "assistant"
ROLE_USER = "user"
FUNCTION_CALL_OUTPUT = "function_call_output"
FUNCTION_CALL = b'"function_call"'  # in the item of a function call's `output_item.added` and `.done`
JSON_FORMATS = ("json_schema", "json_object")


@dataclass(frozen=True, slots=True)
class ResponsesDelivered(Delivered):
    output: tuple[dict, ...] = ()  # the partial answer as input items: assistant text and completed function calls

    def carried(self) -> tuple[dict, ...]:
        return self.output


class ResponsesHolder(BlockHolder):
    """Holds a function call item's events (and whatever follows them) from its `output_item.added` to its
    `output_item.done`."""

    marker: ClassVar[bytes] = FUNCTION_CALL

    def opens(self, payload: dict) -> object | None:
        added = payload.get("type") == V.OUTPUT_ITEM_ADDED
        return payload.get("output_index") if added and member(payload, "item").get("type") == V.ITEM_FUNCTION_CALL \
            else None

    def closes(self, payload: dict, block: object) -> bool:
        return payload.get("type") == V.OUTPUT_ITEM_DONE and payload.get("output_index") == block


class ResponsesResumer:
    name = "openai_responses"
    output_cap = OutputCap((("max_output_tokens",),), LEAST_OUTPUT_TOKENS)

    holder = ResponsesHolder

    def observer(self, body: dict) -> ResponsesObserver:
        return ResponsesObserver(body)

    def prefills(self, body: dict, delivered: Delivered) -> bool:
        output = delivered.carried()
        return bool(output) and output[-1].get("role") == ROLE_ASSISTANT and not structured(body)

    def continuation_body(self, body: dict, delivered: Delivered, method: Method, caps: Capabilities) -> dict:
        given = body.get("input")
        turns = [{"role": ROLE_USER, "content": given}] if isinstance(given, str) else list(given or [])
        output = list(delivered.carried())
        if method == "prefill":
            text = prefill_text(output[-1]["content"], caps)
            last: dict = {"role": ROLE_ASSISTANT, "content": text}
            if caps.prefill_marker:
                last[caps.prefill_marker] = True
            output[-1:] = [last] if text else []
        else:
            output.append({"role": ROLE_USER, "content": INSTRUCTION})
        return {**body, "input": turns + output, "stream": True}


def structured(body: dict) -> bool:
    """Whether the request constrains the answer to JSON (a schema, or JSON mode)."""
    return member(member(body, "text"), "format").get("type") in JSON_FORMATS


class ResponsesObserver:
    def __init__(self, body: dict) -> None:
        self._body = body
        self._kept = KeptEvents()
        self.feed = self._kept.feed
        self.quiet = self._kept.quiet

    def _tracker(self, finished: set[tuple[object, ...]] | None = None) -> ResponseTracker:
        """What the client was sent; the `*.done` events of its parts it was sent, into `finished`."""
        tracker = ResponseTracker(self._body)
        for payload in self._kept.payloads():
            if tracker.feed(payload) in (TEXT_DONE, PART_DONE) and finished is not None:
                finished.add((payload["type"], payload.get("output_index"), payload.get("content_index")))
        return tracker

    def delivered(self) -> ResponsesDelivered:
        tracker = self._tracker()
        items = {**tracker.done, **{index: item.snapshot() for index, item in tracker.open.items()}}
        text = "".join(_texts(items))
        spending = spent(count(tracker.usage, "output_tokens"), tracker.counted_usage()["output_tokens"], text)
        for item in tracker.open.values():
            if why_not := _open_item_problem(item):
                return ResponsesDelivered(text, False, why_not, spending)
        if json_begun(structured(self._body), text):
            return ResponsesDelivered(text, False, STRUCTURED, spending)
        output = tuple(turn for index in sorted(items) for turn in _as_input(items[index]))
        return ResponsesDelivered(text, True, output=output, output_tokens=spending)

    def splicer(self, seam: Seam) -> ResponsesSplicer:
        finished: set[tuple[object, ...]] = set()
        return ResponsesSplicer(self._tracker(finished), seam, finished)


def _open_item_problem(item: OpenItem) -> str:
    kind = item.item.get("type")
    if kind == V.ITEM_MESSAGE:
        return "cut inside a refusal" if V.PART_REFUSAL in item.part_types.values() else ""
    if kind == V.ITEM_REASONING:
        return "cut inside reasoning"
    return f"cut inside a {kind or 'output'} item"


def _message_text(item: dict) -> str:
    parts = item.get("content") or ()
    return "".join(part.get("text") or "" for part in parts if part.get("type") == V.PART_OUTPUT_TEXT)


def _texts(items: dict[int, dict]) -> list[str]:
    return [_message_text(items[i]) for i in sorted(items) if items[i].get("type") == V.ITEM_MESSAGE]


def _as_input(item: dict) -> list[dict]:
    """An output item as the continuation request's input carries it: reasoning cannot be replayed, tool calls stay
    tool calls (with the result a request needs: not run yet)."""
    if item.get("type") == V.ITEM_MESSAGE:
        text = _message_text(item)
        return [{"role": ROLE_ASSISTANT, "content": text}] if text else []
    if item.get("type") == V.ITEM_FUNCTION_CALL:
        call = {key: item[key] for key in ("type", "call_id", "name", "arguments") if key in item}
        return [call, {"type": FUNCTION_CALL_OUTPUT, "call_id": item.get("call_id"), "output": NOT_RUN}]
    return []


RESUMER = ResponsesResumer()
