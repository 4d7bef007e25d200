"""Small helpers for feeding sample streams through the protocols' state machines."""

from __future__ import annotations

import json

from protocols import ENDING_LENGTH, Event, Protocol, Repairer, SSEParser


def parse(body: bytes) -> list[Event]:
    parser = SSEParser()
    events = parser.feed(body) + parser.close()
    assert parser.pending == b""
    return events


def payloads(body: bytes) -> list[dict]:
    """The JSON object of every data event, `[DONE]` left out."""
    return [json.loads(e.data) for e in parse(body) if e.data is not None and not e.data.startswith("[DONE]")]


def play(repairer: Repairer, events: list[Event]) -> bytes:
    return b"".join(repairer.feed(event) for event in events)


def cut(protocol: Protocol, body: bytes, k: int, ending: str = ENDING_LENGTH, request: dict | None = None):
    """The stream cut after its k-th event and ended by the repairer: (repairer, bytes the client receives)."""
    repairer = protocol.repairer(request or {"model": "m", "stream": True})
    out = play(repairer, parse(body)[:k])
    return repairer, out + repairer.end(ending)


def aggregate(protocol: Protocol, events: list[Event], request: dict | None = None):
    aggregator = protocol.aggregator(request or {"model": "m"})
    for event in events:
        aggregator.feed(event)
    return aggregator
