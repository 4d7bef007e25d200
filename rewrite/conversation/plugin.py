"""Conversation state across targets, a plug-in (rewrite/lifecycle/hooks.py): the field cache and stored-response
continuity, kept and put back only where a route may send a conversation to another target (with no route, it
engages in nothing).

- `shaping` (a client of a protocol with stored-response continuity, each target in turn): a previous response
  (Responses' `previous_response_id`) the target cannot resolve is expanded (rewrite/conversation/continuity.py), or
  the request refused with the vendor's own error when Rotator does not hold its lineage.
- `encoding` (a translated target): the target's opaque reasoning state is put back into the unified request
  (rewrite/conversation/field_cache.py), answered with the marks of what came from which pooled key.
- `asking`: the pooled key whose account holds the previous response a request continues, as recorded, filled into
  the attempt's ask (the payer puts a hard pin there).
- `kept` (the answer served): a translated target's opaque state is kept, and the response of a client whose protocol
  has stored-response continuity is recorded; each names the pooled key that made it.

Which protocols have either is their registrations' (`stateful`, `continuity`), never named here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols import registry
from protocols.stored_responses import StoredResponses
from rewrite.conversation.continuity import Continuity, UnknownResponse
from rewrite.conversation.field_cache import FieldCache, Issuer, leaves_state
from rewrite.lifecycle.events import Asking, Encoding, KeptAnswer, Shaping
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.setting import Setting
from rewrite.pool.keypool import key_of, stored_id
from rewrite.state.kv import MemoryStore
from rewrite.state.redis.connection import connect_sync
from rewrite.state.redis.kv import RedisStore

if TYPE_CHECKING:
    from rewrite.lifecycle.views import ClientView, RequestView
    from rewrite.state.redis.shared import SharedState

# Bounds of the in-memory stores.
FIELD_CACHE_ENTRIES = 50_000
FIELD_CACHE_BYTES = 64 << 20
CONTINUITY_ENTRIES = 50_000
CONTINUITY_BYTES = 256 << 20


class ConversationState(Plugin):
    name = "conversation"

    def __init__(self, setting: Setting | None = None) -> None:
        self.fields = FieldCache(MemoryStore(FIELD_CACHE_ENTRIES, FIELD_CACHE_BYTES))
        self.continuity = Continuity(MemoryStore(CONTINUITY_ENTRIES, CONTINUITY_BYTES))
        self._blocking_reads = 0  # counted by stores since replaced
        super().__init__(setting or Setting())

    def configure(self, setting: Setting) -> None:
        # Only a route sends a conversation elsewhere: with none there is nothing to keep or put back.
        self.active = bool(setting.config.routes)

    def share(self, url: str | None, shared: SharedState | None = None) -> None:
        """Keep the field cache and continuity in the Redis at `url`, where every worker sees them (each keeps a
        bounded store of its own, which it reads: rewrite/state/redis/kv.py); None: in this process only. `shared`:
        the key pools' link to Redis, whose pipe, breaker (one outage, one log line, every decision local at once)
        and feed the stores use; without it, they read and write with a blocking client only."""
        local = MemoryStore(FIELD_CACHE_ENTRIES, FIELD_CACHE_BYTES), MemoryStore(CONTINUITY_ENTRIES, CONTINUITY_BYTES)
        self._blocking_reads = self._read_blocking()  # (the stores replaced: their count goes on)
        if url is None:
            self.fields.store, self.continuity.store = local
            return
        client = connect_sync(url)
        breaker = shared.breaker if shared is not None else None
        self.fields.store = RedisStore(client, local[0], breaker, shared, name="fields")
        self.continuity.store = RedisStore(client, local[1], breaker, shared, name="continuity")

    def _read_blocking(self) -> int:
        stores = (self.fields.store, self.continuity.store)
        return self._blocking_reads + sum(s.blocking_reads for s in stores if isinstance(s, RedisStore))

    @property
    def blocking_reads(self) -> int:
        """Reads of the Redis store that missed locally and waited for Redis (rewrite/state/redis/kv.py)."""
        return self._read_blocking()

    def engage(self, ctx: RequestView) -> Part | None:
        req = ctx.req
        if req is None or req.proto is None:
            return None
        stored = registry.continuity(req.proto.name)
        return Translated(self) if stored is None else Continued(self, req, stored)


class Translated(Part):
    """A request whose client's protocol has no stored-response continuity: the field cache, for translated
    targets."""

    def __init__(self, state: ConversationState) -> None:
        self.state = state

    def encoding(self, e: Encoding) -> dict[str, set[str]]:
        e.keep_answer = e.keep_answer or leaves_state(e.upstream, e.request)
        restored = self.state.fields.restore(Issuer(e.provider.name, e.model, e.upstream), e.request)
        return {**e.made, **restored.made}

    def kept(self, e: KeptAnswer) -> None:
        if e.translated is not None:
            self.state.fields.capture(Issuer(e.provider.name, e.model, e.upstream), e.answer, e.translated,
                                      _made_by(e))


class Continued(Translated):
    """A request of a client whose protocol keeps responses server-side (Responses): its continuity besides."""

    def __init__(self, state: ConversationState, req: ClientView, stored: StoredResponses) -> None:
        super().__init__(state)
        self.req, self.stored = req, stored
        self.holders: dict[int, str | None] = {}  # by id() of the target: the key holding the stored state

    def shaping(self, e: Shaping) -> dict | None:
        e.keep_answer = True
        stored = self.stored
        if not stored.previous(e.body):
            return None
        # (a provider of the client's own protocol, on the account that stored the response)
        resolves = e.upstream.name == e.client.name and not e.held_elsewhere
        try:
            expansion = self.state.continuity.expand(stored, e.body, e.provider.name, resolves)
        except UnknownResponse as error:
            e.refused = (*stored.unknown(error.response_id), str(error))
            return None
        return expansion.body

    def asking(self, e: Asking) -> None:
        call = e.call
        if call is None or call.continues_by is not None or call.translation is not None or call.protocol is None:
            return
        pool = call.provider.pool
        if pool is None:
            return
        if id(call) not in self.holders:
            body, stored = self.req.body, self.stored
            held = self.state.continuity.holder(stored, body, call.provider.name) if stored.previous(body) else ""
            self.holders[id(call)] = key_of(pool, held)
        e.ask.holder = self.holders[id(call)]

    def kept(self, e: KeptAnswer) -> None:
        super().kept(e)
        stored, body = self.stored, e.asked
        if body is None or not isinstance(e.answer.id, str):
            return
        response_id = stored.response_id(e.answer.id)
        if response_id is not None:  # (None: an upstream that gave no id, which names no one turn)
            self.state.continuity.record(stored, response_id, body, stored.output_items(e.answer), e.provider.name,
                                         native=e.translated is None, key=_made_by(e))


def _made_by(e: KeptAnswer) -> str:
    """The fingerprint of the pooled key that made the answer ("": none, or unknown)."""
    pool = e.provider.pool
    return stored_id(pool, e.key) if e.key is not None and pool is not None else ""


def blocking_reads_of(plugin: object) -> int:
    """The conversation store's reads that waited for Redis, of the engine's conversation plug-in (0: none)."""
    return plugin.blocking_reads if isinstance(plugin, ConversationState) else 0
