"""Conversation state across targets: the engine's hooks (rewrite/routing/targets.py) for the field cache and
stored-response continuity.

- Before a request goes to a target: a previous response (Responses' `previous_response_id`) the target cannot
  resolve is expanded (rewrite/conversation/continuity.py), or refused with the vendor's own error when Rotator
  does not hold its lineage.
- Before a translated request is encoded: the target's opaque reasoning state is put back
  (rewrite/conversation/field_cache.py).
- Before a key is picked: the key whose account holds the previous response a request continues, as recorded.
- After an answer: a translated target's opaque state is kept, and the response of a client whose protocol has
  stored-response continuity is recorded; each names the pooled key that made it.

Which protocols have either is their registrations' (`stateful`, `continuity`), never named here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols import registry
from protocols.base import Protocol
from protocols.stored_responses import StoredResponses
from protocols.unified import Answer, Request
from rewrite.conversation.continuity import Continuity, UnknownResponse
from rewrite.conversation.field_cache import FieldCache, Issuer, leaves_state
from rewrite.pool.keypool import key_of, stored_id
from rewrite.routing.targets import ConversationHooks, Leg, RequestRefused
from rewrite.state.kv import MemoryStore
from rewrite.state.redis.connection import connect_sync
from rewrite.state.redis.kv import RedisStore

if TYPE_CHECKING:
    from rewrite.state.redis.shared import SharedState

# Bounds of the in-memory stores.
FIELD_CACHE_ENTRIES = 50_000
FIELD_CACHE_BYTES = 64 << 20
CONTINUITY_ENTRIES = 50_000
CONTINUITY_BYTES = 256 << 20


def _upstream_protocol(leg: Leg) -> str:
    """What the target speaks: the engine calls the hooks for generation calls only, whose legs have a protocol."""
    assert leg.protocol is not None
    return leg.protocol.name


def _client_protocol(leg: Leg) -> str:
    return leg.translation.client if leg.translation is not None else _upstream_protocol(leg)


def _continuity(leg: Leg) -> StoredResponses | None:
    """The stored-response continuity of the client's protocol, if it has one."""
    return registry.continuity(_client_protocol(leg))


def _scope(leg: Leg) -> Issuer:
    return Issuer(leg.provider.name, leg.model, _upstream_protocol(leg))


class ConversationState(ConversationHooks):
    def __init__(self, fields: FieldCache | None = None, continuity: Continuity | None = None) -> None:
        self.fields = fields or FieldCache(MemoryStore(FIELD_CACHE_ENTRIES, FIELD_CACHE_BYTES))
        self.continuity = continuity or Continuity(MemoryStore(CONTINUITY_ENTRIES, CONTINUITY_BYTES))
        # Whether native answers to clients of a protocol with stored-response continuity are recorded too (only
        # needed when a route may later send the conversation elsewhere); set from the config's routes.
        self.record_native = False
        self._blocking_reads = 0  # counted by stores since replaced

    def share(self, url: str | None, shared: SharedState | None = None) -> None:
        """Keep the field cache and continuity in the Redis at `url`, where every worker sees them (each keeps a
        bounded store of its own, which it reads: rewrite/state/redis/kv.py); None: in this process only. `shared`:
        the key pools' link to Redis, whose pipe, breaker (one outage, one log line, every decision local at once)
        and feed the stores use; without it, they read and write with a blocking client only."""
        local = MemoryStore(FIELD_CACHE_ENTRIES, FIELD_CACHE_BYTES), MemoryStore(CONTINUITY_ENTRIES, CONTINUITY_BYTES)
        self._blocking_reads = self.blocking_reads()  # (the stores replaced: their count goes on)
        if url is None:
            self.fields.store, self.continuity.store = local
            return
        client = connect_sync(url)
        breaker = shared.breaker if shared is not None else None
        self.fields.store = RedisStore(client, local[0], breaker, shared, name="fields")
        self.continuity.store = RedisStore(client, local[1], breaker, shared, name="continuity")

    def blocking_reads(self) -> int:
        """Reads of the Redis store that missed locally and waited for Redis (rewrite/state/redis/kv.py)."""
        stores = (self.fields.store, self.continuity.store)
        return self._blocking_reads + sum(s.blocking_reads for s in stores if isinstance(s, RedisStore))

    def reads_body(self, client: Protocol) -> bool:
        return registry.continuity(client.name) is not None

    def request(self, leg: Leg, body: dict, held_elsewhere: bool = False) -> dict:
        stored = _continuity(leg)
        if stored is None or not stored.previous(body):
            return body
        # (a provider of the client's own protocol, on the account that stored the response)
        resolves = _upstream_protocol(leg) == _client_protocol(leg) and not held_elsewhere
        try:
            expansion = self.continuity.expand(stored, body, leg.provider.name, resolves)
        except UnknownResponse as e:
            raise RequestRefused(*stored.unknown(e.response_id), str(e)) from None
        return expansion.body

    def translated(self, leg: Leg, request: Request) -> None:
        restored = self.fields.restore(_scope(leg), request)
        if leg.translation is not None:
            leg.translation.made = restored.made

    def holder(self, leg: Leg, body: dict) -> str | None:
        if leg.protocol is None:  # (a call of no protocol: a Gemini cachedContents call)
            return None
        stored, pool = _continuity(leg), leg.provider.pool
        if stored is None or pool is None or leg.translation is not None or not stored.previous(body):
            return None
        return key_of(pool, self.continuity.holder(stored, body, leg.provider.name))

    def wants_answer(self, leg: Leg) -> bool:
        if leg.translation is not None:
            return leaves_state(_upstream_protocol(leg), leg.translation.request) or _continuity(leg) is not None
        return self.record_native and _continuity(leg) is not None

    def answer(self, leg: Leg, answer: Answer, key: str | None = None) -> None:
        pool = leg.provider.pool
        made_by = stored_id(pool, key) if key is not None and pool is not None else ""
        if leg.translation is not None:
            self.fields.capture(_scope(leg), answer, leg.translation.request, made_by)
        body = leg.asked
        stored = _continuity(leg)
        if stored is None or body is None or not isinstance(answer.id, str):
            return
        response_id = stored.response_id(answer.id)
        if response_id is not None:  # (None: an upstream that gave no id, which names no one turn)
            self.continuity.record(stored, response_id, body, stored.output_items(answer), leg.provider.name,
                                   native=leg.translation is None, key=made_by)
