"""Adapters: small named rewrites of upstream requests (and of answers, where one needs it) that make a host
accept what a client sends, configured per provider and per model.

One adapter is one class in one module of this package, registered by name with `register`. Its `Options` is
the pydantic type its config value is validated with. The config names them as a list of one-key mappings
(`[{cap: {max_tokens: 32000}}, developer_to_system]`); `entries.AdapterEntry` validates that list, and
`chain.ProviderAdapters` compiles it into the chain a request gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(slots=True)
class UpstreamRequest:
    """What an adapter may change: the JSON body, the headers (before the credential is set) and the model."""

    body: dict
    headers: list[tuple[str, str]]
    model: str


class Adapter:
    """One rewrite. Subclasses set `name` and `Options`, and override the hooks they need."""

    name: ClassVar[str]
    Options: ClassVar[Any]  # anything pydantic validates: a model, dict[str, float], list[str], str
    touches_answers: ClassVar[bool] = False

    def __init__(self, options: Any) -> None:
        self.options = options

    def request(self, req: UpstreamRequest) -> None:
        """Change the request in place."""

    def model(self, model: str) -> str:
        """The model the request asks for after this adapter (`request` sets the same on the request)."""
        return model

    def answer_event(self, data: dict) -> None:
        """Change one parsed stream event of the answer in place."""

    def answer_body(self, body: dict) -> None:
        """Change a non-stream answer in place."""


ADAPTERS: dict[str, type[Adapter]] = {}


def register(cls: type[Adapter]) -> type[Adapter]:
    ADAPTERS[cls.name] = cls
    return cls


# Each module registers its adapter; the order here is the order docs/configuration.md's table follows.
from rewrite.adapters import (  # noqa: E402,F401  (each registers itself, once the registry above exists)
    cap,
    clamp,
    default,
    developer_to_system,
    drop,
    drop_tool_types,
    force,
    headers,
    reasoning_field,
    rename_model,
)
from rewrite.adapters.chain import AdapterChain, ProviderAdapters, chain_for  # noqa: E402,F401  (the package's names)
