"""What a provider's hosts speak when one host speaks several protocol families, the protocol following the path: a
subscription login's (rewrite/providers/login.py) or a cloud platform's (rewrite/providers/platform.py). Both are a
`Wire`; what only a login or only a platform has is its own class's.

- `paths` (a regex, full match, the path without its query) and `families`: the generation calls it serves (the
  protocol is the registered one the path names, through the envelope if there is one); every other path of its
  hosts is not Rotator's (`Router.route` returns None and mitmproxy forwards it as it came), unless it `forwards` it;
- `credential`: where its clients carry their credential (masked in flows, taken out for another target);
- `errors`, `windows`: dialects added to its protocols' readers (`Provider.errors`, `Provider.windows`);
- `envelope`: its clients wrap their protocol's calls in an envelope of its own (protocols/envelope.py): the engine
  reads and repairs the call inside and puts it back as it came (Code Assist's, Vertex's paths and Claude bodies,
  Azure's deployment paths, Bedrock's InvokeModel);
- `forwarded`: calls of its hosts it serves without a protocol, forwarded with the client's credential as they came;
- `claims(headers)`: whether a request to its hosts is its own (`Router.route` asks each wire): every one for a
  platform's (`claims` None); for a login's, one that carries its login (rewrite/providers/login.py), which is the
  client's own credential: never pooled, never sent to another provider (a route's target takes no other provider's
  client, `Provider.serves_other_clients`), and such a wire may share its host with a provider that
  has none (Claude's OAuth token and Anthropic's API keys both go to api.anthropic.com);
- `owns(headers, path, body)` and `shared_hosts`: on a host another claiming wire claims too (Cloud Code's production
  host: Gemini CLI's login and Antigravity's), whether a request it claims is its own, by what its headers, path
  and body (None when not held yet) say; the other wire takes the rest (`Router.claimed`);
- `lookups` and `lookup(path, status, body, now)`: the side calls on its hosts in which a login's client reads its
  plan (Antigravity's `fetchAvailableModels`, Codex's reset credits), which pass as they came, and what their
  answers report (`protocols.windows.Lookup`: the plan's windows, facts shown beside them), kept on the login's
  entry (`Router.looked_up`);
- `side_hosts`: other hosts its client sends the same credential to (a login's plan look-ups): never served, and
  tunnelled untouched (addons/scope.py: no flow); with `rotator_intercept=all` their flows show it masked once
  sent, as its hosts' other paths do;
- `foreign(headers)`, `foreign_body(body)`, `foreign_model(model)`: its client's headers, (opened) body and model
  as another target of a route gets them (the engine has taken every credential header out already; the model when
  the route names none): what only its backend reads left out (a login's session headers, Bedrock's
  `anthropic_version` in an InvokeModel body, Antigravity's `-thinking` aliases);
- `carried(headers, envelope)`: the headers of its client's call to another target that speaks the same protocol,
  with what its envelope's body (`envelope`, as it came) said that such a target takes in a header (the betas of
  an InvokeModel body, `anthropic_beta`: Anthropic's API takes them in `anthropic-beta`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import protocols
from protocols.base import Protocol
from protocols.envelope import Envelope
from protocols.families import CredentialStyle
from protocols.vendor_errors import Dialect
from protocols.windows import NOTHING_LOOKED_UP, Lookup, WindowDialect
from rewrite.config_providers import ProviderConfig

Headers = list[tuple[str, str]]


def _unchanged(headers: Headers) -> Headers:
    return headers


def _same(body: dict) -> dict:
    return body


def _same_name(model: str) -> str:
    return model


def _nothing_carried(headers: Headers, envelope: dict) -> Headers:
    return headers


def _nothing_looked_up(path: str, status: int, body: bytes, now: float) -> Lookup:
    return NOTHING_LOOKED_UP


@dataclass(frozen=True)
class Wire:
    paths: re.Pattern[str]  # generation paths (without the query) it serves; full match
    families: tuple[str, ...]
    credential: CredentialStyle
    errors: tuple[Dialect, ...] = ()
    windows: tuple[WindowDialect, ...] = ()
    envelope: Envelope | None = None
    forwarded: re.Pattern[str] | None = None  # paths (without the query) served without a protocol; full match
    foreign: Callable[[Headers], Headers] = _unchanged
    foreign_body: Callable[[dict], dict] = _same
    foreign_model: Callable[[str], str] = _same_name
    carried: Callable[[Headers, dict], Headers] = _nothing_carried
    claims: Callable[[Mapping[str, str]], bool] | None = None  # None: every request to its hosts is its own
    side_hosts: tuple[str, ...] = ()
    owns: Callable[[Mapping[str, str], str, bytes | None], bool] | None = None
    shared_hosts: tuple[str, ...] = ()
    lookups: re.Pattern[str] | None = None  # full match, the path without its query
    lookup: Callable[[str, int, bytes, float], Lookup] = _nothing_looked_up

    def claim(self, headers: Mapping[str, str]) -> bool:
        """Whether a request to its hosts with these headers is its own (see the module's docstring)."""
        return self.claims is None or self.claims(headers)

    def fields(self, name: str, pc: ProviderConfig, configured: Any) -> dict:
        """What the provider `name` it speaks for holds of it, its config `pc` checked (`configured`: a platform's,
        as its config makes it): rewrite/providers/__init__.py's `Provider` fields."""
        return {}

    def generation(self, method: str, path: str) -> Protocol | None:
        """The protocol of a request it serves (path without the query); None for another path of its hosts."""
        if not self.paths.fullmatch(path):
            return None
        proto = protocols.detect(method, path if self.envelope is None else self.envelope.sample_path(path))
        return proto if proto is not None and proto.family in self.families else None

    def token(self, headers: list[tuple[str, str]]) -> str | None:
        """Its clients' credential among a request's headers (a bearer token without its scheme)."""
        for name, value in headers:
            if name.lower() in self.credential.client_headers and value.strip():
                scheme, sep, token = value.strip().partition(" ")
                return token.strip() if sep and scheme.lower() == "bearer" else value.strip()
        return None

    def forwards(self, method: str, path: str) -> bool:
        """Whether it serves this call without a protocol (forwarded on the client's credential as they came)."""
        return method == "POST" and self.forwarded is not None and self.forwarded.fullmatch(path) is not None
