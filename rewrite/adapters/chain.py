"""The adapters a request gets: its provider's, then its model's, in config order."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocols.base import Protocol
from rewrite.adapters.entries import AdapterEntry
from rewrite.adapters.registry import Adapter, UpstreamRequest


@dataclass(frozen=True, slots=True)
class AdapterChain:
    adapters: tuple[Adapter, ...] = ()  # in order; empty: nothing to apply
    answering: tuple[Adapter, ...] = field(init=False)  # the ones with answer hooks, last first

    def __post_init__(self) -> None:
        object.__setattr__(self, "answering", tuple(a for a in reversed(self.adapters) if a.touches_answers))

    def apply_request(self, body: dict, headers: list[tuple[str, str]], model: str) -> UpstreamRequest:
        """The adapted request. `body` and `headers` are left as they are (attempts reuse them)."""
        req = UpstreamRequest(copy.deepcopy(body), list(headers), model)
        for adapter in self.adapters:
            adapter.request(req)
        return req

    def model_sent(self, model: str) -> str:
        """The model the host is asked for when the client's request names `model` (a `rename_model` renames it)."""
        for adapter in self.adapters:
            model = adapter.model(model)
        return model

    def apply_to_path(self, path: str, body: dict, headers: list[tuple[str, str]], model: str,
                      proto: Protocol | None):
        """`apply_request` for the engine: `(path, body, headers)`, with a renamed model put in the path when the
        request's protocol (`proto`) names it there (`Protocol.model_in_path`) rather than in the body."""
        req = self.apply_request(body, headers, model)
        if model and req.model != model and proto is not None and proto.model_in_path:
            path = proto.with_model(path, req.model)
        return path, req.body, req.headers

    def answer_event(self, data: dict) -> dict:
        """One parsed event of a streamed answer, as the client should read it (changed in place)."""
        for adapter in self.answering:
            adapter.answer_event(data)
        return data

    def answer_body(self, body: dict) -> dict:
        """A non-stream answer, as the client should read it (changed in place)."""
        for adapter in self.answering:
            adapter.answer_body(body)
        return body


EMPTY_CHAIN = AdapterChain()


class ProviderAdapters:
    """A provider's chains, built once at start-up: one for its configured models, one for every other model.
    `configured`: whether any chain has an adapter (a provider without any never looks a chain up)."""

    def __init__(self, adapters: Sequence[AdapterEntry] = (), models: dict[str, list[AdapterEntry]] | None = None):
        common = tuple(entry.build() for entry in adapters)
        self.common = AdapterChain(common) if common else EMPTY_CHAIN
        self.per_model = {
            model: AdapterChain(common + tuple(entry.build() for entry in entries))
            for model, entries in (models or {}).items()
        }
        self.configured = any(chain.adapters for chain in (self.common, *self.per_model.values()))

    def chain_for(self, model: str) -> AdapterChain:
        return self.per_model.get(model, self.common)


NO_ADAPTERS = ProviderAdapters()
