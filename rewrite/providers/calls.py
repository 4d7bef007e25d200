"""What a provider whose host speaks several protocols by path says of its calls (`ProviderSpec.calls`): which paths
are generation calls, in which of its families (the protocol follows the path: Bedrock's Converse calls, and its
InvokeModel calls, Anthropic Messages in an envelope of Bedrock's), and what another target of a route gets of its
client's body. Every other path of its hosts is not a generation call: forwarded with only the credential put in
(Router.route). A subscription login says the same of its own calls (rewrite/providers/login.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import protocols
from protocols.base import Protocol
from protocols.envelope import Envelope

Headers = list[tuple[str, str]]


def _same(body: dict) -> dict:
    return body


@dataclass(frozen=True)
class Calls:
    paths: re.Pattern[str]  # generation paths (without the query); full match
    families: tuple[str, ...]
    envelope: Envelope | None = None  # calls its clients send in an envelope of the vendor's (opened by the engine)
    foreign_body: Callable[[dict], dict] = _same  # the client's (opened) body as another target of a route gets it

    def generation(self, method: str, path: str) -> Protocol | None:
        """The protocol of a generation call (path without the query); None for another path of its hosts."""
        if not self.paths.fullmatch(path):
            return None
        proto = protocols.detect(method, path if self.envelope is None else self.envelope.sample_path(path))
        return proto if proto is not None and proto.family in self.families else None

    def foreign(self, headers: Headers) -> Headers:
        """Its client's headers as another target gets them: as they are (the engine took the credential out)."""
        return headers
