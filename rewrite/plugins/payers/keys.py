"""A target's API key: the client's own (`OwnCredential`: sent to the vendor it called as it came, the addon holding
it meanwhile, rewrite/intake/clients.py; never to another vendor) or one of its provider's pool (`PooledKey`); and
what any target the client did not call is not sent of the client's headers and body (`Departing`, the base of every
payer: rewrite/plugins/payers/).

A pooled key (rewrite/pool/): the pool picks each attempt's key (waiting for a lease while every usable key is at
its max_concurrent; a conversation's bound key waited for up to the ask's `patience`), the key is leased while the
attempt runs and rested as its answer deserves; the client's credential is replaced by it, never sent beside it."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING

from protocols.base import Protocol
from protocols.registry import credential_headers
from rewrite.intake.clients import HeldCredential
from rewrite.lifecycle.payer import Ask, Flow, Outbound, Payer, Ticket, every_key_resting
from rewrite.lifecycle.views import ClockView
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure
from rewrite.pool.affinity import BOUND, preferring
from rewrite.pool.keypool import KeyPool, Pick, Resting, masked_in
from rewrite.providers import Provider
from rewrite.providers.wire import Wire

# Every header any vendor's credential or account travels in: never sent to a target the client did not call.
CREDENTIAL_HEADERS = credential_headers()

if TYPE_CHECKING:
    from rewrite.pool.decisions import Prefetch

logger = logging.getLogger("rotator")


class Departing(Payer):
    """A target's payer: for a target the client did not call, what the client sent for its own vendor is left
    behind (every credential and account header, and what comes with a login's or a platform's call: `leaving`, the
    wire of the provider it called, rewrite/providers/wire.py)."""

    def __init__(self, called: bool, leaving: Wire | None) -> None:
        self.called = called
        self.leaving = leaving if not called else None

    def body(self, body: dict) -> dict:
        return self.leaving.foreign_body(body) if self.leaving is not None else body

    def depart(self, out: Outbound) -> Outbound:
        if not self.called:
            out.headers = [(n, v) for n, v in out.headers if n.lower() not in CREDENTIAL_HEADERS]
            if self.leaving is not None:  # (Claude's OAuth beta, a login's session headers)
                out.headers = self.leaving.foreign(out.headers)
        return out


class OwnCredential(Departing):
    """No pool: the client's credential to the vendor it called (`held`), none to another."""

    def __init__(self, called: bool, held: HeldCredential | None, leaving: Wire | None = None) -> None:
        super().__init__(called, leaving)
        self.held = held

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        out = self.depart(out)
        if self.called and not shown and self.held:  # (shown: the flow's masked form, as it arrived)
            out.headers, out.query = self.held.restore(out.headers, out.query)
        return out


class PooledKey(Departing):
    pooled = True

    def __init__(self, provider: Provider, pool: KeyPool, called: bool, leaving: Wire | None, clock: ClockView,
                 first_token_timeout: float, proto: Protocol | None, job_id: str,
                 prefetch: Prefetch | None = None) -> None:
        super().__init__(called, leaving)
        self.provider, self.pool, self.clock = provider, pool, clock
        self.timeout, self.job_id = first_token_timeout, job_id
        self.proto = proto  # the client's protocol, for the shape of Rotator's own error answer
        self.prefetch = prefetch  # the first attempt's shared pick, started at the request hook
        self.last: Pick | None = None  # the last pick
        self.windowed = False  # a pick passed keys over for a quota window

    def skip(self, model: str, tokens: float, within: float) -> Failure | None:
        if self.pool.rests_past(within, model, tokens):
            return Failure(FailureKind.KEYS_RESTING, "every key resting", retryable=False)
        return None

    async def attempt(self, ask: Ask) -> Flow:
        """The pool's key, unless none is back within first_token_timeout: held after the wait, rested as it ended."""
        pick = await self._pick(ask)
        key = pick.key
        ticket = Ticket(key, self.pool.by_secret[key].masked if key else None, pick.wait, pick)  # (masked once)
        if key is None or pick.wait > self.timeout:
            pick.drop()
            yield dataclasses.replace(ticket, refused=self._refused(ask))
            return
        try:
            yield ticket  # picked
        except GeneratorExit:
            pick.drop()
            raise
        with self.pool.lease(key, ask.model, pick.held, pick.wait, ask.tokens):
            failure = yield ticket  # the attempt runs
            self._ended(key, failure, ask.model)
            if failure is None and ask.keeps:  # (held while what the attempt opened is open: closed with it)
                yield ticket

    async def _pick(self, ask: Ask) -> Pick:
        """The pool's pick (no key: none to be had); a lease waited for while every usable key is at max_concurrent."""
        pool, loop = self.pool, self.clock.loop
        give_up = min(loop.time() + self.timeout, ask.deadline)
        prefetch, self.prefetch = self.prefetch, None
        bound_until = min(loop.time() + ask.patience, give_up)
        affinity = ask.affinity
        if ask.holder is not None and affinity is not None and affinity.hard and ask.holder in pool.keys:
            # (a hard pin goes to the key holding its state, as recorded: its binding may have been lost)
            affinity = dataclasses.replace(affinity, holder=pool.keys.index(ask.holder))
        if ask.prefer is not None and ask.prefer in pool.keys:
            affinity = preferring(affinity, pool.keys.index(ask.prefer))
        while (pick := await pool.take(ask.avoid, ask.model, prefetch, ask.tokens, affinity=affinity,
                                       patient=ask.patient, client=ask.client)).busy:
            # A conversation's bound key at its max_concurrent is waited for up to the ask's patience, then left.
            deadline = bound_until if ask.patient and pick.why == BOUND else give_up
            returned = pool.returned()
            if not await self.clock.supervise(returned, functools.partial(float, deadline)):
                returned.cancel()
                if deadline >= give_up:
                    break
                ask.patient = False
        if prefetch is not None:
            prefetch.drop()  # (a no-op once taken; else it was another pool's or model's, or the pool decided alone)
        self.last = pick
        self.windowed = self.windowed or bool(pick.passed)
        return pick

    def _ended(self, key: str, failure: Failure | None, model: str) -> None:
        if failure is None:
            self.pool.rests.succeeded(key, model)
            return
        rest = self.pool.rests.failed(key, failure, model)
        if failure.stalled:
            logger.info("rotator: %s %s: key %s rests %g s (%s)", self.provider.name, self.job_id[:8],
                        masked_in(self.pool, key), rest, failure.reason)

    def _refused(self, ask: Ask) -> Failure:
        """Every key rests longer than a request may wait, or is out or busy, or the shared pick refused the
        request for its client's budget or limit: nothing was sent upstream. A hard pin's key alone resting is said so
        (its state is there alone)."""
        pick, affinity, client = self.last, ask.affinity, ask.client
        if client is not None and client.refusal is not None:  # (the client's budget or limit, in the same pick)
            return client.failing(client.refusal)
        if (affinity is not None and affinity.hard and pick is not None and pick.why == BOUND
                and pick.key is not None and pick.wait):
            resting = Resting(pick.wait, rejected=False, pinned=affinity.said)
        else:
            resting = self.pool.resting(ask.model, pick, ask.tokens)
        failure = every_key_resting(self.provider, self.proto, resting, windows=self.windowed)
        failure.pinned = resting.pinned
        return failure

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        out = self.depart(out)
        if (key := ticket.key) is None:
            return out
        out.headers, out.query = self.provider.authorize(out.headers, out.query, key)
        if shown:
            masked = ticket.shown or masked_in(self.pool, key)
            out.headers = [(n, v.replace(key, masked)) for n, v in out.headers]
            out.query = out.query.replace(key, masked)
        return out

    def reported(self, ticket: Ticket | None, model: str, usage=None, cost=None, cold=0.0, windows=()) -> None:
        if ticket is None or ticket.key is None:
            return
        if windows:  # (a request whose answer reported none runs nothing of the pool's windows)
            self.pool.reported(ticket.key, model, windows)
        if usage is not None:
            self.pool.record_usage(ticket.key, model, cost, input_tokens=usage.input_tokens,
                                   output_tokens=usage.output_tokens, cache_read=usage.cache_read_tokens,
                                   cache_write=usage.cache_write_tokens, cold_cost=cold)
