"""Everything the engine knows of one protocol, its wire format, in one registration made in the protocol's own
folder; what is its vendor's rather than its wire's (credential, errors, windows, models) is its family's
(protocols/families/), which the registration names.

`protocols/<name>/__init__.py` builds its `REGISTRATION`; `protocols/__init__.py` registers the families and then
the protocols, in order. The engine derives its tables (labels, usage readers, which protocol a provider family
speaks, which answers carry state) and asks for what one protocol alone does (stored-response continuity, signed
thinking, the headers its requests need, a WebSocket fallback) from the registry instead of naming protocols
itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from protocols.base import Protocol
from protocols.capabilities import Capabilities
from protocols.evidence import Reader
from protocols.families import Family
from protocols.resume import Resumer
from protocols.stored_responses import StoredResponses
from protocols.translate.base import Translator
from protocols.usage import UsageSniffer


@dataclass(frozen=True)
class Registration:
    """One protocol as the engine sees it.

    - `protocol`: recognition (paths, methods, streaming), its repairer and aggregator, its error shape; its
      `name` is the registration's.
    - `translator`: to and from the unified form, for routes to a vendor of another protocol.
    - `usage`: the reader of an answer's usage (a stream's events, or a whole answer).
    - `label`: what a person reads in the flow view.
    - `family`: the vendor family whose providers speak it (its credential style, error and window readers, models:
      protocols/families/), the one its protocol's `family` names; registering a protocol of a family not yet
      registered registers the family too.
    - `stateful`: its answers carry opaque reasoning state its vendor wants back on the next turn (the field
      cache keeps it for a client of another protocol).
    - `choice`: the value of a provider's `protocol` key that picks it among its family's protocols (None when
      the family has one). The family's first registered protocol is what its providers speak by default.
    - `continuity`: its requests may name an earlier response the vendor stored instead of repeating the
      conversation (protocols/stored_responses.py); the engine replays it for a target that cannot resolve it.
    - `signed_thinking`: with thinking on, its vendor refuses a last assistant turn with tool calls that lacks the
      vendor's own signed thinking (the field cache then sends the request without thinking, never forged).
    - `required_headers`: the headers a request translated for it must carry for its model (an API version), each
      as (header, the column of `protocols.capabilities.Capabilities` that holds its value; none: not sent); a
      client of the protocol sends its own.
    - `websocket_refusal`: its clients may open it as a WebSocket and fall back to HTTPS POST when refused: the
      body of that refusal (status 426) for a message; None when its clients have no such fallback.
    - `evidence`: the reader of a request's conversation evidence (protocols/evidence.py): pins, the
      client's session id, the lineage, the cache it asks for; None for a protocol that has none.
    - `resumer`: how a stream cut after its first token is continued for its client (protocols/resume/, its own in
      `protocols/<name>/resume.py`); None for a protocol whose cut answers are not continued.
    """

    protocol: Protocol
    translator: Translator
    usage: type[UsageSniffer]
    label: str
    family: Family
    stateful: bool = False
    choice: str | None = None
    continuity: StoredResponses | None = None
    signed_thinking: bool = False
    required_headers: tuple[tuple[str, str], ...] = ()
    websocket_refusal: Callable[[str], bytes] | None = None
    evidence: Reader | None = None
    resumer: Resumer | None = None

    def __post_init__(self) -> None:
        if self.protocol.family != self.family.name:
            raise ValueError(f"protocol {self.name}: its family is {self.protocol.family!r}, its registration's "
                             f"{self.family.name!r}")
        columns = {f.name for f in dataclasses.fields(Capabilities)}
        if unknown := [column for _, column in self.required_headers if column not in columns]:
            raise ValueError(f"protocol {self.name}: required_headers name no capability column: {unknown}")

    @property
    def name(self) -> str:
        return self.protocol.name
