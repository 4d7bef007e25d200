"""What one request says of its conversation, for the key pools of its targets (`AffinityLookup`; issue 30;
rewrite/pool/affinity.py).

The request's conversation evidence (protocols/evidence.py) is read once: by the big-body worker for a large body
(`EvidenceAsk`, off the event loop, from the whole body: rewrite/intake/big_json.py), else here from the body the
engine parsed, in the client's protocol before any translation (its root and last messages only). Each pooled target
whose provider keeps affinity gets its `Affinity` from it, scoped by the client (its client key's name, or its
address) and cut by the target model's minimum cacheable prompt. A login has no pool: nothing is read for it.

After an attempt served the client, its key is bound (the plug-in, rewrite/plugins/affinity/); so are the pins
the answer creates (`created`): a stored Responses answer's id, which the next turn names as its
`previous_response_id`, for as long as the vendor keeps it; a Gemini cache made, read or changed through the pool,
until its expiry, or an OpenAI conversation made through it (a state call, protocols/evidence.py). A call on a
pin's state (a stored response polled, cancelled or deleted, too) goes to the key bound to it as a request naming
the pin does, and a deletion unbinds it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import protocols
from protocols.evidence import PIN_NAMES, PIN_PREVIOUS_RESPONSE, Evidence, Reader, StateCall
from protocols.registry import cache_minimum
from protocols.sessions import SessionSource
from rewrite.accounting.prices import PriceTable
from rewrite.config import Config
from rewrite.exchange.request import ClientRequest
from rewrite.pool.affinity import PIN_TTL, Affinity, affinity_of, answer_pin, state_affinity
from rewrite.providers import Provider
from rewrite.routing.targets import Leg, parse_json

UNREAD = Evidence()  # (a sentinel: not read yet)
# The shortest prompt kept on one key at a model the vendors' tables do not name (an OpenAI-compatible vendor's own):
# the shortest any of them caches; a prompt under it gains next to nothing from a warm cache.
UNKNOWN_MINIMUM = 1024


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
    return any(name in body for name in PIN_NAMES)


class AffinityLookup:
    """What one request says of its conversation, for each pool it may be served from."""

    def __init__(self, config: Config, client: str, sources: tuple[SessionSource, ...], keeping: frozenset[str],
                 minimum: Callable[[Provider, str], int], evidence: Evidence | None = UNREAD,
                 prices: PriceTable | None = None) -> None:
        self.prices = prices
        self.minimum = minimum  # a model's shortest cacheable prompt at a provider (`minimum_of`, kept per config)
        self.client = client or "unknown"
        self.sources = sources
        self.keeping = keeping  # the providers whose pools keep conversations (`keeps_conversations`)
        self.wait = config.affinity.wait  # seconds a busy bound key is waited for
        self._evidence = evidence  # UNREAD: read from the parsed body when a pool first asks
        self._affinities: dict[tuple[str, str], Affinity | None] = {}
        self._state_calls: dict[str, tuple[Reader, StateCall] | None] = {}  # by provider family

    def evidence(self, req: ClientRequest) -> Evidence | None:
        if self._evidence is UNREAD:
            self._evidence = None
            proto = req.proto
            # A skeleton lacks the long texts the chain marks: its links would not be the whole body's.
            if proto is not None and not req.skeletal:
                reader = protocols.registered(proto.name).evidence
                if reader is not None:
                    self._evidence = reader.read(req.request.headers, req.body, req.path, self.sources,
                                                 len(req.plain) if req.plain else None)
        return self._evidence

    def on(self, provider: Provider) -> bool:
        return provider.name in self.keeping

    def affinity(self, req: ClientRequest, provider: Provider, model: str) -> Affinity | None:
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

    def state_call(self, req: ClientRequest, provider: Provider) -> tuple[Reader, StateCall] | None:
        """The call on a pin's state a request other than a generation is, for `provider`'s family, with the reader
        that read it; None for any other."""
        family = provider.family
        if family not in self._state_calls:
            self._state_calls[family] = _state_call(req, family)
        return self._state_calls[family]

    def _minimum(self, provider: Provider, model: str) -> float:
        """The fewest prompt tokens worth keeping on one key at `model`: its shortest cacheable prompt; none at all
        (inf) where its price says cache reads cost no less than input (then only a pin binds)."""
        price = self.prices.price(model) if self.prices is not None else None
        if price is not None and not price.reads_cheaper:
            return math.inf
        return self.minimum(provider, model)

    def created(self, req: ClientRequest, leg: Leg, whole: bytes | None, affinity: Affinity | None
                ) -> tuple[Affinity, tuple[str, ...]] | None:
        """The pins the answer `leg` served creates, and the affinity they are bound with (for as long as the vendor
        keeps them): a Responses answer the client's own vendor stored (native, `store` not off); the state a state
        call's answer says its key holds."""
        if leg.translation is not None or not self.on(leg.provider):
            return None
        if req.proto is None:
            return self._kept(req, leg.provider, whole, affinity)
        if req.body.get("store") is False:
            return None
        answer_id = req.meter.answer_id(whole)
        if answer_id is None:
            return None
        pin = answer_pin(self.client, PIN_PREVIOUS_RESPONSE, answer_id)
        name = affinity.name if affinity is not None else pin
        return Affinity((), (), name, PIN_TTL, affinity.depth if affinity else 0, True, said="answer id"), (pin,)

    def _kept(self, req: ClientRequest, provider: Provider, whole: bytes | None, affinity: Affinity | None
              ) -> tuple[Affinity, tuple[str, ...]] | None:
        """The state a state call's answer says the key that served it holds, bound until it expires (none left
        when it has expired)."""
        found = self.state_call(req, provider)
        if found is None or not whole:
            return None
        reader, made = found
        answer, now = parse_json(whole), time.time()
        kept = reader.kept(made, None, answer, now)
        if kept is not None and kept.seconds is None:  # (the answer says no expiry: the request's ttl, if any)
            kept = reader.kept(made, parse_json(req.plain), answer, now)
        if kept is None or kept.seconds is not None and kept.seconds <= 0:
            return None
        pin = answer_pin(self.client, kept.pin.kind, kept.pin.value)
        name = affinity.name if affinity is not None else pin
        ttl = PIN_TTL if kept.seconds is None else kept.seconds
        return Affinity((), (), name, ttl, 0, True, said=kept.pin.kind), (pin,)


def _state_call(req: ClientRequest, family: str) -> tuple[Reader, StateCall] | None:
    method = req.request.method
    for registration in protocols.registry.family_protocols(family):
        reader = registration.evidence
        if reader is not None and (call := reader.state_call(method, req.path)) is not None:
            return reader, call
    return None
