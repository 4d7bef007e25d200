"""Stored-response continuity (Responses' `previous_response_id`) for targets that cannot resolve it.

A client of a protocol with stored-response continuity (its registration's `continuity`: the Responses API, used by
Codex CLI and the openai SDK) may send only its new input and name the response it continues; the vendor that served
that response resolves the rest from what it stored. A target of another protocol, or another provider of the same,
has never seen that response. So Rotator keeps, for each response it served, the input items of its request and the
output items of its answer (plus the response it continued), and expands the lineage into the whole conversation for
such a target. What the items are, and how a request names its previous response, is the protocol's
(protocols/stored_responses.py, protocols/openai_responses/continuity.py); the keeping is here.

- A response served natively by a provider of the protocol with its `store` on is left to that provider to resolve
  when the continuation goes to it again; the lineage is expanded only down to it.
- Responses not stored are kept only as long as their continuation needs them: a short time to live, and once a
  later response continues one, that later one takes its items over and it is dropped after a grace period (for a
  request sent again).
- A lineage Rotator cannot expand (expired, evicted, never seen) for a target that cannot resolve it is answered
  with the vendor's own error (OpenAI's 400 `previous_response_not_found`), never with a conversation silently cut
  short.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from protocols.sse import dumps
from protocols.stored_responses import StoredResponses
from rewrite.state.kv import Store

KEY_PREFIX = "responses:"
DEFAULT_TTL = 24 * 3600.0  # seconds, for responses stored (`store` on, the API's default)
EPHEMERAL_TTL = 30 * 60.0  # seconds, for `store: false` responses no later turn has continued yet
CONSUMED_GRACE = 60.0  # seconds a `store: false` response is kept after a later response took its items over


class UnknownResponse(Exception):
    """A previous response whose lineage Rotator does not hold, for a target that cannot resolve it."""

    def __init__(self, response_id: str) -> None:
        super().__init__(f"Previous response with id '{response_id}' not found.")
        self.response_id = response_id


@dataclass(slots=True)
class ServedResponse:
    """One response Rotator served: what it continued, its request's input items and its answer's output items."""

    previous: str | None
    input: list = field(default_factory=list)
    output: list = field(default_factory=list)
    provider: str = ""
    native: bool = False  # served by a provider of the client's protocol, which then holds it too (when stored)
    stored: bool = True  # the request's `store` (false: kept only until its continuation)
    # The pooled key that served it, by its fingerprint as the pool's kept state names it (rewrite/pool/keypool.py
    # `stored_id`): its account holds what the provider stored. "" unknown: no pool, or an entry from before.
    key: str = ""

    def resolvable_by(self, provider: str) -> bool:
        return self.native and self.stored and self.provider == provider


_FIELDS = frozenset(f.name for f in fields(ServedResponse))


@dataclass(slots=True)
class Expansion:
    """What `expand` made of a request: the body to send, and how many earlier responses it replays."""

    body: dict
    replayed: int = 0


class Continuity:
    def __init__(self, store: Store, ttl: float = DEFAULT_TTL, ephemeral_ttl: float = EPHEMERAL_TTL) -> None:
        self.store = store
        self.ttl = ttl
        self.ephemeral_ttl = ephemeral_ttl

    @staticmethod
    def _key(client: str, response_id: str) -> str:
        return KEY_PREFIX + hashlib.sha256(f"{client}\0{response_id}".encode()).hexdigest()

    def _load(self, client: str, response_id: str) -> ServedResponse | None:
        value = self.store.get(self._key(client, response_id), named=True)
        if value is None:
            return None
        try:
            record = json.loads(value)
            # (a field this version does not know, written by a newer worker sharing the Redis, is passed over)
            return ServedResponse(**{k: v for k, v in record.items() if k in _FIELDS})
        except (ValueError, TypeError, AttributeError):
            return None  # not a record of ours

    def _save(self, client: str, response_id: str, served: ServedResponse, ttl: float | None = None) -> None:
        if ttl is None:
            ttl = self.ttl if served.stored else self.ephemeral_ttl
        value = dumps(asdict(served))
        self.store.put(self._key(client, response_id), value, ttl)

    def expand(self, stored: StoredResponses, body: dict, provider: str, resolves: bool,
               client: str = "") -> Expansion:
        """The request to send to `provider` (which `resolves` the protocol's stored responses itself: it speaks
        the client's protocol): unchanged when it can resolve the previous response itself, else with the
        lineage's items in front of its input (and no previous response, or one naming the newest response the
        provider holds). `stored` is the client's protocol's continuity. Raises UnknownResponse."""
        previous = stored.previous(body)
        if previous is None or previous == "":
            return Expansion(body)
        if not isinstance(previous, str):
            if resolves:
                return Expansion(body)  # the provider answers what it makes of it
            raise UnknownResponse(str(previous))
        served = self._load(client, previous)
        if served is None:
            if resolves:
                return Expansion(body)  # not one Rotator served elsewhere: the provider may hold it
            raise UnknownResponse(previous)
        chain: list[ServedResponse] = []
        seen: set[str] = set()
        resolvable: str | None = None
        response_id: str | None = previous
        while response_id is not None:
            if served is None or response_id in seen:  # a lineage that loops is no lineage
                raise UnknownResponse(response_id)
            seen.add(response_id)
            if resolves and served.resolvable_by(provider):
                resolvable = response_id
                break
            chain.append(served)
            response_id = served.previous
            served = self._load(client, response_id) if response_id is not None else None
        if not chain:
            return Expansion(body)
        items = [item for s in reversed(chain) for item in (*s.input, *s.output)]
        return Expansion(stored.expanded(body, items, resolvable), len(chain))

    def holder(self, stored: StoredResponses, body: dict, provider: str, client: str = "") -> str:
        """The fingerprint of the pooled key whose account holds the previous response `body` names, when `provider`
        stored it (served natively, `store` on); "" when Rotator does not know of one."""
        previous = stored.previous(body)
        served = self._load(client, previous) if isinstance(previous, str) and previous else None
        return served.key if served is not None and served.resolvable_by(provider) else ""

    def record(self, stored: StoredResponses, response_id: str, body: dict, output: list, provider: str,
               native: bool, client: str = "", key: str = "") -> None:
        """Keep a response Rotator served: `body` is the client's request as it sent it, `output` the answer's
        output items, `key` the fingerprint of the pooled key that served it ("" unknown). A response not stored
        that it continues hands its items over to this one."""
        named = stored.previous(body)
        if not response_id or response_id == named:
            return  # an id the upstream did not make unique cannot name a turn
        previous = named if isinstance(named, str) and named else None
        served = ServedResponse(previous, stored.input_items(body), list(output), provider, native, stored.stored(body),
                                key)
        parent = self._load(client, previous) if previous is not None else None
        if previous is not None and parent is not None and not parent.stored:
            # Take the parent's items over, so it need not outlive this turn.
            served.previous = parent.previous
            served.input = [*parent.input, *parent.output, *served.input]
            self._save(client, previous, parent, ttl=CONSUMED_GRACE)
        self._save(client, response_id, served)
