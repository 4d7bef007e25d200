"""A hedge's second attempt over keys shared in Redis (rewrite/exchange/race.py with rewrite/state/redis/): one that
the first attempt's first token outran before it was sent gives its key's `max_concurrent` slot back at once (not
when its lease expires, 30 s later) and is not counted as a hedge sent (its share of the budget comes back)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from rewrite.config_providers import KeyConfig
from rewrite.exchange.race import Race
from rewrite.lifecycle.events import Hedge, Raced
from rewrite.lifecycle.payer import Ask, Taken, Ticket
from rewrite.plugins.payers.keys import PooledKey
from rewrite.policy.hedging import Budget
from rewrite.pool import KeyPool
from rewrite.state.redis.shared import SharedState
from tests.support.redis_server import written

KEY = "sk-race-capped-key-0001"


def worker(url: str) -> KeyPool:
    """One worker's pool of one key at `max_concurrent: 1`, shared through the Redis at `url`."""
    pool = KeyPool([KeyConfig(key=KEY, max_concurrent=1), KeyConfig(key="sk-race-other-key-0002")], "round-robin",
                   name="openai")
    pool.shared = SharedState.from_url(url, socket_timeout=5.0, timeout=6.0).pool(pool)
    return pool


class Contender:
    """What a race needs of its key attempts, over `pool`: the second attempt's pick comes back as the first
    attempt's first token does (its claim scheduled with the pick's answer)."""

    def __init__(self, pool: KeyPool, budget: Budget) -> None:
        self.pool, self.budget = pool, budget
        self.races: list[Raced] = []
        self.sent: list[str] = []
        self.first_claims = asyncio.get_running_loop().create_future()
        clock = SimpleNamespace(loop=asyncio.get_running_loop())
        self.payer = PooledKey(SimpleNamespace(name="openai"), pool, True, None, clock, 5.0, None,  # type: ignore[arg-type]
                               "job-0001")
        self.call = None
        self.ctx = SimpleNamespace(clock=clock, streaming=SimpleNamespace(first_token_timeout=5.0), hooks=self)

    # (the hooks: the hedging plug-in's budget lets the second go; the race's end is kept)
    def wants(self, kind) -> bool:
        return kind in (Hedge, Raced)

    def ask(self, kind, *fields) -> bool:
        return self.budget.spend()

    def announce(self, kind, *fields) -> None:
        event = kind(*fields)
        self.races.append(event)
        if event.second is None:  # (what the hedging plug-in does: rewrite/plugins/hedging.py)
            self.budget.refund()

    async def taken(self, **ask) -> Taken:
        """The pooled payer's flow, at its pick (rewrite/plugins/payers/keys.py)."""
        flow = self.payer.attempt(Ask("m", **ask))
        ticket = await anext(flow)
        assert ticket.key is not None and not ticket.wait and ticket.refused is None
        return Taken(ticket, flow)

    async def second(self, first: Ticket, n: int) -> Taken:
        taken = await self.taken(avoid=first.key)
        self.first_claims.set_result(None)  # (the first token arrives now, with the pick's answer)
        return taken

    async def attempt(self, try_key, taken: Taken):
        await anext(taken.flow)  # (held)
        try:
            return await try_key(taken.ticket)
        finally:
            await taken.flow.aclose()


def racer(contender: Contender):
    def make(claim, first_by):
        async def on(ticket: Ticket):
            contender.sent.append(ticket.key)
            if len(contender.sent) == 1:  # the first attempt: its first token comes as the second is picked
                await contender.first_claims
                claim()
                return None
            await asyncio.sleep(60)  # (the second: would stall, and is cancelled)

        return SimpleNamespace(on=on, spent=lambda: None)

    return make


async def test_a_hedge_outrun_before_its_send_frees_its_slot_at_once_and_spends_no_budget(redis_server):
    redis_server.flush()
    pool, other_worker = worker(redis_server.url), worker(redis_server.url)
    budget = Budget()
    contender = Contender(pool, budget)
    first = await contender.taken(avoid=KEY)  # (the first attempt on the other key; the hedge gets the capped one)
    failure, served = await Race(contender, racer(contender), 0.01, first, 0).run()
    assert failure is None and served is first.ticket
    assert contender.sent == [first.ticket.key]  # the second attempt never went out
    await written(pool)
    again = await other_worker.take(model="m", avoid=first.ticket.key)  # another worker takes the capped key at once
    assert again.key == KEY and not again.busy and not again.wait
    again.drop()
    [race] = contender.races
    assert race.second is None  # told as a hedge not sent...
    assert budget.spend()  # ...so the budget it took is back (a fresh budget holds one hedge)
    for p in (pool, other_worker):
        await p.shared.shared.aclose()

