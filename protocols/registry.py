"""The protocols Rotator knows, in registration order."""

from __future__ import annotations

from protocols.base import Protocol

_protocols: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    """Make a protocol known to `detect` and `get`; a second one with the same name replaces the first."""
    _protocols[protocol.name] = protocol
    return protocol


def detect(method: str, path: str) -> Protocol | None:
    """The protocol whose generation call this request (path without query) is, if any."""
    for protocol in _protocols.values():
        if protocol.matches(method, path):
            return protocol
    return None


def get(name: str) -> Protocol:
    """The protocol registered under `name`; KeyError if none."""
    return _protocols[name]


def all() -> tuple[Protocol, ...]:
    """Every registered protocol."""
    return tuple(_protocols.values())
