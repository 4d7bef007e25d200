"""The usage of one answer, normalised (protocols/unified.py's Usage), and where it is reported.

Every vendor counts differently (docs: protocols.md §8.5); the translation layer's `usage_to_ir` functions already
count each token once, so they are reused here. From a stream, a sniffer per protocol is handed every upstream
event on the hot path: it only tests a marker that events carrying usage have (their quotes cannot come from
content, which JSON escapes) and keeps those; the JSON is read once, at the end.

An OpenAI Chat client that streams without `stream_options.include_usage` gets no usage chunk; Rotator asks for
one upstream all the same and takes it, and the `"usage":null` the vendor then adds to every chunk, out of what
the client receives.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from protocols.anthropic_messages import translate as anthropic_messages
from protocols.base import Event, Protocol
from protocols.gemini import translate as gemini
from protocols.openai_chat import translate as openai_chat
from protocols.openai_responses import translate as openai_responses
from protocols.sse import load_object
from protocols.unified import Usage
from rewrite.policy.forcing import refuses_stream

if TYPE_CHECKING:
    from rewrite.accounting.prices import PriceTable
    from rewrite.pool import KeyPool

logger = logging.getLogger("rotator")

Feed = Callable[[Event], bytes]
CHAT = "openai_chat"
RESPONSES = "openai_responses"
ANTHROPIC = "anthropic_messages"
GEMINI = "gemini"
FIELDS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")
NULL_USAGE = b',"usage":null'
NULL_USAGE_END = ',"usage":null}'
_NULL_USAGE_BLOCK_END = NULL_USAGE_END.encode() + b"\n\n"
SPACED_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,')


def normalised(protocol: str, usage: object) -> Usage | None:
    """A protocol's usage object as a unified Usage; None if there is none. A count of the wrong type counts 0 and
    a details field that is not an object counts nothing (the translators' `usage_to_ir`, see translate.base.count):
    never a crash."""
    if not isinstance(usage, dict) or not usage:
        return None
    convert = TO_USAGE.get(protocol)
    return convert(usage) if convert is not None else None


def from_answer(protocol: str, body: object) -> Usage | None:
    """The usage of a whole (non-stream) answer body."""
    if not isinstance(body, dict):
        return None
    if protocol == GEMINI:
        return normalised(protocol, body.get("usageMetadata") or body.get("usage_metadata"))
    return normalised(protocol, body.get("usage"))


def as_dict(usage: Usage) -> dict[str, int]:
    return asdict(usage)


# -- sniffers: what a stream's events say about its usage ------------------------------------------------------


class Sniffer:
    """Fed every upstream event (through `tap`, which wraps the repairer's feed); `usage()` at the end.

    An event named in `events` is kept; another named event is skipped unread; an unnamed one is kept if its data
    has `mark` (a vendor that leaves the SSE event names out)."""

    protocol: str
    mark: str  # a substring every event that carries usage has, quotes included
    events: frozenset[str] = frozenset()  # the SSE event names of the events that carry usage

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self._last: str | None = None

    def tap(self, event: Event) -> bytes:
        name = event.event
        if name is None or not self.events:
            data = event.data
            if data is not None and self.mark in data:
                self.keep(data)
        elif name in self.events and event.data is not None:
            self.keep(event.data)
        return self._feed(event)

    def keep(self, data: str) -> None:
        self._last = data  # a cumulative snapshot: the last one counts

    def forward(self, block: bytes) -> bytes | None:
        """What `tap` hands on for this SSE block when the feed passes it unchanged (Repairer.quiet), told from its
        bytes without parsing it; None when the block has to be read."""
        return None

    def usage(self) -> Usage | None:
        if self._last is None:
            return None
        return normalised(self.protocol, self.usage_of(load_object(self._last) or {}))

    def usage_of(self, obj: dict) -> object:
        return obj.get("usage")


class ChatSniffer(Sniffer):
    """The usage chunk at the end (or any chunk with a usage: some compatible vendors put it on every one)."""

    protocol = CHAT
    mark = '"prompt_tokens"'

    def forward(self, block: bytes) -> bytes | None:
        # (`mark` alone, without a "usage" key, is never read as usage: see usage_of)
        return block if b'"usage"' not in block else None


class HidingChatSniffer(ChatSniffer):
    """For a client that did not ask for usage: takes the usage-only chunk and the `"usage":null` fields out.

    The vendor's compact JSON ends every other chunk with `,"usage":null}`: that is cut from the tail without a
    search through the chunk; any other place or spacing takes the slower way."""

    def forward(self, block: bytes) -> bytes | None:
        if block.endswith(_NULL_USAGE_BLOCK_END):
            block = block[: -len(_NULL_USAGE_BLOCK_END)] + b"}\n\n"
        return block if b'"usage"' not in block else None

    def tap(self, event: Event) -> bytes:
        raw = self._feed(event)
        data = event.data
        if data is None:
            return raw
        if data.endswith(NULL_USAGE_END):
            at = raw.rfind(NULL_USAGE, len(raw) - len(NULL_USAGE) - 8)  # before "}" and the blank line
            return raw[:at] + raw[at + len(NULL_USAGE):] if at >= 0 else raw
        if '"usage"' not in data:
            return raw
        if self.mark in data:
            self.keep(data)
            chunk = load_object(data)
            if chunk is not None and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict):
                return raw[: -len(event.raw)] if raw.endswith(event.raw) else raw
        return SPACED_NULL_USAGE.sub(b"", raw.replace(NULL_USAGE, b""))


class ResponsesSniffer(Sniffer):
    """`response.completed` / `incomplete` / `failed` carry the response with its usage (`response.created`'s
    usage is null)."""

    protocol = RESPONSES
    mark = '"input_tokens"'
    events = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def usage_of(self, obj: dict) -> object:
        response = obj.get("response")
        return response.get("usage") if isinstance(response, dict) else None


class AnthropicSniffer(Sniffer):
    """`message_start` has the input and cache counts; each `message_delta` a cumulative update (output, and
    sometimes the input again): fields replaced, never added."""

    protocol = ANTHROPIC
    mark = '"usage"'
    events = frozenset({"message_start", "message_delta"})

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed)
        self._start: str | None = None

    def keep(self, data: str) -> None:
        if self._start is None:
            self._start = data  # message_start
        else:
            self._last = data  # the last update

    def usage(self) -> Usage | None:
        merged: dict = {}
        for data in (self._start, self._last):
            obj = load_object(data) or {} if data is not None else {}
            message = obj.get("message")
            usage = message.get("usage") if isinstance(message, dict) else obj.get("usage")
            if isinstance(usage, dict):
                merged.update((k, v) for k, v in usage.items() if v is not None)
        return normalised(self.protocol, merged)


class GeminiSniffer(Sniffer):
    """Every chunk carries the cumulative `usageMetadata` so far: the last chunk's counts (or the one's before, if
    the last has none); no chunk is searched while the stream runs."""

    protocol = GEMINI
    mark = '"usageMetadata"'

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed)
        self._previous: str | None = None

    def tap(self, event: Event) -> bytes:
        data = event.data
        if data is not None:
            self._previous, self._last = self._last, data
        return self._feed(event)

    def usage(self) -> Usage | None:
        for data in (self._last, self._previous):
            if data is not None and self.mark in data:
                return normalised(self.protocol, self.usage_of(load_object(data) or {}))
        return None

    def usage_of(self, obj: dict) -> object:
        return obj.get("usageMetadata")


SNIFFERS: dict[str, type[Sniffer]] = {s.protocol: s for s in (ChatSniffer, ResponsesSniffer, AnthropicSniffer,
                                                             GeminiSniffer)}
TO_USAGE = {
    CHAT: openai_chat.usage_to_ir,
    RESPONSES: openai_responses.usage_to_ir,
    ANTHROPIC: anthropic_messages.usage_to_ir,
    GEMINI: gemini.usage_to_ir,
}


def refuses_stream_options(status: int, body: bytes) -> bool:
    """Whether an error answer says the upstream does not take `stream_options` (some OpenAI-compatible ones)."""
    return refuses_stream(status, body) and b"stream_options" in body


def can_ask_for_usage(body: dict | None) -> bool:
    """Whether a Chat stream request lacks `stream_options.include_usage` and can be given it (a malformed
    `stream_options` is left for the vendor to answer)."""
    options = body.get("stream_options") if isinstance(body, dict) else None
    return options is None or isinstance(options, dict) and options.get("include_usage") is not True


class Meter:
    """One request's usage. The engine wraps each attempt's feed with `tap`; after the answer, `usage()`.

    `ask_upstream`: the request goes upstream with `stream_options.include_usage` (an OpenAI Chat stream whose
    client did not ask for usage), and the usage chunk is hidden from the client."""

    def __init__(self, proto: Protocol | None, body: dict | None, client_stream: bool) -> None:
        self.protocol = proto.name if proto is not None else None
        self.ask_upstream = self.protocol == CHAT and client_stream and can_ask_for_usage(body)
        self._sniffer: Sniffer | None = None

    def tap(self, feed: Feed, protocol: str | None = None) -> Feed:
        """`feed`, watched for usage. `protocol`: the upstream's, when it is not the client's (translation)."""
        kind = SNIFFERS.get(protocol or self.protocol or "")
        if kind is None:
            return feed
        if kind is ChatSniffer and self.ask_upstream and protocol in (None, CHAT):
            kind = HidingChatSniffer
        self._sniffer = kind(feed)
        return self._sniffer.tap

    def forwarder(self) -> Callable[[bytes], bytes | None] | None:
        """The `forward` of the tap set up last (Sniffer.forward); None when there is no tap: blocks pass as
        they are."""
        return None if self._sniffer is None else self._sniffer.forward

    def usage(self, answer: bytes | None = None) -> Usage | None:
        """The usage of the stream last tapped; else of `answer`, a whole JSON answer in the client's protocol."""
        if self._sniffer is not None:
            return self._sniffer.usage()
        if answer and self.protocol is not None:
            return from_answer(self.protocol, load_object(answer.decode("utf-8", "replace")))
        return None


def describe(usage: Usage, cost: float | None) -> str:
    """For the log: "input 120 (cache read 100, cache write 0), output 30 (reasoning 12), cost $0.000123"."""
    cost_text = "cost unknown" if cost is None else f"cost ${cost:.6f}"
    return (f"input {usage.input_tokens} (cache read {usage.cache_read_tokens}, cache write "
            f"{usage.cache_write_tokens}), output {usage.output_tokens} (reasoning {usage.reasoning_tokens}), "
            f"{cost_text}")


def account(job, usage: Usage | None, model: str, prices: PriceTable, pool: KeyPool | None,
            key: str | None) -> None:
    """Report an answer's usage: on the job (for the flow's metadata), in the log, and to the key's counters."""
    if usage is None:
        return
    cost = prices.cost(model, usage)
    job.usage = as_dict(usage)
    job.cost = cost
    provider = getattr(job, "provider", None) or job.route.provider  # (the target that answered, once routed)
    logger.info("rotator: %s %s: usage: %s: %s", provider.name, job.id[:8], model or "model not named",
                describe(usage, cost))
    if pool is not None and key is not None:
        pool.record_usage(key, model, usage.total_tokens, cost)
