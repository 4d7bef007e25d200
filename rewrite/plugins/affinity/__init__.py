"""Conversation affinity (issue 30; rewrite/pool/affinity.py): a request's conversation goes to the pooled key that
served it, where the vendor cached its prompt and holds its state.

The plug-in reads what a request says of its conversation (its evidence, `lookup.py`), gives each attempt's ask the
affinity for its target's pool (`asking`: the conversation's bound key is picked first while it can serve, waited for
up to `affinity.wait` while busy; a pin its account alone holds goes to that key, `holder`), says on the flow why a
key was chosen (`picked`), binds the conversation to the key that served it, with the pins its answer made, and
unbinds it from a key that failed it (`ended`); a race's second attempt on another key than the first's (a hedge)
binds and unbinds nothing. A request that may have a conversation is not picked early
(`arrived`): its pick waits for its body. A continuation of a cut answer goes to the key that answered the cut part.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from rewrite.exchange.context import Context
from rewrite.intake.big_json import EvidenceAsk
from rewrite.lifecycle.events import Arrival, Asking, Ended, Picked, TargetEnded
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.setting import Setting
from rewrite.plugins.affinity.lookup import (
    UNREAD,
    AffinityLookup,
    keeps_conversations,
    may_bind,
    minimum_of,
)
from rewrite.policy.outcomes import Note
from rewrite.pool.affinity import BOUND, COMPACTION, MOVED, NEW, Affinity
from rewrite.providers.credentials import mask

logger = logging.getLogger("rotator")
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

    def minimum(self, provider: Any, model: str) -> int:
        """The shortest prompt worth keeping on one key at `provider`'s `model` (`minimum_of`): looked up in the
        capability tables once per config and model, not per request."""
        at = (provider.name, model)
        found = self.minimums.get(at)
        if found is None:
            found = minimum_of(provider.families, model)
            if len(self.minimums) < MINIMUMS_KEPT:  # (model names come from clients: bounded)
                self.minimums[at] = found
        return found

    def arrived(self, arrival: Arrival) -> None:
        """A request whose pool keeps conversations on their keys, and which may have one, is picked with its
        affinity, once its body has come whole: no early pick (it would ignore a binding)."""
        if self.on:
            arrival.holds.append(self._holds)

    def _holds(self, provider: Any, model: str, body: bytes | None) -> bool:
        return provider.name in self.keeping and may_bind(self.minimum(provider, model), body)

    def worker_ask(self, proto: Any, headers: list, path: str) -> EvidenceAsk | None:
        """A large body's evidence is read by the big-body worker, from the whole body (rewrite/intake/big_json.py)."""
        if not self.on or proto is None:
            return None
        return EvidenceAsk(proto.name, tuple(headers), path, self.sources)

    def engage(self, ctx: Context) -> Part | None:
        if not self.on or ctx.req is None:
            return None
        return Binding(ctx, self)


class Binding(Part):
    """One request's affinity over its targets' attempts."""

    def __init__(self, ctx: Context, plugin: ConversationAffinity) -> None:
        self.ctx = ctx
        config, req = ctx.setting.config, ctx.req
        parsed = req.parsed
        self.lookup = AffinityLookup(config, ctx.job.client, plugin.sources, plugin.keeping, plugin.minimum,
                                     parsed.evidence if parsed is not None else UNREAD, ctx.setting.prices)
        self.wait = config.affinity.wait  # seconds a busy bound key is waited for
        self.affinities: dict[int, Affinity | None] = {}  # by id() of the target's call
        self.unbind: dict[int, str] = {}  # a bound key that failed, unbound after the next pick (or at the end)
        self.served: dict[int, tuple[str, str]] = {}  # by id() of the provider: the key that served, and the name
        self.continued: set[int] = set()  # the providers a continuation was bound for
        self.beside: set[int] = set()  # by id() of the ticket: a race's second attempt on another key than the first's

    def _affinity(self, call: Any) -> Affinity | None:
        at = id(call)
        if at not in self.affinities:
            req = self.ctx.req
            affinity = self.lookup.affinity(req, call.provider, call.model)
            if affinity is not None and call.expanded:
                affinity = affinity.unpinned()
            elif affinity is not None and affinity.hard and call.asking is None:
                affinity = self._held(call, affinity)
            self.affinities[at] = affinity
        return self.affinities[at]

    def _held(self, call: Any, affinity: Affinity) -> Affinity:
        """`affinity` with its pin's holder: the key whose account holds the stored response the request continues,
        as the conversation state recorded it when it was served. The pin's binding says the same while it lasts;
        it may be lost (a restart with another state file, a worker deciding alone)."""
        hooks, pool = self.ctx.setting.conversation, call.provider.pool
        key = hooks.holder(call.leg, self.ctx.req.body) if hooks is not None and pool is not None else None
        if key is None or pool is None:
            return affinity
        return dataclasses.replace(affinity, holder=pool.keys.index(key))

    def asking(self, e: Asking) -> None:
        call = e.call
        if call is None:  # (a WebSocket upgrade: placed by the strategy alone)
            return
        affinity = self._affinity(call)
        if affinity is None:
            return
        e.ask.affinity = affinity
        if call.asking is None:
            e.ask.patience = self.wait
        elif id(call.provider) not in self.continued:  # (a continuation: no wait, its key may hold the cut attempt)
            self.continued.add(id(call.provider))
            served = self.served.get(id(call.provider))
            if served is not None and call.provider.pool is not None:
                key, name = served
                call.provider.pool.bind(key, affinity, name or affinity.name)

    def picked(self, e: Picked) -> None:
        """Say on the flow why a conversation's key was chosen (`Pick.why`), the key masked."""
        pick, affinity = e.ticket.pick, e.ask.affinity
        if pick is None or affinity is None:
            return
        if e.call is not None:
            self._unbound_call(e.call)
        if e.ask.prefer is not None:  # (a race's second attempt: the race's own note says where it went)
            if pick.key != e.ask.prefer:
                self.beside.add(id(e.ticket))
            return
        if not pick.why or pick.key is None:
            return
        why = pick.why
        if why == BOUND:
            said = f"bound: {affinity.said}"
        elif why == NEW:
            said = "new: most headroom"
        elif why == MOVED:
            failed = pick.bound is not None and pick.bound == e.ask.avoid
            said = f"moved: key {'failed' if failed else 'busy' if not e.ask.patient else 'resting'}"
        else:
            said = why
        job = self.ctx.job
        if why == COMPACTION:
            logger.info("rotator: %s %s: conversation compacted: placed again on key %s", e.provider.name,
                        job.id[:8], mask(pick.key))
        job.note(Note.AFFINITY, f"key {mask(pick.key)}: {said}", key=mask(pick.key), why=why,
                 bound=mask(pick.bound) if pick.bound else None)

    def ended(self, e: Ended) -> None:
        """The conversation is bound to the key that served it (with the pins its answer created), or unbound from
        it by a deletion of its pin's state; dropped from the bound key when that key failed. (A client that leaves
        ends the attempts with CancelledError: the binding stays.)"""
        call, ticket = e.call, e.ticket
        if call is None or ticket.key is None or call.provider.pool is None:
            return
        pool, key, pick = call.provider.pool, ticket.key, ticket.pick
        affinity = self.affinities.get(id(call))
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

    def _created(self, call: Any, affinity: Affinity | None) -> tuple[Affinity, tuple[str, ...]] | None:
        """The pins the answer created (a stored Responses answer, a Gemini cache; see AffinityLookup.created)."""
        req, lookup = self.ctx.req, self.lookup
        if not (req.meter.names_answers or req.proto is None and lookup.state_call(req, call.provider) is not None):
            return None
        return lookup.created(req, call.leg, self.ctx.answers.whole_answer(), affinity)

    def target_ended(self, e: TargetEnded) -> None:
        if e.call is not None:
            self._unbound_call(e.call)

    def _unbound_call(self, call: Any) -> None:
        key = self.unbind.pop(id(call), None)
        affinity = self.affinities.get(id(call))
        if key is not None and affinity is not None and call.provider.pool is not None:
            call.provider.pool.unbind(key, affinity)

