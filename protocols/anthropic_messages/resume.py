"""Anthropic Messages: what a cut stream delivered, the request for its continuation, the splice that keeps one
message for the client (resume-notes §4), and the holder that sends a tool_use block whole or not at all.

The splice: the continuation's `message_start` dropped; if the cut fell inside text block k, the continuation's
first text block goes on as block k (its `content_block_start` dropped), its later blocks numbered after the
client's; its thinking before the seam left out (thinking again about an answer already under way); one
`message_delta` whose cumulative usage is the first attempt's input and cache counts (else the continuation's) with
both attempts' output (the first's counted from its deltas: its stream was cut before its count); one
`message_stop`. Text goes through the seam, and every event is held until the seam has decided (a continuation that
started over leaves no trace).

A prefill is Claude's own continuation (up to Claude 4.5); a request with thinking on cannot take one, nor one with
structured output (`output_config.format`, or the older `output_format`), and neither can a partial answer that
carries a tool call (its result must follow it): those are asked in words (`prefills`). A structured answer cut
after its JSON began is not continued at all (protocols/resume/asking.py, STRUCTURED).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocols.anthropic_messages import stream as S
from protocols.anthropic_messages.translate.request_out import fitted_budget
from protocols.base import count, member, whole_json
from protocols.capabilities import Capabilities
from protocols.events import Event
from protocols.resume import Delivered, Method, Seam, SeamSplicer
from protocols.resume.asking import INSTRUCTION, NOT_RUN, STRUCTURED, OutputCap, json_begun, prefill_text, spent
from protocols.resume.holding import BlockHolder, Unsaid
from protocols.resume.kept import KeptEvents, json_block
from protocols.sse import load_object

ROLE_USER = "user"
TEXT = "text"
TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use"})
THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
TOOL_USE = b'tool_use"'  # in the content_block_start of a tool_use or server_tool_use block
USAGE_KEPT = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(frozen=True, slots=True)
class MessagesDelivered(Delivered):
    content: tuple[dict, ...] = ()  # the partial answer's blocks a request can carry: text and whole tool calls

    def carried(self) -> tuple[dict, ...]:
        return self.content


class MessagesHolder(BlockHolder):
    """Holds a tool_use block's events (and whatever follows them) from its start to its stop."""

    marker: ClassVar[bytes] = TOOL_USE

    def opens(self, payload: dict) -> object | None:
        started = payload.get("type") == S.CONTENT_BLOCK_START
        return payload.get("index") if started and member(payload, "content_block").get("type") in TOOL_BLOCKS \
            else None

    def closes(self, payload: dict, block: object) -> bool:
        return payload.get("type") == S.CONTENT_BLOCK_STOP and payload.get("index") == block


class MessagesCap(OutputCap):
    """`max_tokens`; a thinking budget must stay below it: one that no longer fits is lowered, and thinking left off
    when what is left leaves no room for it (`fitted_budget`, as a translated request's)."""

    def asking(self, body: dict, left: int) -> dict:
        body = super().asking(body, left)
        thinking = member(body, "thinking")
        budget = thinking.get("budget_tokens")
        if thinking.get("type") != "enabled" or not isinstance(budget, int) or budget < left:
            return body
        if (fitted := fitted_budget(budget, left)) is None:
            return {key: value for key, value in body.items() if key != "thinking"}
        return {**body, "thinking": {**thinking, "budget_tokens": fitted}}


class MessagesResumer:
    name = "anthropic_messages"
    output_cap = MessagesCap((("max_tokens",),))

    holder = MessagesHolder

    def observer(self, body: dict) -> MessagesObserver:
        return MessagesObserver(body)

    def prefills(self, body: dict, delivered: Delivered) -> bool:
        thinking = member(body, "thinking").get("type") in ("enabled", "adaptive")
        calls = any(block.get("type") in TOOL_BLOCKS for block in delivered.carried())
        return not (thinking or calls or structured(body))

    def continuation_body(self, body: dict, delivered: Delivered, method: Method, caps: Capabilities) -> dict:
        messages = list(body.get("messages") or [])
        content = [dict(block) for block in delivered.carried()]
        calls = [block for block in content if block.get("type") in TOOL_BLOCKS]
        if method == "prefill":
            text = prefill_text(delivered.text, caps)
            messages += [{"role": S.ROLE_ASSISTANT, "content": text}] if text else []
            return {**body, "messages": messages, "stream": True}
        if content:
            messages.append({"role": S.ROLE_ASSISTANT, "content": content})
        results = [{"type": "tool_result", "tool_use_id": call.get("id"), "content": NOT_RUN} for call in calls]
        messages.append({"role": ROLE_USER, "content": [*results, {"type": TEXT, "text": INSTRUCTION}]})
        return {**body, "messages": messages, "stream": True}


@dataclass
class _Read:
    """The client's message so far: its start, its blocks by index, the open one, the content deltas sent."""

    start: dict
    blocks: dict[int, S._Block]
    open: int | None
    deltas: int


def structured(body: dict) -> bool:
    """Whether the request constrains the answer to JSON (structured output)."""
    return bool(member(body, "output_config").get("format") or body.get("output_format"))


class MessagesObserver:
    def __init__(self, body: dict) -> None:
        self._body = body
        self._kept = KeptEvents()
        self.feed = self._kept.feed
        self.quiet = self._kept.quiet

    def _read(self) -> _Read:
        read = _Read({}, {}, None, 0)
        for payload in self._kept.payloads():
            kind = payload.get("type")
            if kind == S.MESSAGE_START:
                read.start = member(payload, "message")
            elif kind == S.CONTENT_BLOCK_START:
                read.open = payload.get("index", len(read.blocks))
                read.blocks[read.open] = S._Block(member(payload, "content_block"))
            elif kind == S.CONTENT_BLOCK_DELTA and (block := read.blocks.get(payload.get("index", 0))) is not None:
                block.feed(member(payload, "delta"))
                read.deltas += 1
            elif kind == S.CONTENT_BLOCK_STOP:
                read.open = None
        return read

    def delivered(self) -> MessagesDelivered:
        read = self._read()
        texts = [block for _, block in sorted(read.blocks.items()) if block.start.get("type") == TEXT]
        text = "".join("".join(block.text) for block in texts)
        # (its count comes with the message_delta a cut stream did not reach: estimated, as its splice counts it)
        streamed = "".join(piece for block in read.blocks.values() for piece in (*block.text, *block.thinking,
                                                                                 *block.json))
        output = spent(0, read.deltas, streamed)
        if read.open is not None:
            kind = read.blocks[read.open].start.get("type")
            if kind in TOOL_BLOCKS and not whole_json("".join(read.blocks[read.open].json)):
                return MessagesDelivered(text, False, "cut inside a tool call", output)
            if kind in THINKING_BLOCKS:
                return MessagesDelivered(text, False, "cut inside reasoning", output)
        if json_begun(structured(self._body), text):
            return MessagesDelivered(text, False, STRUCTURED, output)
        content = tuple(_as_request_block(block.result()) for _, block in sorted(read.blocks.items())
                        if block.start.get("type") in (TEXT, *TOOL_BLOCKS))
        return MessagesDelivered(text, True, output_tokens=output, content=tuple(block for block in content if block))

    def splicer(self, seam: Seam) -> MessagesSplicer:
        return MessagesSplicer(self._read(), seam)


def _as_request_block(block: dict) -> dict:
    """A block of the answer as a request's assistant turn carries it (text without an empty one; tool calls)."""
    if block.get("type") == TEXT:
        return {"type": TEXT, "text": block["text"]} if block.get("text") else {}
    return {key: block[key] for key in ("type", "id", "name", "input") if key in block}


class MessagesSplicer(SeamSplicer):
    """The continuation's events rewritten into the client's message. The seam decides by the end of the
    continuation's first text block at the latest (the repeat can only be there); a text block the continuation
    opens whose text the seam trims all of (the words before a tool call said again) waits for its first words, and
    reaches the client not at all if it has none (the API refuses an empty text block sent back)."""

    def __init__(self, read: _Read, seam: Seam) -> None:
        super().__init__(seam)
        self._first = read
        self._open = read.open if read.open is not None and read.blocks[read.open].start.get("type") == TEXT else None
        self._next = max(read.blocks) + 1 if read.blocks else 0
        self._indexes: dict[int, int | None] = {}  # the continuation's block index -> the client's (None: dropped)
        self._open_closed = self._open is None  # the client's open block was closed or is continued
        self._unsaid = Unsaid("index", S.CONTENT_BLOCK_START, S.CONTENT_BLOCK_STOP, _is_text)
        self._later: dict = {}  # the continuation's own usage so far

    def feed(self, event: Event) -> list[Event]:
        payload = load_object(event.data) if event.data is not None else None
        if self.failed or payload is None:
            return []
        kind = payload.get("type") or event.event
        if kind == S.MESSAGE_START:
            self._later = dict(member(member(payload, "message"), "usage"))
            return []
        if kind == S.PING:
            return []
        if kind in (S.MESSAGE_DELTA, S.MESSAGE_STOP, S.ERROR):
            out = self._flush() + self._close_open()
            if self.failed:
                return []
            if kind == S.MESSAGE_DELTA:
                payload = {**payload, "usage": self._usage(member(payload, "usage"))}
            return out + [self._emit(payload)]
        if kind == S.CONTENT_BLOCK_START:
            placed = self._started(payload)
        else:
            index = self._indexes.get(payload.get("index", 0))
            placed = None if index is None else {**payload, "index": index}
        if placed is None:
            return []
        delta = member(placed, "delta")
        if kind == S.CONTENT_BLOCK_DELTA and delta.get("type") == S.TEXT_DELTA:
            return self._through_seam(placed, delta.get("text") or "")
        if not self._seam.decided and not (kind == S.CONTENT_BLOCK_STOP and self._seam.held):
            self._pending.append(placed)
            return []
        out = self._flush()  # (at the end of the text block the seam holds the start of)
        if self.failed:
            return []
        if self._unsaid.holds(placed):
            if (given := self._unsaid.hold(placed)) is not None:  # the block ended unsaid: the next takes its index
                self._next = given
                self._indexes = {k: None if client == given else client for k, client in self._indexes.items()}
            return out
        return out + self._sent([placed])

    def _started(self, payload: dict) -> dict | None:
        """A continuation block's start placed among the client's blocks (None: dropped)."""
        given, block = payload.get("index", 0), member(payload, "content_block")
        if block.get("type") in THINKING_BLOCKS and not self._seam.decided:
            self._indexes[given] = None
            return None
        if block.get("type") == TEXT and self._open is not None and self._open not in self._indexes.values():
            self._indexes[given] = self._open
            self._open_closed = True
            return None
        self._indexes[given] = self._next
        self._next += 1
        return {**payload, "index": self._indexes[given]}

    def _close_open(self) -> list[Event]:
        """The stop of the client's open text block, when the continuation did not go on in it."""
        if self._open_closed or self._open is None:
            return []
        self._open_closed = True
        return [self._emit({"type": S.CONTENT_BLOCK_STOP, "index": self._open})]

    def _release(self, text: str) -> list[Event]:
        """The events held while the seam decided, in order, the text it let through in their first text delta (a
        block it let none of through waits for its first words)."""
        held, self._pending = self._pending, []
        out: list[Event] = []
        for placed in self._unsaid.sort(held, text):
            if _is_text(placed):
                out += self._text(placed, text)
                text = ""
            else:
                out += self._sent([placed])
        return out

    def _sent(self, events: list[dict]) -> list[Event]:
        """Events for the client; a new block starts only once the client's open one is stopped."""
        return [e for placed in events for e in (
            self._close_open() if placed.get("type") == S.CONTENT_BLOCK_START else []) + [self._emit(placed)]]

    def _passed(self, event: dict, text: str) -> list[Event]:
        if text and self._unsaid.holds(event):  # the block's first words: it starts for the client
            return self._sent(self._unsaid.said()) + self._text(event, text)
        return self._text(event, text)

    def _text(self, placed: dict, text: str) -> list[Event]:
        if not text:
            return []
        return [self._emit({**placed, "delta": {**member(placed, "delta"), "text": text}})]

    def _usage(self, later: dict) -> dict:
        """Cumulative, as the vendor's: the first attempt's input and cache counts (the continuation's when it
        reported none: a stream translated from a protocol that counts them only at its end, which the cut
        never reached, starts with zeros), both attempts' output."""
        self._later.update((key, value) for key, value in later.items() if value is not None)
        first = member(self._first.start, "usage")
        known = any(count(first, key) for key in USAGE_KEPT)
        usage = {**self._later, **{key: count(first, key) for key in USAGE_KEPT if key in first and known}}
        usage["output_tokens"] = self._first.deltas + count(self._later, "output_tokens")
        return usage

    def _emit(self, payload: dict) -> Event:
        return json_block(payload, payload.get("type"))


def _is_text(placed: dict) -> bool:
    return member(placed, "delta").get("type") == S.TEXT_DELTA


RESUMER = MessagesResumer()
