"""How a pool chooses its keys, over thousands of picks with a fake clock: each strategy's promise, leases that
are always given back, and a rotation position that survives a restart."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from types import SimpleNamespace

import httpx
import pytest

from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.pool import STRATEGIES, KeyPool
from rewrite.pool.persistence import export_state, import_state
from rewrite.routing.router import Router
from tests.support import samples
from tests.support.engine_harness import PATHS, FakeResponder, Held, Upstream, events_of
from tests.support.timing import MARGIN, FakeClock, eventually

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)


def keys(*specs: dict) -> list:
    """Key settings as the config gives them (rewrite.config_providers.KeyConfig's fields)."""
    return [SimpleNamespace(key=s["key"], weight=s.get("weight", 1.0), tier=s.get("tier", 1),
                            max_concurrent=s.get("max_concurrent")) for s in specs]


def ready_keys(pool: KeyPool, clock: FakeClock) -> set[str]:
    return {s.secret for s in pool.states if s.rest_until("", clock.now) <= clock.now}


def rest_some(pool: KeyPool, rng: random.Random) -> None:
    """Now and then a key is rate limited for a while."""
    if rng.random() < 0.1:
        pool.rests.bench(rng.choice(pool.keys), rng.uniform(0.5, 20))


def test_every_strategy_is_registered_by_its_config_name():
    assert set(STRATEGIES) == {"round-robin", "fair-cycle", "least-used", "weighted", "priority"}
    config = parse("providers: {openai: {strategy: fair-cycle, keys: [k-aaaa, {key: k-bbbb, weight: 2, tier: 2, "
                   "max_concurrent: 3}]}}")
    pool = Router(config).provider_for("api.openai.com").pool
    assert pool.strategy.name == "fair-cycle"
    assert [(s.weight, s.tier, s.max_concurrent) for s in pool.states] == [(1.0, 1, None), (2.0, 2, 3)]


def test_round_robin_takes_each_key_in_turn_and_skips_resting_ones():
    clock = FakeClock()
    pool = KeyPool(["a", "b", "c"], clock=clock)
    assert [pool.pick().key for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    pool.rests.bench("b", 10)
    assert [pool.pick().key for _ in range(4)] == ["a", "c", "a", "c"]


def test_fair_cycle_uses_every_key_exactly_once_per_cycle():
    pool = KeyPool([f"k{i}" for i in range(5)], "fair-cycle", clock=FakeClock())
    picks = [pool.pick().key for _ in range(5000)]
    for start in range(0, 5000, 5):
        assert sorted(picks[start:start + 5]) == [f"k{i}" for i in range(5)]


def test_fair_cycle_with_rests_reuses_a_key_only_after_every_ready_key_had_its_turn():
    rng, clock = random.Random(7), FakeClock()
    pool = KeyPool([f"k{i}" for i in range(6)], "fair-cycle", clock=clock)
    cycle: set[str] = set()
    repeats = 0
    for _ in range(5000):
        clock.now += rng.uniform(0, 1)
        rest_some(pool, rng)
        ready = ready_keys(pool, clock)
        key = pool.pick().key
        if not ready:
            continue  # every key rests: the one back soonest, outside the cycle
        if key in cycle:  # a key used again: the cycle is over, so every key ready now had its turn in it
            assert ready <= cycle, (key, ready - cycle)
            cycle, repeats = set(), repeats + 1
        cycle.add(key)
    assert repeats > 500


def test_fair_cycle_a_key_back_from_rest_joins_the_current_cycle():
    clock = FakeClock()
    pool = KeyPool(["a", "b", "c", "d"], "fair-cycle", clock=clock)
    assert pool.pick().key == "a"
    pool.rests.bench("c", 10)
    assert [pool.pick().key for _ in range(2)] == ["b", "d"]
    assert pool.pick().key == "a"  # every ready key had its turn: a new cycle
    clock.now += 11  # c is back: it joins this cycle rather than waiting for the next
    assert sorted(pool.pick().key for _ in range(3)) == ["b", "c", "d"]


def test_weighted_matches_the_weights_within_a_few_percent():
    weights = {"a": 1, "b": 2, "c": 3, "d": 4}
    pool = KeyPool(keys(*({"key": k, "weight": w} for k, w in weights.items())), "weighted", clock=FakeClock())
    counts = Counter(pool.pick().key for _ in range(10_000))
    for key, weight in weights.items():
        assert counts[key] / 10_000 == pytest.approx(weight / 10, rel=0.03)


def test_weighted_spreads_picks_rather_than_bursting_one_key():
    pool = KeyPool(keys({"key": "a", "weight": 1}, {"key": "b", "weight": 1}), "weighted", clock=FakeClock())
    picks = [pool.pick().key for _ in range(100)]
    assert all(x != y for x, y in zip(picks, picks[1:]))


def test_weighted_shares_among_the_ready_keys_when_one_rests():
    clock = FakeClock()
    pool = KeyPool(keys({"key": "a", "weight": 1}, {"key": "b", "weight": 3}, {"key": "c", "weight": 6}), "weighted",
                   clock=clock)
    pool.rests.bench("c", 1e6)
    counts = Counter(pool.pick().key for _ in range(4000))
    assert counts["c"] == 0 and counts["b"] / 4000 == pytest.approx(0.75, rel=0.03)


def test_priority_never_leaks_to_a_lower_tier_while_a_higher_one_has_a_ready_key():
    rng, clock = random.Random(3), FakeClock()
    tiers = {"a1": 1, "b1": 1, "c2": 2, "d2": 2, "e3": 3}
    pool = KeyPool(keys(*({"key": k, "tier": t} for k, t in tiers.items())), "priority", clock=clock)
    used = Counter()
    for _ in range(5000):
        clock.now += rng.uniform(0, 1)
        rest_some(pool, rng)
        ready = ready_keys(pool, clock)
        key = pool.pick().key
        used[tiers[key]] += 1
        if ready:
            assert tiers[key] == min(tiers[k] for k in ready), (key, ready)
    assert used[1] > used[2] > 0 and used[3] > 0  # the lower tiers did serve, when they had to


def test_priority_round_robins_within_a_tier():
    pool = KeyPool(keys({"key": "a", "tier": 1}, {"key": "b", "tier": 1}, {"key": "c", "tier": 2}), "priority",
                   clock=FakeClock())
    assert [pool.pick().key for _ in range(4)] == ["a", "b", "a", "b"]


def test_least_used_prefers_fewest_in_flight_then_fewest_tokens_this_hour():
    clock = FakeClock()
    pool = KeyPool(["a", "b", "c"], "least-used", clock=clock, wall=lambda: 1_700_000_000.0)
    held = [pool.lease(pool.pick().key) for _ in range(3)]  # one each: a tie on leases
    assert sorted(lease.state.secret for lease in held) == ["a", "b", "c"]
    held[0].release()  # a has none in flight now
    assert pool.pick().key == "a"
    for lease in held[1:]:
        lease.release()
    pool.record_usage("a", "m", 0.01, output_tokens=900)
    pool.record_usage("b", "m", 0.01, output_tokens=100)
    assert pool.pick().key == "c"  # no tokens at all
    pool.record_usage("c", "m", None, output_tokens=500)
    assert pool.pick().key == "b"


def test_least_used_spreads_evenly_when_nothing_differs():
    pool = KeyPool(["a", "b", "c"], "least-used", clock=FakeClock())
    assert Counter(pool.pick().key for _ in range(300)) == {"a": 100, "b": 100, "c": 100}


# ------------------------------------------------------------------------------------------------------------------
# Leases


def test_a_key_at_its_max_concurrent_is_skipped_and_a_pool_all_at_cap_is_busy():
    pool = KeyPool(keys({"key": "a", "max_concurrent": 1}, {"key": "b", "max_concurrent": 2}), clock=FakeClock())
    first = pool.lease(pool.pick().key)
    assert first.state.secret == "a"
    held = [pool.lease(pool.pick().key) for _ in range(2)]
    assert [h.state.secret for h in held] == ["b", "b"]  # a is at its cap
    assert pool.pick().busy and pool.pick().key is None and pool.resting().busy
    held[0].release()
    assert pool.pick().key == "b"


async def turns(n: int) -> None:
    """Let the loop turn n times: other tasks run, and no time passes."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_leases_never_leak_under_cancellation():
    rng = random.Random(11)
    caps = {"a": 2, "b": 3, "c": 1}
    pool = KeyPool(keys(*({"key": k, "max_concurrent": c} for k, c in caps.items())), "least-used")
    peak = Counter()

    async def attempt() -> None:
        while (pick := pool.pick()).busy:
            await pool.returned()
        with pool.lease(pick.key):
            peak[pick.key] = max(peak[pick.key], pool.by_secret[pick.key].in_flight)
            await turns(rng.randrange(6))  # the attempt lasts a few loop turns
            if rng.random() < 0.2:
                raise RuntimeError("the upstream failed")

    tasks = [asyncio.ensure_future(attempt()) for _ in range(400)]
    for _ in range(30):
        await turns(rng.randrange(1, 4))
        for t in rng.sample(tasks, 10):
            t.cancel()  # clients going away, at any point
    await asyncio.gather(*tasks, return_exceptions=True)
    assert [s.in_flight for s in pool.states] == [0, 0, 0]
    assert all(peak[k] <= caps[k] for k in caps) and sum(s.usage.total.requests for s in pool.states) > 100


def test_a_lease_is_given_back_once_however_often_it_is_released():
    pool = KeyPool(["a"], clock=FakeClock())
    lease = pool.lease("a")
    with lease:
        pass
    lease.release()
    assert pool.states[0].in_flight == 0 and pool.states[0].usage.total.requests == 1


def capped_route(cap: int, **streaming):
    cfg = parse(f"providers: {{openai: {{base_url: 'http://vendor.test/v1', keys: [{{key: k1, max_concurrent: {cap}}}]}}}}")
    route = Router(cfg).route(*PATHS["openai_chat"][:1], "POST", PATHS["openai_chat"][1])
    return route, StreamingConfig(**{"first_token_timeout": 5, "heartbeat_interval": 30, **streaming})


async def exchange(route, cfg, upstream) -> FakeResponder:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = LoopbackRequest("POST", PATHS["openai_chat"][1], [("content-type", "application/json")],
                              json.dumps(body).encode())
    out = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg, Job("job-0001", route, route.provider), request, out).run()
    return out


def held_answers() -> tuple[Upstream, list[Held]]:
    """An upstream whose every answer stops after its third event until the test releases it."""
    bodies: list[Held] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(Held(events_of(samples.CHAT_TEXT), at=3))  # (its first token in)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=bodies[-1])

    return Upstream([answer]), bodies


async def test_the_engine_gives_a_lease_back_when_the_client_leaves_mid_stream():
    route, cfg = capped_route(1)
    up, bodies = held_answers()
    task = asyncio.ensure_future(exchange(route, cfg, up))
    await eventually(lambda: bodies and bodies[0].reached.is_set())  # midway through the answer
    assert route.provider.pool.states[0].in_flight == 1
    task.cancel()  # the client went away
    await asyncio.gather(task, return_exceptions=True)
    assert route.provider.pool.states[0].in_flight == 0


async def test_a_request_waits_for_a_key_at_its_cap_then_uses_it():
    route, cfg = capped_route(1)
    up, bodies = held_answers()
    first = asyncio.ensure_future(exchange(route, cfg, up))
    await eventually(lambda: bodies and bodies[0].reached.is_set())  # the key's one slot is held, midway
    second = asyncio.ensure_future(exchange(route, cfg, up))
    await turns(50)  # (no socket: a second request let through would reach the upstream within a few turns)
    assert len(up.seen) == 1 and not second.done()  # it waits for the key
    bodies[0].release.set()
    await eventually(lambda: len(bodies) == 2)
    bodies[1].release.set()
    first_out, second_out = await asyncio.gather(first, second)
    assert first_out.status == second_out.status == 200 and len(up.seen) == 2
    assert route.provider.pool.states[0].in_flight == 0


async def test_a_key_at_its_cap_past_first_token_timeout_is_answered_429_busy():
    route, cfg = capped_route(1, first_token_timeout=30)
    up, bodies = held_answers()
    loop = asyncio.get_running_loop()
    long = asyncio.ensure_future(exchange(route, cfg, up))  # holds the key's one slot until cancelled
    await eventually(lambda: bodies and bodies[0].reached.is_set())
    t0 = loop.time()
    out = await asyncio.wait_for(exchange(route, cfg, up), 30 + MARGIN)  # (not for the key, which never returns)
    assert loop.time() - t0 == 30  # the key was waited for, up to the first-token timeout
    assert out.status == 429 and dict(out.headers)["retry-after"] == "1"
    assert "max_concurrent" in json.loads(out.body)["error"]["message"] and len(up.seen) == 1
    long.cancel()
    await asyncio.gather(long, return_exceptions=True)


# ------------------------------------------------------------------------------------------------------------------
# Position across a restart


@pytest.mark.parametrize("strategy", ["round-robin", "fair-cycle", "weighted", "priority"])
def test_a_restored_pool_continues_where_the_old_one_was(strategy):
    specs = keys(*({"key": f"k{i}", "weight": i + 1, "tier": 1 + i % 2} for i in range(4)))
    old, twin = KeyPool(specs, strategy, clock=FakeClock()), KeyPool(specs, strategy, clock=FakeClock())
    for _ in range(7):
        old.pick(), twin.pick()
    restored = KeyPool(specs, strategy, clock=FakeClock())
    import_state(restored, json.loads(json.dumps(export_state(old))))
    assert [restored.pick().key for _ in range(20)] == [twin.pick().key for _ in range(20)]


def test_a_position_saved_under_another_strategy_is_ignored():
    old = KeyPool(["a", "b", "c"], "round-robin", clock=FakeClock())
    old.pick()
    new = KeyPool(["a", "b", "c"], "fair-cycle", clock=FakeClock())
    import_state(new, export_state(old))
    assert [new.pick().key for _ in range(3)] == ["a", "b", "c"]
