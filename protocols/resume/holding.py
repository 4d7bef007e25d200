"""Holding back: a tool call until it is whole (the `Holder` of a protocol whose calls open and close as blocks), and
a continuation's text block until its first words (`Unsaid`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from protocols.sse import SSEParser, load_object


class BlockHolder:
    """Holds every event from one that opens a held block (`opens`: its key) to the one that closes it (`closes`),
    then sends them together; `marker` is in every event that opens one (blocks without it pass unparsed)."""

    marker: ClassVar[bytes] = b""

    def __init__(self) -> None:
        self.holding = False
        self._held: list[bytes] = []
        self._block: object = None

    def opens(self, payload: dict) -> object | None:
        raise NotImplementedError

    def closes(self, payload: dict, block: object) -> bool:
        raise NotImplementedError

    def feed(self, out: bytes) -> bytes:
        if not self.holding and self.marker not in out:
            return out
        parser = SSEParser()
        sent: list[bytes] = []
        for event in parser.feed(out) + parser.close():
            payload = (load_object(event.data) if event.data is not None else None) or {}
            if not self.holding and (block := self.opens(payload)) is not None:
                self.holding, self._block = True, block
            (self._held if self.holding else sent).append(event.raw)
            if self.holding and self.closes(payload, self._block):
                sent += self._held
                self._held, self.holding = [], False
        return b"".join(sent)


class Unsaid:
    """A text block (Responses: message item) a continuation opened whose text the seam trimmed all of: the words
    before a tool call said again. Its events wait for its first words; if it ends first, none of them reach the
    client (the block would be empty, or say the repeat in its `done` events only), and the next block takes its
    index. `key` names an event's block index, `opens` and `closes` the block's first and last event types, and
    `text` tells a text delta."""

    def __init__(self, key: str, opens: str, closes: str, text: Callable[[dict], bool]) -> None:
        self.key, self.opens, self.closes, self.text = key, opens, closes, text
        self.index: int | None = None  # the client's index of the block waiting
        self.events: list[dict] = []

    def sort(self, held: list[dict], released: str) -> list[dict]:
        """Of the events held while the seam decided (their text: `released`), those that go on to the client: all
        of them, unless the seam let no text through and the block of its text opened meanwhile (then it waits)."""
        index = next((p.get(self.key) for p in held if self.text(p)), None)
        if released or not any(p.get("type") == self.opens and p.get(self.key) == index for p in held):
            return held
        self.index, self.events = index, [p for p in held if p.get(self.key) == index and not self.text(p)]
        return [p for p in held if p.get(self.key) != index]

    def holds(self, placed: dict) -> bool:
        return self.index is not None and placed.get(self.key) == self.index

    def hold(self, placed: dict) -> int | None:
        """An event of the waiting block, not its text, taken in; at its end, the index it gives back (else None)."""
        if placed.get("type") != self.closes:
            self.events.append(placed)
            return None
        index, self.index, self.events = self.index, None, []
        return index

    def said(self) -> list[dict]:
        """Its first words came: the events it held, to go first."""
        events, self.index, self.events = self.events, None, []
        return events
