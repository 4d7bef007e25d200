"""Two attempts of one target raced (a hedge, which a plug-in asks for by answering the `hedging` event with a delay):
the first is sent; when it has no first token `delay` seconds after (and a part answers the `hedge` event), the same
request goes again on a second credential (the first's key preferred: `Ask.prefer`). The first attempt to claim the
client's answer wins: its first token, or any answer of its that the client would get (a vendor's error, a whole
non-stream answer); the other is cancelled at once, which closes its upstream connection. Until an attempt has
claimed, nothing of it reaches the client (the pump holds an attempt's events back until its first token, and each
other answer claims before it is written), so the client gets one answer, never a mix.

Each attempt of a race has its own pump and usage meter (`Attempt.racer`): the winner's becomes the request's; the
loser's, as far as its vendor reported it before the cancel, is announced (`raced`) for the plug-ins to count. An
attempt that fails before a winner is decided is told to its payer and the plug-ins as any attempt's failure, but is
not the request's while the other runs; when both fail, the last failure is the race's, and the request's retries go
on from it. The second attempt's first token is due when the first's is (the first-token timeout bounds the whole):
when neither has one by then, only the first stalled its key (the second was given less than its timeout, and is
not counted as a stall: `FirstTokenDeadline.missed`, rewrite/exchange/keys.py), so a race on one key that stalls rests
it as one stall, and a race on two rests the first's key alone.
Heartbeats are the request's, not an attempt's: they go on meanwhile.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from rewrite.lifecycle.events import Hedge, Raced
from rewrite.lifecycle.payer import Payer, Taken, Ticket
from rewrite.policy.retry import Failure
from rewrite.waiting import first_done

if TYPE_CHECKING:
    from rewrite.exchange.context import Context


class Outrun(Exception):
    """Raised in an attempt that would answer the client after the other attempt of its race won."""


class Runner(Protocol):
    """One attempt of a race: `on` runs it on a credential; `spent` is what its vendor reported of its usage so far."""

    async def on(self, ticket: Ticket) -> Failure | None: ...

    def spent(self) -> Any: ...


class Contender(Protocol):
    """What a race needs of the key attempts whose attempt it races (rewrite/exchange/keys.py's `KeyAttempts`)."""

    ctx: Context
    payer: Payer
    call: Any

    async def second(self, first: Ticket, n: int) -> Taken | None: ...

    async def attempt(self, try_key: Callable[[Ticket], Awaitable[Failure | None]], taken: Taken
                      ) -> Failure | None: ...


# A racing attempt, given its claim (called before anything of it reaches the client) and when its first token is due.
Racer = Callable[[Callable[[], None], float], Runner]


class Claim:
    """Which attempt of a race answers the client: the first to take it; the others' tasks are cancelled then, and
    `on_won` is told (at once: the winner writes to the client right after)."""

    def __init__(self) -> None:
        self.winner: int | None = None
        self.won: asyncio.Future = asyncio.get_running_loop().create_future()
        self.tasks: list[asyncio.Future] = []
        self.on_won: Callable[[int], None] | None = None

    def taker(self, n: int) -> Callable[[], None]:
        def take() -> None:
            if self.winner is None:
                self.winner = n
                self.won.set_result(n)
                running = [i for i, task in enumerate(self.tasks) if i != n and not task.done()]
                for i in running:
                    self.tasks[i].cancel()
                if self.on_won is not None:
                    self.on_won(n)
            elif self.winner != n:
                raise Outrun(f"attempt {self.winner + 1} of the race answered first")

        return take


class Race:
    """The race of attempt number `n` of `keys`'s target, first sent on the credential `first` took."""

    def __init__(self, keys: Contender, racer: Racer, delay: float, first: Taken, n: int) -> None:
        self.keys, self.racer, self.delay = keys, racer, delay
        self.taken: list[Taken] = [first]  # each attempt's credential and its payer's flow
        self.n = n
        self.runners: list[Runner] = []
        self.claim: Claim | None = None
        self.after = 0.0  # seconds after the first attempt the second was sent
        self.began: list[bool] = []  # each attempt's task ran: its credential was held and its request sent

    async def run(self) -> tuple[Failure | None, Ticket]:
        """How the race ended (None: an attempt served the client) and the credential of the attempt that did (or
        that failed last)."""
        keys = self.keys
        loop = keys.ctx.clock.loop
        claim = self.claim = Claim()
        began = loop.time()
        first_by = began + keys.ctx.streaming.first_token_timeout
        tasks = claim.tasks
        try:
            tasks.append(self._start(0, math.inf))  # (its own first-token timeout)
            await first_done(tasks[0], claim.won, timeout=self.delay)
            if tasks[0].done() or claim.won.done() or not self._wanted():
                return await tasks[0], self.tickets[0]
            second = await keys.second(self.tickets[0], self.n)
            after = round(loop.time() - began, 3)
            if second is not None and (tasks[0].done() or claim.won.done()):  # (it answered while a key was taken)
                await second.flow.aclose()
                second = None
            if second is None:
                self._announce(None, after)
                return await tasks[0], self.tickets[0]
            self.taken.append(second)
            self.after = after
            tasks.append(self._start(1, first_by))
            claim.on_won = self._won
            return await self._decided(after)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            for n, began in enumerate(self.began):
                if not began:  # (cancelled before it ran: its slot is given back now, not when its lease expires)
                    await self.taken[n].flow.aclose()

    @property
    def tickets(self) -> list[Ticket]:
        return [taken.ticket for taken in self.taken]

    def _start(self, n: int, first_by: float) -> asyncio.Future:
        assert self.claim is not None
        runner = self.racer(self.claim.taker(n), first_by)
        self.runners.append(runner)
        self.began.append(False)

        async def attempt() -> Failure | None:
            self.began[n] = True
            return await self.keys.attempt(runner.on, self.taken[n])

        return asyncio.ensure_future(attempt())

    def _wanted(self) -> bool:
        """Whether a part lets the second attempt go now (`hedge`)."""
        hooks = self.keys.ctx.hooks
        return hooks.ask(Hedge, self.keys.call, self.tickets[0]) is True

    async def _decided(self, after: float) -> tuple[Failure | None, Ticket]:
        """Both attempts under way: the winner's answer, once the other is cancelled; else the last failure."""
        claim = self.claim
        assert claim is not None
        tasks = claim.tasks
        ended: list[int] = []  # the attempts that ended before a winner was decided, in order
        while claim.winner is None and len(ended) < len(tasks):
            await first_done(claim.won, *(t for i, t in enumerate(tasks) if i not in ended))
            ended += [i for i, t in enumerate(tasks) if t.done() and i not in ended and claim.winner is None]
        if claim.winner is None:
            last = ended[-1]
            self._announce(None, after)
            return tasks[last].result(), self.tickets[last]
        won = claim.winner
        await asyncio.gather(tasks[1 - won], return_exceptions=True)  # (its upstream closed)
        return await tasks[won], self.tickets[won]

    def _won(self, won: int) -> None:
        """Attempt `won` claimed the client's answer, the other was cancelled if it still ran: the plug-ins are told
        now, with what the cancelled one's vendor reported of its usage (it reads nothing more)."""
        assert self.claim is not None
        lost = 1 - won
        if not self.began[lost]:  # (the first token came as the second was started: nothing of it went out)
            self._announce(None, self.after, sent=False)
            return
        cancelled = not self.claim.tasks[lost].done() or self.claim.tasks[lost].cancelled()
        spent = self.runners[lost].spent() if cancelled else None
        self._announce(won, self.after, self.tickets[lost] if cancelled else None, spent)

    def _announce(self, won: int | None, after: float, loser: Ticket | None = None, spent: Any = None,
                  sent: bool = True) -> None:
        keys = self.keys
        hooks = keys.ctx.hooks
        second = self.tickets[1] if len(self.tickets) > 1 and sent else None
        hooks.announce(Raced, keys.call, keys.payer, self.tickets[0], second, won, loser, spent, after)
