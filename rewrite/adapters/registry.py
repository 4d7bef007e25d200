"""What an adapter is (`Adapter`, and the `UpstreamRequest` it may change) and the registry of adapters by name, which
each adapter's module fills with `register` (the package imports every one of them)."""

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
