"""The translators Rotator knows, by protocol name."""

from __future__ import annotations

from protocols.translate.base import Translator

_translators: dict[str, Translator] = {}


def register(translator: Translator) -> Translator:
    """Make a protocol translatable; a second translator with the same name replaces the first."""
    _translators[translator.name] = translator
    return translator


def get(name: str) -> Translator:
    """The translator of the protocol named `name`; KeyError if none."""
    return _translators[name]


def names() -> tuple[str, ...]:
    return tuple(_translators)
