"""The translators Rotator knows, by protocol name: each protocol's registration carries its own."""

from __future__ import annotations

from protocols import registry
from protocols.translate.base import Translator


def get(name: str) -> Translator:
    """The translator of the protocol named `name`; KeyError if none."""
    return registry.registered(name).translator


def names() -> tuple[str, ...]:
    return tuple(r.name for r in registry.registrations())
