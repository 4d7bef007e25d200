"""Everything the engine knows of one protocol, in one registration made in the protocol's own folder.

`protocols/<name>/__init__.py` builds its `REGISTRATION`; `protocols/__init__.py` lists the packages and registers
them in order. The engine derives its tables (labels, credential styles, usage readers, which protocol a provider
family speaks, which answers carry state) from the registry instead of naming protocols itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from protocols.base import Protocol
from protocols.conversation import Reader
from protocols.translate.base import Translator
from protocols.usage import UsageSniffer


@dataclass(frozen=True)
class CredentialStyle:
    """Where a protocol family carries the credential, and every place a client may have put its own. A pure
    description: the key pools are the engine's."""

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


@dataclass(frozen=True)
class Registration:
    """One protocol as the engine sees it.

    - `protocol`: recognition (paths, methods, streaming), its repairer and aggregator, its error shape; its
      `name` and provider `family` are the registration's.
    - `translator`: to and from the unified form, for routes to a vendor of another protocol.
    - `usage`: the reader of an answer's usage (a stream's events, or a whole answer).
    - `label`: what a person reads in the flow view.
    - `credential`: how the family's providers take a key (every protocol of a family carries the same).
    - `stateful`: its answers carry opaque reasoning state its vendor wants back on the next turn (the field
      cache keeps it for a client of another protocol).
    - `choice`: the value of a provider's `protocol` key that picks it among its family's protocols (None when
      the family has one). The family's first registered protocol is what its providers speak by default.
    - `conversation`: the reader of a request's conversation evidence (protocols/conversation.py): pins, the
      client's session id, the lineage, the cache it asks for; None for a protocol that has none.
    """

    protocol: Protocol
    translator: Translator
    usage: type[UsageSniffer]
    label: str
    credential: CredentialStyle
    stateful: bool = False
    choice: str | None = None
    conversation: Reader | None = None

    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def family(self) -> str:
        return self.protocol.family
