"""The usage of one answer, normalised (protocols/unified.py's Usage), and where it is reported.

Each protocol's registration carries its usage reader (protocols/<name>/usage.py, see protocols/usage.py): a stream's
reader taps every upstream event on the hot path; a whole answer is read once.

A client of a protocol whose streams carry usage only when asked (OpenAI Chat's `stream_options.include_usage`: its
usage reader has a `hiding` variant and says whether a request `can_ask`) gets none when it did not ask; Rotator asks
for it upstream all the same and takes it out of what the client receives.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from functools import cached_property

import protocols
from protocols.base import Protocol
from protocols.sse import load_object
from protocols.unified import Usage
from protocols.usage import Feed, UsageSniffer

logger = logging.getLogger("rotator")

FIELDS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")


def reader(protocol: str | None) -> type[UsageSniffer] | None:
    """The usage reader of the protocol named `protocol` (protocols/<name>/usage.py); None for none."""
    if protocol is None:
        return None
    try:
        return protocols.registered(protocol).usage
    except KeyError:
        return None


def normalised(protocol: str, usage: object) -> Usage | None:
    """A protocol's usage object as a unified Usage; None if there is none (UsageSniffer.normalised)."""
    kind = reader(protocol)
    return kind.normalised(usage) if kind is not None else None


def from_answer(protocol: str, body: object) -> Usage | None:
    """The usage of a whole (non-stream) answer body."""
    kind = reader(protocol)
    return kind.from_answer(body) if kind is not None else None


def as_dict(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens, "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens}  # (dataclasses.asdict's walk costs 15 µs)


class Meter:
    """One request's usage. The engine wraps each attempt's feed with `tap`; after the answer, `usage()`.

    `ask_upstream`: the request goes upstream asking for usage (an OpenAI Chat stream whose client did not ask for
    it), and the usage is hidden from the client."""

    def __init__(self, proto: Protocol | None, body: dict | None, client_stream: bool) -> None:
        self.protocol = proto.name if proto is not None else None
        self._own = reader(self.protocol)
        self._asked = body, client_stream
        self._sniffer: UsageSniffer | None = None

    @cached_property
    def ask_upstream(self) -> bool:
        """Worked out when first asked: by a target in the client's protocol (a translated one asks its own way)."""
        own, (body, client_stream) = self._own, self._asked
        return own is not None and own.hiding is not None and client_stream and own.can_ask(body)

    @property
    def usage_option(self) -> str:
        """The member a request asking for usage asks with (`stream_options`): an error naming it refuses it (some
        OpenAI-compatible vendors do); "" when the request does not ask."""
        own = self._own
        return own.asking if self.ask_upstream and own is not None and own.asking else ""

    def tap(self, feed: Feed, protocol: str | None = None) -> Feed:
        """`feed`, watched for usage. `protocol`: the upstream's, when it is not the client's (translation)."""
        kind = reader(protocol or self.protocol)
        if kind is None:
            return feed
        if kind.hiding is not None and self.ask_upstream and protocol in (None, self.protocol):
            kind = kind.hiding
        self._sniffer = kind(feed)
        return self._sniffer.tap

    def fork(self) -> Meter:
        """A meter of the same request for an attempt that runs beside this one's (a race): its own tap."""
        other = copy.copy(self)
        other._sniffer = None
        return other

    def adopt(self, other: Meter) -> None:
        """Read the usage `other` taps from now on (a race's winner: its answer is the request's)."""
        if other is not self:
            self._sniffer = other._sniffer

    def forwarder(self) -> Callable[[bytes], bytes | None] | None:
        """The `forward` of the tap set up last (UsageSniffer.forward); None when there is no tap: blocks pass as
        they are."""
        return None if self._sniffer is None else self._sniffer.forward

    @property
    def names_answers(self) -> bool:
        """Whether the client's protocol names answers by id in later requests (`answer_id`)."""
        return self._own is not None and self._own.names_answers

    def answer_id(self, answer: bytes | None = None) -> str | None:
        """The answer's id, where the client's protocol names answers in later requests (a Responses answer's, for
        `previous_response_id`): from the stream last tapped, else from `answer`, a whole JSON answer."""
        own = self._own
        if own is None or not own.names_answers:
            return None
        if self._sniffer is not None:
            return self._sniffer.answer_id()
        return own.id_of(load_object(answer.decode("utf-8", "replace")) or {}) if answer else None

    def usage(self, answer: bytes | None = None) -> Usage | None:
        """The usage of the stream last tapped; else of `answer`, a whole JSON answer in the client's protocol."""
        if self._sniffer is not None:
            return self._sniffer.usage()
        if answer and self.protocol is not None:
            return from_answer(self.protocol, load_object(answer.decode("utf-8", "replace")))
        return None


def describe(usage: Usage, cost: float | None, covered: bool = False) -> str:
    """For the log: "input 120 (cache read 100, cache write 0), output 30 (reasoning 12), cost $0.000123"."""
    cost_text = "covered by the plan" if covered else "cost unknown" if cost is None else f"cost ${cost:.6f}"
    return (f"input {usage.input_tokens} (cache read {usage.cache_read_tokens}, cache write "
            f"{usage.cache_write_tokens}), output {usage.output_tokens} (reasoning {usage.reasoning_tokens}), "
            f"{cost_text}")
