"""Clients' budgets and limits with `state.redis` (rewrite/state/redis/clients.py, client_scripts.py): every worker
counts into one figure per client, and a client's budget or limit is checked by the shared pick itself, in the same
step (one call) as the key is picked: two workers never both spend the last dollar, a worker alone and Redis refuse
the same requests, and each worker's book shows what all of them counted."""

from __future__ import annotations

import asyncio
import time

import fakeredis
import pytest
import redis

from rewrite.accounting.client_book import FIGURES, ClientBook, blank
from rewrite.accounting.client_rules import BudgetConfig, ClientHold, ClientRules, LimitConfig
from rewrite.config import parse
from rewrite.engine import Engine
from rewrite.pool import KeyPool
from rewrite.state.redis.clients import SharedClients
from rewrite.state.redis.names import CLIENTS
from rewrite.state.redis.shared import SharedState
from tests.support.redis_server import written

KEYS = ["sk-clients-alpha-0001", "sk-clients-bravo-0002"]
COST = 0.25  # dollars an answer costs in these tests
TOKENS = (300, 200)  # its input and output tokens


class Worker:
    """One worker: its pool over the shared state and its clients' book, shared as the engine shares them."""

    def __init__(self, where) -> None:
        if isinstance(where, fakeredis.FakeServer):
            self.state = SharedState(fakeredis.FakeAsyncRedis(server=where), timeout=5.0)
        else:
            self.state = SharedState.from_url(where, socket_timeout=5.0, timeout=5.0)
        self.pool = KeyPool(KEYS, name="openai")
        self.pool.shared = self.state.pool(self.pool)
        self.book = ClientBook()
        self.book.shared = self.state.clients = SharedClients(self.state, self.book)

    async def ask(self, rules: ClientRules, request_id: str, answer_after: asyncio.Event | None = None) -> str | None:
        """One request of `rules`' client: its pick (with its rules), then its answer's spending once it is done.
        The figure that refused it, or None: served."""
        hold = ClientHold(rules, request_id, self.book.ends(time.time()), lambda refusal: refusal)
        pick = await self.pool.take(model="gpt-4o", client=hold)
        if hold.refusal is not None:
            assert pick.key is None and pick.held is None  # (no key leased for it)
            return hold.refusal.figure
        assert pick.key is not None
        if answer_after is not None:
            await answer_after.wait()
        self.pool.lease(pick.key, "gpt-4o", pick.held).release()
        self.book.shared.spend(rules.name, request_id, {("openai", "gpt-4o"): answer()}, time.time())
        await written(self.pool)
        return None

    async def close(self) -> None:
        await self.state.aclose()


def answer() -> list[float]:
    figures = blank()
    figures[FIGURES.index("requests")] = 1
    figures[FIGURES.index("input_tokens")], figures[FIGURES.index("output_tokens")] = TOKENS
    figures[FIGURES.index("cost")] = COST
    return figures


def rules_of(budget: float | None = None, requests: int | None = None, tokens: int | None = None) -> ClientRules:
    limits = ([LimitConfig(per="minute", requests=requests)] if requests else []) + (
        [LimitConfig(per="minute", tokens=tokens)] if tokens else [])
    return ClientRules("ci", BudgetConfig(dollars=budget, per="day") if budget else None, limits, [])


def alone(rules: ClientRules, n: int) -> list[str | None]:
    """What a worker alone decides for `n` requests one after another (the clients plug-in's own check)."""
    book, out = ClientBook(), []
    for _ in range(n):
        refusal = rules.check("gpt-4o", lambda unit, per, now: book.spent("ci", unit, per, now), 0, time.time())
        out.append(refusal.figure if refusal is not None else None)
        if refusal is None:
            book.add("ci", "openai", "gpt-4o", answer())
    return out


@pytest.mark.parametrize("rules", [rules_of(budget=3 * COST), rules_of(requests=3), rules_of(tokens=1200),
                                   rules_of(budget=10, requests=4, tokens=100000)], ids=["dollars", "requests",
                                                                                       "tokens", "the first of three"])
async def test_a_worker_alone_and_redis_refuse_the_same_requests_of_a_client(redis_where, rules):
    a, b = Worker(redis_where), Worker(redis_where)
    shared = [await (a if i % 2 else b).ask(rules, f"r{i}") for i in range(6)]  # (the two workers in turn)
    assert shared == alone(rules, 6)
    assert shared.count(None) in (3, 4)
    await a.close(), await b.close()


async def test_two_workers_admit_a_budget_of_n_requests_cost_n_requests_in_all(redis_where):
    """Ten requests of one client at once on each of two workers, its budget the cost of three answers and a
    requests limit of three: the pick counts each request in flight as it admits it, so exactly three go (a worker
    alone would let three go on each)."""
    rules = rules_of(budget=3 * COST, requests=3)
    a, b = Worker(redis_where), Worker(redis_where)
    await a.pool.take(model="gpt-4o"), await b.pool.take(model="gpt-4o")  # (connected)
    go = asyncio.Event()
    asked = [asyncio.ensure_future(w.ask(rules, f"{i}-{n}", go)) for i, w in enumerate((a, b)) for n in range(10)]
    await asyncio.sleep(0.2)  # (every pick made, the admitted ones waiting to be answered)
    go.set()
    outcomes = await asyncio.gather(*asked)
    assert outcomes.count(None) == 3
    assert set(outcomes) - {None} == {"limit of 3 requests per minute"}
    # Spent: the next is refused for the budget, on either worker, and each worker's book shows what both counted.
    assert await a.ask(rules, "after") == await b.ask(rules, "after-b") == "budget of $0.75 per day"
    await a.state.observe(), await b.state.observe()
    for worker in (a, b):
        [row] = worker.book.describe()
        assert (row["total"]["requests"], row["total"]["cost"], row["day"]["input_tokens"]) == (3, 3 * COST, 900)
    await a.close(), await b.close()


async def test_the_rules_go_in_the_pick_itself_one_call_per_request(redis_server):
    """The client's check costs no call of its own: a request's pick is one script call, with rules or without."""
    redis_server.flush()
    w = Worker(redis_server.url)
    rules = rules_of(budget=100, requests=100, tokens=10**7)
    await w.ask(rules, "warm")
    stats = redis.Redis.from_url(redis_server.url)

    def calls() -> int:
        return sum(v["calls"] for k, v in stats.info("commandstats").items() if k.startswith("cmdstat_eval"))

    before = calls()
    for i in range(5):
        hold = ClientHold(rules, f"r{i}", w.book.ends(time.time()), lambda refusal: refusal)
        pick = await w.pool.take(model="gpt-4o", client=hold)
        w.pool.lease(pick.key, "gpt-4o", pick.held).release()
    await written(w.pool)
    assert calls() - before == 5  # (one pick each: the leases given back ride on the next pick)
    stats.close()
    await w.close()


async def test_the_clients_figures_are_read_only_while_clients_are_configured(redis_server):
    """A worker without `clients` does not read every client's figures from Redis (no HGETALL of rot:clients on its
    rounds); a config reload that adds clients starts the reads, one that takes them all away stops them."""
    redis_server.flush()
    shared = f"state: {{redis: '{redis_server.url}'}}\n"
    with_clients = shared + "clients: [{name: ci, key: rk-ci-abcdef-0123456}]\n"
    engine = Engine(parse(shared))
    engine.share_state()
    state = engine.sharing.state
    assert state is not None
    with redis_server.monitored() as monitor:
        await state.observe()
        assert monitor.ran("HGETALL", CLIENTS) == 0
        engine.configure(parse(with_clients))  # (as a reload does: the same Redis, so the same link)
        engine.share_state()
        await state.observe()
        assert monitor.ran("HGETALL", CLIENTS) >= 1  # (the link's own rounds may have read them too)
        engine.configure(parse(shared))
        engine.share_state()
        await state.observe()  # (after a round under way at the reload: the pipe answers in order)
        before = monitor.ran("HGETALL", CLIENTS)
        await state.observe()
        assert monitor.ran("HGETALL", CLIENTS) == before
    await state.aclose()
    await engine.aclose()
