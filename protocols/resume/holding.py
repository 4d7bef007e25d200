"""Holding a tool call back until it is whole (the `Holder` of a protocol whose calls open and close as blocks)."""

from __future__ import annotations

from protocols.sse import SSEParser, load_object


class BlockHolder:
    """Holds every event from one that opens a held block (`opens`: its key) to the one that closes it (`closes`),
    then sends them together; `marker` is in every event that opens one (blocks without it pass unparsed)."""

    marker: bytes = b""

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
