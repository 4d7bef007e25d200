"""Credential pools, and how each protocol family carries a credential."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode


def mask(key: str) -> str:
    """A form of a key that identifies it to its owner without revealing it."""
    if len(key) <= 12:
        return "…" + key[-2:] if len(key) > 6 else "…"
    return f"{key[:4]}…{key[-4:]}"


@dataclass(frozen=True)
class CredentialStyle:
    """Where a protocol family carries the credential, and every place a client may have put its own."""

    header: str
    template: str  # how the key is written into `header`
    client_headers: tuple[str, ...]
    client_query: str | None = None
    # Headers tied to the client's own account (organization, billing project, cookies): beside a pooled key they
    # name another account, which the vendor may reject (and the key would then be benched as bad).
    account_headers: tuple[str, ...] = ()

    def apply(
        self, headers: list[tuple[str, str]], query: str, key: str, account: tuple[tuple[str, str], ...] = ()
    ) -> tuple[list[tuple[str, str]], str]:
        """Replace whatever credential and account headers the client sent with `key` and its `account` headers."""
        drop = self.client_headers + self.account_headers
        out = [(n, v) for n, v in headers if n.lower() not in drop]
        out.append((self.header, self.template.format(key)))
        out.extend(account)
        if self.client_query and query:
            pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != self.client_query]
            query = urlencode(pairs)
        return out, query


CREDENTIAL_STYLES = {
    "openai": CredentialStyle(
        "authorization", "Bearer {}", ("authorization", "api-key"),
        account_headers=("openai-organization", "openai-project", "cookie"),
    ),
    "anthropic": CredentialStyle("x-api-key", "{}", ("x-api-key", "authorization"), account_headers=("cookie",)),
    "gemini": CredentialStyle(
        "x-goog-api-key", "{}", ("x-goog-api-key", "authorization"), client_query="key",
        account_headers=("x-goog-user-project", "cookie"),
    ),
}


class KeyPool:
    """Round-robin over a provider's keys, skipping keys put aside (rate limited, rejected) until they are due."""

    def __init__(self, keys: list[str], clock=time.monotonic) -> None:
        self.keys = list(keys)
        self._next = 0
        self._benched_until: dict[str, float] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self.keys)

    def acquire(self, avoid: str | None = None) -> tuple[str, float]:
        """The next key to use and how long to wait before using it (0 unless every key is put aside)."""
        now = self._clock()
        n = len(self.keys)
        for i in range(n):
            key = self.keys[(self._next + i) % n]
            if self._benched_until.get(key, 0) <= now and not (key == avoid and n > 1):
                self._next = (self._next + i + 1) % n
                return key, 0.0
        key = min(self.keys, key=lambda k: self._benched_until.get(k, 0))
        self._next = (self.keys.index(key) + 1) % n
        return key, max(0.0, self._benched_until.get(key, 0) - now)

    def bench(self, key: str, seconds: float) -> None:
        """Put a key aside for `seconds`."""
        until = self._clock() + seconds
        self._benched_until[key] = max(until, self._benched_until.get(key, 0))
