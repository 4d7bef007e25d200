"""Reading an answer's usage: the base of each protocol's reader (protocols/<name>/usage.py).

Every vendor counts differently (docs: protocols.md §8.5); each protocol's `usage_to_ir`, beside its reader, counts
each token once, and its translator uses it too. From a stream, a reader is handed every upstream event on the hot
path: it only tests a marker that events carrying usage have (their quotes cannot come from content, which JSON
escapes) and keeps those; the JSON is read once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from protocols.events import Event
from protocols.sse import load_object
from protocols.unified import Usage

Feed = Callable[[Event], bytes]


class UsageSniffer:
    """Fed every upstream event (through `tap`, which wraps the repairer's feed); `usage()` at the end.

    An event named in `events` is kept; another named event is skipped unread; an unnamed one is kept if its data
    has `mark` (a vendor that leaves the SSE event names out)."""

    mark: ClassVar[str]  # a substring every event that carries usage has, quotes included
    events: ClassVar[frozenset[str]] = frozenset()  # the SSE event names of the events that carry usage
    answer_keys: ClassVar[tuple[str, ...]] = ("usage",)  # where a whole answer holds its usage, first found counts
    # The reader for a stream whose client did not ask for usage, when Rotator asks the upstream for it and hides
    # it from the client (None: the protocol always sends its usage).
    hiding: ClassVar[type[UsageSniffer] | None] = None
    # The request member that asks the upstream for usage (with `hiding`): an upstream that refuses it is asked
    # no more (its streams' usage is then not known).
    asking: ClassVar[str] = ""
    names_answers: ClassVar[bool] = False  # the protocol's next request may name an answer by its id (`id_of`)

    @classmethod
    def can_ask(cls, body: object) -> bool:
        """Whether a stream request whose client did not ask for usage can be asked for it upstream (`hiding`,
        through `Protocol.as_stream`)."""
        return False

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self._last: str | None = None
        self._read: dict | None = None  # `_last`, parsed once

    @staticmethod
    def to_usage(usage: dict) -> Usage:
        """The protocol's usage object, unified (its `usage_to_ir`)."""
        raise NotImplementedError

    @classmethod
    def normalised(cls, usage: object) -> Usage | None:
        """A usage object as a unified Usage; None if there is none. A count of the wrong type counts 0 and a
        details field that is not an object counts nothing (translate.base.count): never a crash."""
        if not isinstance(usage, dict) or not usage:
            return None
        return cls.to_usage(usage)

    @classmethod
    def from_answer(cls, body: object) -> Usage | None:
        """The usage of a whole (non-stream) answer body."""
        if not isinstance(body, dict):
            return None
        for key in cls.answer_keys:
            if body.get(key):
                return cls.normalised(body[key])
        return None

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
        self._last, self._read = data, None  # a cumulative snapshot: the last one counts

    def forward(self, block: bytes) -> bytes | None:
        """What `tap` hands on for this SSE block when the feed passes it unchanged (Repairer.quiet), told from its
        bytes without parsing it; None when the block has to be read."""
        return None

    def usage(self) -> Usage | None:
        if self._last is None:
            return None
        return self.normalised(self.usage_of(self._kept()))

    def answer_id(self) -> str | None:
        """The id the stream's answer is known by, where the protocol's next request may name it (`id_of`)."""
        return None if self._last is None else self.id_of(self._kept())

    def _kept(self) -> dict:
        if self._read is None:
            self._read = load_object(self._last or "") or {}
        return self._read

    @classmethod
    def id_of(cls, obj: dict) -> str | None:
        """The answer's id in an event that carries usage, or in a whole answer; None for a protocol whose next
        request never names an answer."""
        return None

    def usage_of(self, obj: dict) -> object:
        return obj.get("usage")
