"""Who a client is (the API key its tool sends), and keeping that key out of flows.

Pure: works on header lists and query strings, for the addons and the engine alike.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_plus

from rewrite.config import ClientConfig
from rewrite.credentials import CredentialStyle, mask

BEARER = "bearer"


class ClientKeys:
    """The configured clients; `identify` says which one a request's credential belongs to."""

    def __init__(self, clients: list[ClientConfig]) -> None:
        self._clients = [(c.name, c.key.encode()) for c in clients]

    def __bool__(self) -> bool:
        return bool(self._clients)

    def identify(self, presented: list[str]) -> str | None:
        """The name of the client whose key is among `presented`, or None. Every pair is compared, in constant
        time, so how long this takes says nothing about how close a guess came."""
        found = None
        for candidate in presented:
            given = candidate.encode("utf-8", "surrogateescape")
            for name, key in self._clients:
                if hmac.compare_digest(given, key) and found is None:
                    found = name
        return found


def presented(style: CredentialStyle, headers: list[tuple[str, str]], query: str) -> list[str]:
    """Every key the client sent where its protocol family carries one: a credential header (a Bearer token
    without its scheme) or the query parameter."""
    keys = [_token(v) for n, v in headers if n.lower() in style.client_headers]
    if style.client_query:
        keys += [unquote_plus(p.partition("=")[2]) for p in _parts(query) if _name(p) == style.client_query]
    return keys


@dataclass
class HeldCredential:
    """A client's own credential, taken out of a request so the flow holds only its masked form; `restore` puts
    it back into the request that goes upstream (only when no pooled key replaces it)."""

    query_name: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)  # (name, value) as the client sent them
    query: list[str] = field(default_factory=list)  # `name=value` parts of the query as the client sent them

    def __bool__(self) -> bool:
        return bool(self.headers or self.query)

    def restore(self, headers: list[tuple[str, str]], query: str) -> tuple[list[tuple[str, str]], str]:
        names = {n.lower() for n, _ in self.headers}
        out = [(n, v) for n, v in headers if n.lower() not in names] + self.headers
        raw = iter(self.query)
        parts = [next(raw, p) if _name(p) == self.query_name else p for p in _parts(query)]
        return out, "&".join(parts)


def hide(
    style: CredentialStyle, headers: list[tuple[str, str]], query: str
) -> tuple[list[tuple[str, str]], str, HeldCredential]:
    """The headers and query with the client's credential masked, and what was taken out."""
    held = HeldCredential(style.client_query)
    out = []
    for n, v in headers:
        if n.lower() in style.client_headers:
            held.headers.append((n, v))
            v = _masked(v)
        out.append((n, v))
    parts = _parts(query)
    for i, p in enumerate(parts):
        if style.client_query and _name(p) == style.client_query:
            held.query.append(p)
            name, _, value = p.partition("=")
            parts[i] = f"{name}={quote(mask(unquote_plus(value)), safe='')}"
    return out, "&".join(parts), held


def _token(value: str) -> str:
    scheme, sep, token = value.strip().partition(" ")
    return token.strip() if sep and scheme.lower() == BEARER else value.strip()


def _masked(value: str) -> str:
    scheme, sep, token = value.strip().partition(" ")
    return f"{scheme} {mask(token.strip())}" if sep and scheme.lower() == BEARER else mask(value.strip())


def _parts(query: str) -> list[str]:
    return query.split("&") if query else []


def _name(part: str) -> str:
    return unquote_plus(part.partition("=")[0])
