"""How each protocol family carries a credential; the key pools themselves are in rewrite/pool/."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from rewrite.pool import STALL_REST, STALL_REST_MAX, KeyPool, Resting, mask  # noqa: F401  (their old home)


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
