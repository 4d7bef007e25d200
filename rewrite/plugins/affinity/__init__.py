"""Conversation affinity (issue 30; rewrite/pool/affinity.py): a request's conversation goes to the pooled key that
served it, where the vendor cached its prompt and holds its state.

The plug-in reads what a request says of its conversation (`AffinityLookup`), gives each attempt's ask the affinity
for its target's pool (`asking`: the conversation's bound key is picked first while it can serve, waited for up to
`affinity.wait` while busy; a pin its account alone holds goes to that key, the ask's `holder` when the conversation
state filled it in), says on the flow why a key was chosen (`picked`), binds the conversation to the key that served
it, with the pins its answer made (`pins.py`), and unbinds it from a key that failed it (`ended`); a race's second
attempt on another key than the first's (a hedge) binds and unbinds nothing. A request that may have a conversation
is not picked early (`arrived`): its pick waits for its body. A continuation of a cut answer goes to the key that
answered the cut part.

The request's conversation evidence (protocols/evidence.py) is read once: by the big-body worker for a large body
(`worker_ask`, off the event loop, from the whole body: rewrite/intake/big_json.py), else from the body the engine
parsed, in the client's protocol before any translation (its root and last messages only). Each pooled target whose
provider keeps affinity gets its `Affinity` from it (`affinity_of`), scoped by the client (its client key's name, or
its address) and cut by the target model's minimum cacheable prompt, which is looked up once per config and model.
A login has no pool: nothing is read for it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

import protocols
from protocols.evidence import Evidence, Reader
from protocols.pins import PIN_ENCRYPTED_CONTENT, PIN_NAMES, StateCall
from protocols.registry import cache_minimum
from protocols.sessions import SessionSource
from rewrite.accounting.prices import PriceTable
from rewrite.config import Config
from rewrite.intake.big_json import EvidenceAsk
from rewrite.lifecycle.events import Arrival, Asking, Ended, Picked, TargetEnded
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.setting import Setting
from rewrite.lifecycle.views import ClientView, RequestView, TargetView
from rewrite.plugins.affinity import pins
from rewrite.policy.outcomes import Note
from rewrite.pool.affinity import (
    BOUND,
    COMPACTION,
    DEFAULT_TTL,
    MOVED,
    PIN_TTL,
    Affinity,
    answer_pin,
    state_affinity,
)
from rewrite.pool.keypool import masked_in
from rewrite.providers import Provider

logger = logging.getLogger("rotator")
# Any pin's member name in a body's bytes (one scan, not one a name).
_PINS = re.compile(b"|".join(map(re.escape, PIN_NAMES)))
UNREAD = Evidence()  # (a sentinel: not read yet)
# The shortest prompt kept on one key at a model the vendors' tables do not name (an OpenAI-compatible vendor's own):
# the shortest any of them caches; a prompt under it gains next to nothing from a warm cache.
UNKNOWN_MINIMUM = 1024
MINIMUMS_KEPT = 4096  # (provider, model) minimums kept per config


class ConversationAffinity(Plugin):
    name = "affinity"

    def configure(self, setting: Setting) -> None:
        config, router = setting.config, setting.router
        # The providers whose pools keep conversations on their keys, and where a session id is read: once per config.
        self.keeping = frozenset(p.name for p in router.providers if keeps_conversations(config, p)) \
            if router is not None else frozenset()
        self.sources = config.affinity.sources
        # Whether any pool keeps it (else nothing is read at all: `affinity: off`).
        self.on = self.active = bool(self.keeping)
        self.minimums: dict[tuple[str, str], int] = {}  # (provider, model) -> `minimum_of`, found once per config

    def _minimum(self, provider: Any, model: str) -> int:
        """The shortest prompt worth keeping on one key at `provider`'s `model` (`minimum_of`): looked up in the
        capability tables once per config and model, not per request."""
        at = (provider.name, model)
        found = self.minimums.get(at)
        if found is None:
            found = minimum_of(provider.families, model)
            if len(self.minimums) < MINIMUMS_KEPT:  # (model names come from clients: bounded)
                self.minimums[at] = found
        return found

    def holding(self, arrival: Arrival, provider: Provider, model: str) -> bool:
        """A request whose pool keeps conversations on their keys, and which may have one, is picked with its
        affinity, once its body has come whole: no early pick (it would ignore a binding)."""
        return provider.name in self.keeping and may_bind(self._minimum(provider, model), arrival.body)

    def worker_ask(self, proto: Any, headers: list, path: str) -> EvidenceAsk | None:
        """A large body's evidence is read by the big-body worker, from the whole body (rewrite/intake/big_json.py)."""
        if not self.on or proto is None:
            return None
        return EvidenceAsk(proto.name, tuple(headers), path, self.sources)

    def engage(self, ctx: RequestView) -> Part | None:
        if not self.on or ctx.req is None:
            return None
        return Binding(ctx, self)


class Binding(Part):
    """One request's affinity over its targets' attempts."""

    def __init__(self, ctx: RequestView, plugin: ConversationAffinity) -> None:
        assert ctx.req is not None  # (engaged for a request, not a WebSocket upgrade)
        self.ctx, self.req = ctx, ctx.req
        config, req = ctx.setting.config, ctx.req
        parsed = req.parsed
        self.lookup = AffinityLookup(ctx.job.intake.client, plugin.sources, plugin.keeping, plugin._minimum,
                                     parsed.evidence if parsed is not None and parsed.evidence_read else UNREAD,
                                     ctx.setting.prices)
        self.wait = config.affinity.wait  # seconds a busy bound key is waited for
        # By id() of the target, and whether it was sent whole (then its pin no longer holds it: `expanded`).
        self.affinities: dict[tuple[int, bool], Affinity | None] = {}
        self.unbind: dict[int, str] = {}  # a bound key that failed, unbound after the next pick (or at the end)
        self.served: dict[int, tuple[str, str]] = {}  # by id() of the provider: the key that served, and the name
        self.continued: set[int] = set()  # the providers a continuation was bound for
        self.beside: set[int] = set()  # by id() of the ticket: a race's second attempt on another key than the first's

    def _affinity(self, call: TargetView) -> Affinity | None:
        at = (id(call), call.expanded)
        if at not in self.affinities:
            affinity = self.lookup.affinity(self.req, call.provider, call.model)
            if affinity is not None and call.expanded:
                affinity = affinity.unpinned()
            self.affinities[at] = affinity
        return self.affinities[at]

    def asking(self, e: Asking) -> None:
        call = e.call
        if call is None:  # (a WebSocket upgrade: placed by the strategy alone)
            return
        affinity = self._affinity(call)
        if affinity is None:
            return
        e.ask.affinity = affinity
        if call.continues_by is None:
            e.ask.patience = self.wait
        elif id(call.provider) not in self.continued:  # (a continuation: no wait, its key may hold the cut attempt)
            self.continued.add(id(call.provider))
            served = self.served.get(id(call.provider))
            if served is not None and call.provider.pool is not None:
                key, name = served
                call.provider.pool.bind(key, affinity, name or affinity.name)

    def picked(self, e: Picked) -> None:
        """Say on the flow when a conversation left its key or was placed anew (`Pick.why`: MOVED, COMPACTION), the
        key masked. A conversation on its bound key, or a new one placed, is how it should be: the decision trail
        (rewrite/plugins/trail.py) says why that key was taken, and nothing is noted or logged."""
        pick, affinity = e.ticket.pick, e.ask.affinity
        if pick is None or affinity is None:
            return
        if e.call is not None:
            self._unbound_call(e.call)
        if e.ask.prefer is not None:  # (a race's second attempt: the race's own note says where it went)
            if pick.key != e.ask.prefer:
                self.beside.add(id(e.ticket))
            return
        why = pick.why
        if why not in (MOVED, COMPACTION) or pick.key is None:
            return
        if why == MOVED:
            failed = pick.bound is not None and pick.bound == e.ask.avoid
            said = f"moved: key {'failed' if failed else 'busy' if not e.ask.patient else 'resting'}"
        else:
            said = why
        job, pool = self.ctx.job, e.provider.pool
        if why == COMPACTION:
            logger.info("rotator: %s %s: conversation compacted: placed again on key %s", e.provider.name,
                        job.id[:8], masked_in(pool, pick.key))
        job.note(Note.AFFINITY, f"key {masked_in(pool, pick.key)}: {said}", key=masked_in(pool, pick.key), why=why,
                 bound=masked_in(pool, pick.bound) if pick.bound else None)

    def ended(self, e: Ended) -> None:
        """The conversation is bound to the key that served it (with the pins its answer created), or unbound from
        it by a deletion of its pin's state; dropped from the bound key when that key failed. (A client that leaves
        ends the attempts with CancelledError: the binding stays.)"""
        call, ticket = e.call, e.ticket
        if call is None or ticket.key is None or call.provider.pool is None:
            return
        pool, key, pick = call.provider.pool, ticket.key, ticket.pick
        affinity = self.affinities.get((id(call), call.expanded))
        name = pick.bind_as if pick is not None else ""
        if e.failure is not None:
            if affinity is not None and pick is not None and pick.why == BOUND and id(ticket) not in self.beside:
                self.unbind[id(call)] = key  # (after the next pick, which says the conversation moved from it)
            return
        if id(ticket) in self.beside:  # (a race's second attempt that won on another key: a hedge moves nothing)
            return
        if self.unbind.get(id(call)) == key:  # (it failed an attempt raced beside this one, and served)
            del self.unbind[id(call)]
        self.served[id(call.provider)] = (key, name)
        if affinity is not None and affinity.drops:
            pool.unbind(key, affinity)
        elif affinity is not None:
            pool.bind(key, affinity, name or affinity.name)
        created = self._created(call, affinity)
        if created is not None:
            pins, extra = created
            pool.bind(key, pins, name or pins.name, extra)

    def _created(self, call: TargetView, affinity: Affinity | None) -> tuple[Affinity, tuple[str, ...]] | None:
        """The pins the answer created (a stored Responses answer, a Gemini cache: pins.py), where the client's own
        vendor answered (native) through a pool that keeps conversations."""
        req, lookup = self.req, self.lookup
        found = lookup.state_call(req, call.provider) if req.proto is None else None
        if not (req.meter.names_answers or found is not None):
            return None
        if call.translation is not None or not lookup.on(call.provider):
            return None
        return pins.created(lookup.client, req, self.ctx.answers.whole_answer(), affinity, found)

    def target_ended(self, e: TargetEnded) -> None:
        if e.call is not None:
            self._unbound_call(e.call)

    def _unbound_call(self, call: TargetView) -> None:
        key = self.unbind.pop(id(call), None)
        affinity = self.affinities.get((id(call), call.expanded))
        if key is not None and affinity is not None and call.provider.pool is not None:
            call.provider.pool.unbind(key, affinity)


def minimum_of(families: tuple[str, ...], model: str) -> int:
    """The fewest prompt tokens worth keeping on one key at `model`, at a provider of `families` (a platform's
    serve several vendors' models)."""
    known = next((m for family in families if (m := cache_minimum(family, model)) is not None), None)
    return UNKNOWN_MINIMUM if known is None else known


def keeps_conversations(config: Config, provider: Provider) -> bool:
    """Whether `provider`'s pool keeps conversations on their keys: affinity on, and more than one key to choose
    from (a pool of one has nothing to decide: no evidence is read for it)."""
    pool = provider.pool
    return pool is not None and len(pool.keys) > 1 and config.affinity_on(provider.name)


def may_bind(minimum: float, body: bytes | None) -> bool:
    """Whether a request whose body is `body` (None: not at hand whole) may have an affinity where prompts under
    `minimum` tokens are not kept on one key, before its body is read: a prompt that large (the body's bytes / 4,
    more than its text), or a pin. A request that may not is picked early, without one (rewrite/pool/prefetch.py),
    and its conversation is not read."""
    if body is None or len(body) // 4 >= minimum:
        return True
    return _PINS.search(body) is not None


def affinity_of(evidence: Evidence, client: str, cache_minimum: float | None, default_ttl: float = DEFAULT_TTL
                ) -> Affinity | None:
    """The request's affinity from its evidence, its ids as rewrite/pool/affinity.py names them; None when it belongs
    to no conversation worth keeping on one key (no evidence, or a prompt under the model's minimum cacheable prompt
    and no pin). `client`: the client's name (its client key's, or its address)."""
    pins = tuple(answer_pin(client, p.kind, p.value) for p in evidence.pins)
    hard = any(p.kind != PIN_ENCRYPTED_CONTENT for p in evidence.pins)
    if not pins and cache_minimum is not None and evidence.prompt_tokens < cache_minimum:
        return None
    # The lineage, deepest first: the root alone (no message yet) names no conversation, only its system and tools.
    links = evidence.links[1:]
    lineage = tuple(f"l:{client}:{link:016x}" for link in reversed(links))
    session = evidence.session
    session_id = f"s:{client}:{session.value}" if session is not None else None
    if not (pins or lineage or session_id):
        return None
    # (a hard pin is bound again by the request it served: its state lives on that key as long as it is used, a
    # Responses conversation without expiry)
    held = tuple(i for i, p in zip(pins, evidence.pins, strict=True) if p.kind != PIN_ENCRYPTED_CONTENT)
    bind = (*(i for i in (session_id, lineage[0] if lineage else None) if i is not None), *held)
    name = session_id or (lineage[0] if lineage else pins[0])
    lifetime = evidence.cache_lifetime
    ttl = PIN_TTL if hard else float(lifetime.seconds) if lifetime is not None and lifetime.seconds else default_ttl
    said = (evidence.pins[0].kind if pins else f"session {session.source}" if session is not None else "lineage")
    return Affinity((*pins, *lineage, *((session_id,) if session_id else ())), bind, name, ttl, evidence.messages,
                    hard, session_id, said)


class AffinityLookup:
    """What one request says of its conversation, for each pool it may be served from."""

    def __init__(self, client: str, sources: tuple[SessionSource, ...], keeping: frozenset[str],
                 minimum: Callable[[Provider, str], int], evidence: Evidence | None = UNREAD,
                 prices: PriceTable | None = None) -> None:
        self.prices = prices
        self.minimum = minimum  # a model's shortest cacheable prompt at a provider (`minimum_of`, kept per config)
        self.client = client or "unknown"
        self.sources = sources
        self.keeping = keeping  # the providers whose pools keep conversations (`keeps_conversations`)
        self._evidence = evidence  # UNREAD: read from the parsed body when a pool first asks
        self._affinities: dict[tuple[str, str], Affinity | None] = {}
        self._state_calls: dict[str, tuple[Reader, StateCall] | None] = {}  # by provider family

    def evidence(self, req: ClientView) -> Evidence | None:
        if self._evidence is UNREAD:
            self._evidence = None
            proto = req.proto
            # (a skeleton's long texts are their marks: protocols/outline.py's LongText)
            if proto is not None:
                reader = protocols.registered(proto.name).evidence
                if reader is not None:
                    self._evidence = reader.read(req.request.headers, req.body, req.path, self.sources,
                                                 req.size or None)
        return self._evidence

    def on(self, provider: Provider) -> bool:
        return provider.name in self.keeping

    def affinity(self, req: ClientView, provider: Provider, model: str) -> Affinity | None:
        """The request's affinity for `provider`'s pool at `model`; None where it keeps none."""
        if not self.on(provider):
            return None
        at = (provider.name, model)
        if at not in self._affinities:
            if req.proto is None:  # (not a generation call: a call on a pin's state, or none of the conversation's)
                found = self.state_call(req, provider)
                made = found[1] if found is not None else None
                self._affinities[at] = (state_affinity(self.client, made.pin, made.deletes)
                                        if made is not None and made.pin is not None else None)
                return self._affinities[at]
            minimum = self._minimum(provider, model)
            # (a request too small to bind, naming no pin, is not read: most one-shot calls)
            evidence = self.evidence(req) if may_bind(minimum, req.plain or None) else None
            self._affinities[at] = None if evidence is None else affinity_of(evidence, self.client, minimum)
        return self._affinities[at]

    def state_call(self, req: ClientView, provider: Provider) -> tuple[Reader, StateCall] | None:
        """The call on a pin's state a request other than a generation is, for `provider`'s family, with the reader
        that read it; None for any other."""
        family = provider.family
        if family not in self._state_calls:
            self._state_calls[family] = pins.state_call(req, family)
        return self._state_calls[family]

    def _minimum(self, provider: Provider, model: str) -> float:
        """The fewest prompt tokens worth keeping on one key at `model`: its shortest cacheable prompt; none at all
        (inf) where its price says cache reads cost no less than input (then only a pin binds)."""
        price = self.prices.price(model) if self.prices is not None else None
        if price is not None and not price.reads_cheaper:
            return math.inf
        return self.minimum(provider, model)
