"""The attempts on one target (`KeyAttempts`): its payer's credential for each (rewrite/lifecycle/payer.py: a pooled
key, the client's own, a login's), the wait the retry policy asks, the credential held while the attempt runs, and
how it ended told to the payer and the plug-ins; retried while the policy says so. It drives each attempt's flow
(`Payer.attempt`): picked (`take`), held and told (`attempt`), or closed when not used. What one attempt on one
credential does is given to it (`Attempt.on` over HTTP, rewrite/exchange/attempt.py), so a WebSocket upgrade goes
over the same loop."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rewrite.exchange.race import Race, Racer
from rewrite.lifecycle.events import Asking, Ended, Hedging, Picked, TargetEnded
from rewrite.lifecycle.payer import Ask, Flow, Payer, Taken, Ticket
from rewrite.policy import retry
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure

if TYPE_CHECKING:
    from rewrite.exchange.context import Context

# A continuation's attempt that had no first token when the resume deadline passed: abandoned, its key not rested
# (it was given less than its first-token timeout: `FirstTokenDeadline.missed`).
PAST_DEADLINE = Failure(FailureKind.FIRST_TOKEN_TIMEOUT, "no first token by the resume deadline", retryable=False)


@dataclass(frozen=True)
class FirstTokenDeadline:
    """When an attempt's first token is due (an attempt not streamed: its whole answer): `at`, the end of its own
    timeout (`own`) unless a deadline it shares ends sooner: a continuation's resume deadline (`until`), or a race's
    first attempt's (for the second attempt: rewrite/exchange/race.py)."""

    at: float
    own: float
    until: float = math.inf

    @classmethod
    def of(cls, own: float, until: float, first_by: float = math.inf) -> FirstTokenDeadline:
        return cls(min(own, until, first_by), own, until)

    def missed(self, reason: str, streamed: bool = True) -> Failure:
        """An attempt that had nothing by `at` (no first token; not streamed: no answer): a stall of its key (which
        rests) only when `at` ended its own whole timeout. Given less, the key did not stall: past the resume
        deadline the continuation is abandoned (PAST_DEADLINE); cut short by a race's shared deadline, the attempt
        failed like a timeout, retried, its key not rested (the first attempt's stall, if its key was the same, is
        the one stall)."""
        if self.at >= self.until:
            return PAST_DEADLINE
        kind = FailureKind.FIRST_TOKEN_TIMEOUT if streamed else FailureKind.REQUEST_TIMEOUT
        return Failure(kind, reason, stalled=streamed and self.at >= self.own)


TryKey = Callable[[Ticket], Awaitable[Failure | None]]


class KeyAttempts:
    """The attempts on `provider`'s `model` over what its `payer` pays with; none started, waited for or retried
    past `until` (a continuation's resume deadline). `call`: the target's call (None for a WebSocket upgrade)."""

    def __init__(self, ctx: Context, payer: Payer, provider: Any, model: str, call: Any = None,
                 until: float = math.inf, tokens: float = 0) -> None:
        self.ctx = ctx
        self.payer = payer
        self.provider = provider
        self.model = model
        self.call = call
        self.until = until
        self.tokens = tokens  # the request's, estimated: what its keys' quota windows must still hold
        self.ticket: Ticket | None = None  # the credential of the last attempt
        self.tried = False  # whether an attempt was made (else every key was resting)
        self.held: Flow | None = None  # the served attempt's flow, its credential kept (`keep_lease`) until closed

    @property
    def key(self) -> str | None:
        """The pooled key of the last attempt, if it had one."""
        return self.ticket.key if self.ticket is not None else None

    async def run(self, try_key: TryKey, keep_lease: bool = False, racer: Racer | None = None) -> Failure | None:
        """None when `try_key` served the client (on `self.ticket`); else why the target failed, before the first
        token (every key resting, when none may be tried within first_token_timeout). With `keep_lease`, the credential
        of the attempt that served stays held until `self.held` is closed (a WebSocket holds its key while open).
        With a `racer`, an attempt a part answers `hedging` for is raced by a second one (rewrite/exchange/race.py)."""
        failure = await self._run(try_key, keep_lease, racer)
        hooks = self.ctx.hooks
        hooks.announce(TargetEnded, self.call, self.payer, failure)
        return failure

    async def _run(self, try_key: TryKey, keep_lease: bool, racer: Racer | None) -> Failure | None:
        ctx, payer = self.ctx, self.payer
        cfg, clock, hooks, job = ctx.streaming, ctx.clock, ctx.hooks, ctx.job
        attempts = 1 + cfg.first_token_retries
        failure: Failure | None = None
        ticket: Ticket | None = None
        ask = Ask(self.model, self.tokens, deadline=self.until, keeps=keep_lease)
        for n in range(attempts):
            if clock.loop.time() >= self.until:
                return PAST_DEADLINE
            prev = ticket
            ask.avoid = prev.key if prev is not None else None
            hooks.announce(Asking, ask, self.call)
            taken = await self.take(ask)
            ticket = taken.ticket
            if ticket.refused is None or ticket.key is not None:  # (a key back too late is said picked, then left)
                self.ticket = ticket
                if ticket.shown is not None:
                    job.key = ticket.shown
                hooks.announce(Picked, ticket, ask, n, self.provider, self.model, self.call)
            if ticket.refused is not None:  # every key out or back too late, or every usable one stayed busy
                if failure is None:  # nothing was sent upstream
                    job.key = None
                    return ticket.refused
                break
            if failure is None and not ticket.wait:  # (no failure yet, no rest to wait out: nothing to decide)
                wait: float | None = 0.0
            else:
                same = not payer.pooled or (prev is not None and ticket.key == prev.key)
                wait = retry.wait_before(n, ticket.wait, failure, same, payer.pooled, cfg.first_token_timeout)
            if wait is None or clock.loop.time() + wait >= self.until:
                await taken.flow.aclose()  # (not used: given back)
                if wait is None:
                    break
                return PAST_DEADLINE
            if wait:
                try:
                    await clock.sleep(wait)
                except BaseException:  # (its client left meanwhile)
                    await taken.flow.aclose()
                    raise
            began = clock.loop.time()
            self.tried = True
            delay = hooks.ask(Hedging, self.call, ticket, ask, n) if racer else None
            if delay is None:
                failure = await self.attempt(try_key, taken)
            else:
                assert racer is not None
                failure, ticket = await Race(self, racer, delay, taken, n).run()
                self.ticket = ticket  # (the attempt that answered, or failed last)
                job.key = ticket.shown if ticket.shown is not None else job.key
            if failure is None:
                return None
            if not failure.retryable or n + 1 == attempts:
                break
            job.note(Note.RETRY, f"attempt {n + 1} failed ({failure.reason}); retrying", attempt=n + 1,
                     reason=failure.reason, key=job.key, seconds=round(clock.loop.time() - began, 3))
        return failure

    async def take(self, ask: Ask) -> Taken:
        """The payer's credential for an attempt asked with `ask`: its flow, at the pick (a refused one closed)."""
        flow = self.payer.attempt(ask)
        ticket = await anext(flow)
        if ticket.refused is not None:
            await flow.aclose()
        return Taken(ticket, flow)

    async def attempt(self, try_key: TryKey, taken: Taken) -> Failure | None:
        """One attempt on `taken`'s credential, held meanwhile (given back however the attempt ends, unless its flow
        keeps it for what the attempt opened: `self.held`); how it ended told to the payer and the plug-ins. An
        attempt cancelled (its client left, or it lost a race) tells nobody: its key is neither rested nor trusted
        more."""
        flow, ticket = taken.flow, taken.ticket
        try:
            await anext(flow)  # (held from now)
            failure = await try_key(ticket)
        except BaseException:
            await flow.aclose()
            raise
        try:
            await flow.asend(failure)
            self.held = flow  # (it yielded again: held until closed)
        except StopAsyncIteration:
            pass
        self.ctx.hooks.announce(Ended, self.call, ticket, failure, self.payer)
        return failure

    async def second(self, first: Ticket, n: int) -> Taken | None:
        """The credential of a race's second attempt beside attempt number `n` (on `first`), to be had at once or
        not at all: the first's key while it may take another request (its prompt cache is there), else the pool's
        next pick; None when none is free now."""
        ctx, hooks = self.ctx, self.ctx.hooks
        ask = Ask(self.model, self.tokens, prefer=first.key, patient=False, deadline=ctx.clock.loop.time())
        hooks.announce(Asking, ask, self.call)
        taken = await self.take(ask)
        if taken.ticket.refused is not None:
            return None
        if taken.ticket.wait:  # (resting: not worth waiting for beside an attempt under way)
            await taken.flow.aclose()
            return None
        hooks.announce(Picked, taken.ticket, ask, n, self.provider, self.model, self.call)
        return taken
