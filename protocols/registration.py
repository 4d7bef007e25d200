"""Everything the engine knows of one protocol, in one registration made in the protocol's own folder.

`protocols/<name>/__init__.py` builds its `REGISTRATION`; `protocols/__init__.py` lists the packages and registers
them in order. The engine derives its tables (labels, credential styles, usage readers, which protocol a provider
family speaks, which answers carry state) and asks for what one protocol alone does (its error reader, stored-response
continuity, signed thinking, the headers its requests need, a WebSocket fallback) from the registry instead of
naming protocols itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from protocols.base import Protocol
from protocols.capabilities import Capabilities
from protocols.conversation import Reader
from protocols.stored_responses import StoredResponses
from protocols.translate.base import Translator
from protocols.usage import UsageSniffer
from protocols.vendor_errors import GENERIC, ErrorReader
from protocols.windows import NO_WINDOWS, WindowReader


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
    - `errors`: what its vendors' error answers mean (protocols/vendor_errors.py: kind, refused parameters, delay,
      quota), which the engine's policy decides on.
    - `windows`: the usage windows its vendors' answers report (protocols/windows.py: a key's rate limits, a plan's
      windows), which the engine records and shows; none by default.
    - `continuity`: its requests may name an earlier response the vendor stored instead of repeating the
      conversation (protocols/stored_responses.py); the engine replays it for a target that cannot resolve it.
    - `signed_thinking`: with thinking on, its vendor refuses a last assistant turn with tool calls that lacks the
      vendor's own signed thinking (the field cache then sends the request without thinking, never forged).
    - `required_headers`: the headers a request translated for it must carry for its model (an API version), from
      the model's capabilities; a client of the protocol sends its own.
    - `websocket_refusal`: its clients may open it as a WebSocket and fall back to HTTPS POST when refused: the
      body of that refusal (status 426) for a message; None when its clients have no such fallback.
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
    errors: ErrorReader = GENERIC
    windows: WindowReader = NO_WINDOWS
    continuity: StoredResponses | None = None
    signed_thinking: bool = False
    required_headers: Callable[[Capabilities], tuple[tuple[str, str], ...]] | None = None
    websocket_refusal: Callable[[str], bytes] | None = None
    conversation: Reader | None = None

    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def family(self) -> str:
        return self.protocol.family
