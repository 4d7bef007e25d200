"""What an observer keeps of a client stream: every event and quiet block, in order, parsed only at a cut."""

from __future__ import annotations

from collections.abc import Iterator

from protocols.events import Event
from protocols.sse import SSEParser, dumps, format_event, load_object


class KeptEvents:
    """The client-bound events of one stream, kept as they came (cheap per event); `payloads` reads them."""

    def __init__(self) -> None:
        self._blocks: list[Event | bytes] = []
        self.add = self._blocks.append  # whole SSE blocks, as `quiet` keeps them (the engine's, once an event)

    def feed(self, event: Event) -> None:
        self._blocks.append(event)

    def quiet(self, block: bytes) -> None:
        self._blocks.append(block)

    def events(self) -> Iterator[Event]:
        for block in self._blocks:
            if isinstance(block, Event):
                yield block
            else:
                parser = SSEParser()
                yield from parser.feed(block) + parser.close()

    def payloads(self) -> Iterator[dict]:
        """The JSON object of every data event, in order."""
        for event in self.events():
            payload = load_object(event.data) if event.data is not None else None
            if payload is not None:
                yield payload


def json_block(obj: dict, event: str | None = None, eol: bytes = b"\n") -> Event:
    """An event a splicer writes: `obj` as compact JSON, its bytes and its parsed form agreeing."""
    data = dumps(obj)
    return Event(raw=format_event(data, event, eol), data=data.decode(), event=event)
