"""Vendor families: what a vendor is, whichever of its wire formats (protocols/<name>/) a request speaks.

A family is how its providers take a key (`CredentialStyle`), what its error answers mean (an `ErrorReader`,
protocols/vendor_errors.py), the usage windows its answers report (a `WindowReader`, protocols/windows.py) and what
its models accept (a capability table, protocols/capabilities.py). Each is one package here, `families/<name>/`,
whose `__init__.py` builds its `FAMILY`; `protocols/__init__.py` registers them, and each protocol's registration
names its family (protocols/registration.py). What two families read alike is a module of its own here: Google's
RPC error details (google_rpc.py), which Google's OpenAI-compatible endpoint sends too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from protocols.capabilities import GUESS, Capabilities, matching
from protocols.vendor_errors import GENERIC, ErrorReader
from protocols.windows import NO_WINDOWS, WindowReader


@dataclass(frozen=True)
class CredentialStyle:
    """Where a family's providers carry the credential, and every place a client may have put its own. A pure
    description: the key pools are the engine's."""

    header: str
    template: str  # how the key is written into `header`
    client_headers: tuple[str, ...]
    client_query: str | None = None
    # Headers tied to the client's own account (organization, billing project, cookies): beside a pooled key they
    # name another account, which the vendor may reject (and the key would then be benched as bad).
    account_headers: tuple[str, ...] = ()
    # The account a pooled key may name in the config (a key's `organization`, `project`), and the header each
    # goes upstream in: (field, header).
    account_fields: tuple[tuple[str, str], ...] = ()

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


@dataclass(frozen=True)
class Family:
    """One vendor family as the engine sees it, the same for every protocol its providers speak.

    - `name`: the provider `kind` a config names, and every one of its protocols' `Protocol.family`.
    - `credential`: how its providers take a key.
    - `errors`: what its error answers mean (kind, refused parameters, delay, quota), which the engine's policy
      decides on; the HTTP hints alone by default.
    - `windows`: the usage windows its answers report (a key's rate limits), which the engine records and shows;
      none by default.
    - `models`: what its models accept, (model globs, capabilities) rows, the first matching row winning;
      `unknown`: what a model no row names is sent as (`known` False), an OpenAI-compatible server's guess by
      default.
    - `cache_minimums`: the fewest prompt tokens its models cache, (model globs, tokens) rows likewise.
    - `hosted`: a model another vendor made that its providers serve under an id of their own (Bedrock's
      `us.anthropic.claude-sonnet-4-5-20250929-v1:0`): (that vendor's family, its name there), whose table then says
      what it accepts and caches; None for a model of its own.
    """

    name: str
    credential: CredentialStyle
    errors: ErrorReader = GENERIC
    windows: WindowReader = NO_WINDOWS
    models: tuple[tuple[tuple[str, ...], Capabilities], ...] = ()
    unknown: Capabilities = GUESS
    cache_minimums: tuple[tuple[tuple[str, ...], int], ...] = ()
    hosted: Callable[[str], tuple[str, str] | None] | None = None

    def capabilities(self, model: str) -> Capabilities:
        """What `model` accepts: its row, else the family's guess."""
        found = matching(self.models, model)
        return found if found is not None else self.unknown

    def cache_minimum(self, model: str) -> int | None:
        """The fewest prompt tokens `model` caches; None for a model no row names."""
        return matching(self.cache_minimums, model)
