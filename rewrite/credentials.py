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


# A key that stalls before its first token, or cannot be reached, rests this long, doubling with each failure in a
# row up to STALL_REST_MAX; its next success forgets them.
STALL_REST = 5.0
STALL_REST_MAX = 300.0


@dataclass(frozen=True)
class Resting:
    """Why no key of a pool can be used now."""

    seconds: float  # until the soonest key is back
    rejected: bool  # every key was refused by the vendor (401/403), rather than rate limited


class KeyPool:
    """Round-robin over a provider's keys, skipping keys put aside until they are due.

    Two kinds of rest: a key is benched (rate limited, out of quota, rejected) and not used until it is due, or
    it rests after stalling, and is used only when no other key is ready (a stall may be the vendor's, not the
    key's, and must not make a request wait)."""

    def __init__(self, keys: list[str], clock=time.monotonic) -> None:
        self.keys = list(keys)
        self._next = 0
        self._benched_until: dict[str, float] = {}
        self._rejected: set[str] = set()  # benched keys whose longest bench came from a 401/403
        self._slow_until: dict[str, float] = {}
        self._stalls: dict[str, int] = {}  # failures in a row, per key that stalled
        self._clock = clock

    def __len__(self) -> int:
        return len(self.keys)

    def acquire(self, avoid: str | None = None) -> tuple[str, float]:
        """The next key to use and how long to wait before using it (0 unless every key is benched)."""
        now = self._clock()
        n = len(self.keys)
        for i in range(n):
            key = self.keys[(self._next + i) % n]
            if (self._benched_until.get(key, 0) <= now and self._slow_until.get(key, 0) <= now
                    and not (key == avoid and n > 1)):
                self._next = (self._next + i + 1) % n
                return key, 0.0
        # None is fully ready: the key back soonest; the one that just failed before one resting after a stall.

        def rank(i: int) -> tuple:
            key = self.keys[(self._next + i) % n]
            return (max(0.0, self._benched_until.get(key, 0) - now), max(0.0, self._slow_until.get(key, 0) - now),
                    key == avoid, i)

        best = min(range(n), key=rank)
        key, wait = self.keys[(self._next + best) % n], rank(best)[0]
        self._next = (self._next + best + 1) % n
        return key, wait

    def bench(self, key: str, seconds: float, rejected: bool = False) -> None:
        """Put a key aside for `seconds`; `rejected`: because the vendor refused it."""
        until = self._clock() + seconds
        if until >= self._benched_until.get(key, 0):
            self._benched_until[key] = until
            if rejected:
                self._rejected.add(key)
            else:
                self._rejected.discard(key)

    def stalled(self, key: str) -> float:
        """The key produced nothing in time, or could not be reached: rest it, longer for each failure in a row.
        Returns the rest in seconds."""
        count = self._stalls[key] = self._stalls.get(key, 0) + 1
        rest = min(STALL_REST * 2 ** (count - 1), STALL_REST_MAX)
        self._slow_until[key] = self._clock() + rest
        return rest

    def succeeded(self, key: str) -> None:
        """The key answered: forget its stalls."""
        if self._stalls:
            self._stalls.pop(key, None)
            self._slow_until.pop(key, None)

    def resting(self) -> Resting:
        """How long until a key is back, and whether every key was rejected (when `acquire` says to wait)."""
        now = self._clock()
        soonest = min(max(0.0, self._benched_until.get(k, 0) - now) for k in self.keys)
        rejected = all(k in self._rejected and self._benched_until[k] > now for k in self.keys)
        return Resting(soonest, rejected)

    def snapshot(self) -> list[dict]:
        """Each key, masked, with its state ("ready", "resting", or "out": rejected by the vendor), the seconds
        until it is back and why it is not ready (for the status page)."""
        now = self._clock()
        out = []
        for key in self.keys:
            benched, slow = self._benched_until.get(key, 0) - now, self._slow_until.get(key, 0) - now
            if benched > 0:
                state = ("out", benched, "rejected by the vendor (401/403)") if key in self._rejected else (
                    "resting", benched, "rate limited")
            elif slow > 0:
                state = ("resting", slow, f"stalled or unreachable ({self._stalls.get(key, 1)} in a row)")
            else:
                state = ("ready", None, None)
            out.append(dict(zip(("state", "seconds", "why"), state), key=mask(key)))
        return out
