"""Who a client is (the API key its tool sends), and keeping that key out of flows.

Pure: works on header lists and query strings, for the addons and the engine alike.
"""

from __future__ import annotations

import binascii
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_plus

from rewrite.config import ClientConfig
from rewrite.pool import mask
from rewrite.providers.credentials import CredentialStyle

BEARER = "bearer"
# Failed client-key attempts from one client address: after GUESS_BURST of them within GUESS_WINDOW seconds (from
# the first), every request of that address that needs a client key is answered 429 until the window ends.
GUESS_BURST = 10
GUESS_WINDOW = 60.0
GUESS_ADDRESSES = 4096  # addresses remembered before the ones whose window has ended are forgotten

NO_MATCH = "no client key matched"
SEVERAL = "several credentials in one request"
NO_PROXY_MATCH = "proxy credentials matched no client"
BASIC = "basic"


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

    def identify_pair(self, name: str, key: str) -> str | None:
        """The client named `name` whose key is `key` (proxy credentials: NAME:KEY), or None; as `identify`, every
        client's name and key compared in constant time."""
        given_name, given_key = name.encode("utf-8", "surrogateescape"), key.encode("utf-8", "surrogateescape")
        found = None
        for known, secret in self._clients:
            same = hmac.compare_digest(given_name, known.encode()) & hmac.compare_digest(given_key, secret)
            if same and found is None:
                found = known
        return found


@dataclass(frozen=True, slots=True)
class ClientKeyVerdict:
    """What the gate says of a request's client key: the client it names, or why it is refused."""

    client: str | None = None
    status: int = 0  # 401 or 429 when refused
    reason: str = ""  # for the log and the flow
    retry_after: int = 0  # 429: seconds until the address may try again
    tell: bool = True  # worth a log line (a limited address is logged once per window)


@dataclass(slots=True)
class _Window:
    start: float
    failures: int = 0
    told: bool = False  # its 429 was logged


class Guesses:
    """Failed client-key attempts per client address, in fixed windows of GUESS_WINDOW seconds."""

    def __init__(self, burst: int = GUESS_BURST, window: float = GUESS_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.window, self.clock = burst, window, clock
        self._windows: dict[str, _Window] = {}

    def _current(self, address: str) -> _Window | None:
        w = self._windows.get(address)
        if w is not None and self.clock() - w.start >= self.window:
            del self._windows[address]
            return None
        return w

    def limited(self, address: str) -> ClientKeyVerdict | None:
        """The 429 for an address that has used up its attempts in this window; None: it may try."""
        w = self._current(address)
        if w is None or w.failures < self.burst:
            return None
        tell, w.told = not w.told, True
        left = max(1, math.ceil(w.start + self.window - self.clock()))
        return ClientKeyVerdict(status=429, reason=f"{w.failures} failed client-key attempts from {address}",
                       retry_after=left, tell=tell)

    def failed(self, address: str) -> None:
        w = self._current(address)
        if w is None:
            if len(self._windows) >= GUESS_ADDRESSES:
                now = self.clock()
                self._windows = {a: v for a, v in self._windows.items() if now - v.start < self.window}
            w = self._windows[address] = _Window(self.clock())
        w.failures += 1


def check(keys: ClientKeys, guesses: Guesses, address: str, sent: list[str]) -> ClientKeyVerdict:
    """The gate on a request that needs a client key: an address over its attempts is refused without looking
    (429); one credential per request (several distinct ones, a way to try many guesses at once, are refused);
    and it must be a client's key. A refusal of a request that carried a credential counts as a failed attempt."""
    limited = guesses.limited(address)
    if limited is not None:
        return limited
    candidates = {k for k in sent if k}
    name = keys.identify(list(candidates)) if len(candidates) == 1 else None
    if name is not None:
        return ClientKeyVerdict(client=name)
    if candidates:
        guesses.failed(address)
    return ClientKeyVerdict(status=401, reason=SEVERAL if len(candidates) > 1 else NO_MATCH)


def check_proxy(keys: ClientKeys, guesses: Guesses, address: str, authorization: str) -> ClientKeyVerdict:
    """The gate on proxy credentials (`Proxy-Authorization: Basic NAME:KEY`): the client key's rules (an address
    over its attempts: 429; a wrong pair counts as a failed attempt), refused with 407."""
    limited = guesses.limited(address)
    if limited is not None:
        return limited
    pair = basic_credentials(authorization)
    name = keys.identify_pair(*pair) if pair is not None else None
    if name is not None:
        return ClientKeyVerdict(client=name)
    guesses.failed(address)
    return ClientKeyVerdict(status=407, reason=NO_PROXY_MATCH)


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """The (user, password) of a `Basic` authorization header's value; None when it is not one."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != BASIC:
        return None
    try:
        user, sep, password = binascii.a2b_base64(encoded.strip().encode()).decode("utf-8", "replace").partition(":")
    except (binascii.Error, ValueError):
        return None
    return (user, password) if sep else None


def presented(style: CredentialStyle, headers: list[tuple[str, str]], query: str) -> list[str]:
    """Every key the client sent where its protocol family carries one: a credential header (a Bearer token
    without its scheme) or the query parameter."""
    keys = [_token(v) for n, v in headers if n.lower() in style.client_headers]
    if style.client_query:
        keys += [unquote_plus(p.partition("=")[2]) for p in _parts(query) if _name(p) == style.client_query]
    return keys


def without_query_key(style: CredentialStyle, query: str) -> str:
    """The query without the parameter a client may carry its key in."""
    return "&".join(p for p in _parts(query) if not (style.client_query and _name(p) == style.client_query))


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
