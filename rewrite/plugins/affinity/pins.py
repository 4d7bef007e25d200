"""The pins an answer creates, for the affinity plug-in (rewrite/plugins/affinity/) to bind to the key that served
it, and the calls on a pin's state alone (issue 30; rewrite/pool/affinity.py).

After an attempt served the client, its key is bound (the plug-in); so are the pins the answer creates (`created`): a
stored Responses answer's id, which the next turn names as its `previous_response_id`, for as long as the vendor
keeps it; a Gemini cache made, read or changed through the pool, until its expiry, or an OpenAI conversation made
through it (a state call, protocols/evidence.py). A call on a pin's state (a stored response polled, cancelled or
deleted, too) goes to the key bound to it as a request naming the pin does, and a deletion unbinds it. Nothing here
runs for a request that names no answer and is no state call (a Chat or Anthropic Messages turn).
"""

from __future__ import annotations

import time

import protocols
from protocols.evidence import PIN_PREVIOUS_RESPONSE, Reader, StateCall
from protocols.sse import load_object
from rewrite.lifecycle.views import ClientView
from rewrite.pool.affinity import PIN_TTL, Affinity, answer_pin


def state_call(req: ClientView, family: str) -> tuple[Reader, StateCall] | None:
    """The call on a pin's state a request other than a generation is, for a provider of `family`, with the reader
    that read it; None for any other."""
    method = req.request.method
    for registration in protocols.registry.family_protocols(family):
        reader = registration.evidence
        if reader is not None and (call := reader.state_call(method, req.path)) is not None:
            return reader, call
    return None


def created(client: str, req: ClientView, whole: bytes | None, affinity: Affinity | None,
            found: tuple[Reader, StateCall] | None) -> tuple[Affinity, tuple[str, ...]] | None:
    """The pins a native answer creates, and the affinity they are bound with (for as long as the vendor keeps them):
    a Responses answer the client's own vendor stored (`store` not off); the state a state call's answer (`found`:
    the call, for a request that is one) says its key holds. `whole`: the answer, when the client got a whole one."""
    if req.proto is None:
        return _kept(client, req, whole, affinity, found)
    if req.body.get("store") is False:
        return None
    answer_id = req.meter.answer_id(whole)
    if answer_id is None:
        return None
    pin = answer_pin(client, PIN_PREVIOUS_RESPONSE, answer_id)
    name = affinity.name if affinity is not None else pin
    return Affinity((), (), name, PIN_TTL, affinity.depth if affinity else 0, True, said="answer id"), (pin,)


def _kept(client: str, req: ClientView, whole: bytes | None, affinity: Affinity | None,
          found: tuple[Reader, StateCall] | None) -> tuple[Affinity, tuple[str, ...]] | None:
    """The state a state call's answer says the key that served it holds, bound until it expires (none left when it
    has expired)."""
    if found is None or not whole:
        return None
    reader, made = found
    answer, now = load_object(whole), time.time()
    kept = reader.kept(made, None, answer, now)
    if kept is not None and kept.seconds is None:  # (the answer says no expiry: the request's ttl, if any)
        kept = reader.kept(made, load_object(req.plain), answer, now)
    if kept is None or kept.seconds is not None and kept.seconds <= 0:
        return None
    pin = answer_pin(client, kept.pin.kind, kept.pin.value)
    name = affinity.name if affinity is not None else pin
    ttl = PIN_TTL if kept.seconds is None else kept.seconds
    return Affinity((), (), name, ttl, 0, True, said=kept.pin.kind), (pin,)
