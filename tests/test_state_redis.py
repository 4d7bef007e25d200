"""The key pools' shared decisions in Redis (rewrite/state/redis/), over fakeredis and over a real redis-server:
fair order across workers, rests (never shortened), the wait when every key rests, caps and leases that expire,
exact fairness under 1000 concurrent picks, a worker restart that loses nothing, and no key text in Redis."""

from __future__ import annotations

import asyncio
import collections
import time

import fakeredis
import pytest

from rewrite.config_providers import KeyConfig
from rewrite.pool import KeyPool, name_keys
from rewrite.pool.keypool import key_of, stored_id
from rewrite.pool.report import describe
from rewrite.state.redis.connection import connect
from rewrite.state.redis.connection import connect_sync as connect_sync_client
from rewrite.state.redis.names import PoolNames
from rewrite.state.redis.shared import SharedState
from tests.support.redis_server import written
from tests.support.timing import MARGIN, eventually

KEYS = ["sk-pool-alpha-0001", "sk-pool-bravo-0002", "sk-pool-charlie-003"]


@pytest.fixture(params=["fakeredis", "redis-server", "redis-server-unix"])
def redis_url(request):
    """A URL-less fakeredis server, or the real server emptied (over TCP, or its Unix socket: a `unix://` URL); the
    tests connect through `client()`."""
    if request.param == "fakeredis":
        return fakeredis.FakeServer()
    server = request.getfixturevalue("redis_unix_server" if request.param.endswith("unix") else "redis_server")
    server.flush()
    return server.url


def client(where, timeout: float = 0.25):
    if isinstance(where, fakeredis.FakeServer):
        return fakeredis.FakeAsyncRedis(server=where)
    return connect(where, timeout)


def worker(where, keys=KEYS, strategy="round-robin", name="openai", **options) -> KeyPool:
    """One worker's pool over the shared state (each worker has its own client, as each process would). Its Redis
    timeout is long: these tests are about what the workers decide together, and under a loaded CI a call can take
    longer than the product's 0.25 s, which would leave a worker deciding alone (the timeouts have tests of their
    own: tests/test_state_redis_pipe.py, tests/test_state_redis_trouble.py)."""
    timeout = options.pop("timeout", 5.0)
    wall = options.pop("wall", time.time)
    budget = timeout * 1.2 if timeout < 1 else timeout
    if isinstance(where, fakeredis.FakeServer):
        state = SharedState(client(where, timeout), timeout=budget, **options)
    else:  # (as the addon makes it: the per-request calls on their own pipelined connection)
        state = SharedState.from_url(where, socket_timeout=timeout, timeout=budget, **options)
    pool = KeyPool(keys, strategy, name=name, wall=wall)
    pool.shared = state.pool(pool)
    return pool


async def take_and_give_back(pool: KeyPool, model: str = "m"):
    pick = await pool.take(model=model)
    if pick.key is not None:
        pool.lease(pick.key, model, pick.held).release()
    return pick


async def free(pool: KeyPool):
    """The pool's pick, or None while every key is busy (for `eventually`)."""
    pick = await pool.take()
    return None if pick.busy else pick


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def closed(*pools: KeyPool) -> None:
    for pool in pools:
        await pool.shared.shared.aclose()


@pytest.mark.parametrize("strategy", ["round-robin", "fair-cycle", "priority"])
async def test_two_workers_take_turns_in_one_fair_order(redis_url, strategy):
    a, b = worker(redis_url, strategy=strategy), worker(redis_url, strategy=strategy)
    picked = [(await take_and_give_back(a if i % 2 else b)).key for i in range(9)]
    assert picked == KEYS * 3
    await closed(a, b)


async def test_weighted_shares_follow_the_weights_across_workers(redis_url):
    keys = [KeyConfig(key=KEYS[0], weight=3), KeyConfig(key=KEYS[1], weight=1)]
    a, b = worker(redis_url, keys, "weighted"), worker(redis_url, keys, "weighted")
    picked = [(await take_and_give_back(a if i % 2 else b)).key for i in range(8)]
    assert collections.Counter(picked) == {KEYS[0]: 6, KEYS[1]: 2}
    await closed(a, b)


async def test_a_rest_seen_by_one_worker_keeps_the_key_out_of_the_others_rotation_and_is_never_shortened(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    a.rests.bench(KEYS[0], 30, why="rate limited")
    await written(a)
    b.rests.bench(KEYS[0], 1, why="rate limited")  # a later, shorter hint, seen by another worker
    await written(b)
    picked = [(await take_and_give_back(b)).key for _ in range(4)]
    assert KEYS[0] not in picked and set(picked) == set(KEYS[1:])
    rests = await b.shared.shared.client.zrange(PoolNames("openai").rests, 0, -1, withscores=True)
    [(member, until)] = rests
    seconds, micros = await b.shared.shared.client.time()
    assert 28 < until / 1000 - (seconds + micros / 1e6) <= 30
    await closed(a, b)


class _NoClient:
    """In place of a worker's redis-py client: any use of it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"redis-py's client was used ({name})")


async def test_the_once_a_second_reads_of_the_other_workers_go_on_the_pipe_with_the_picks(redis_server):
    # (redis-py's pooled client cost a worker with three pools 7 ms of CPU a second for these reads alone)
    redis_server.flush()
    a, b = worker(redis_server.url), worker(redis_server.url)
    a.rests.bench(KEYS[0], 30, why="rate limited")
    await written(a)
    await take_and_give_back(b)  # (its secret and fingerprints read: the pipe is all it needs from here)
    client, b.shared.shared.client = b.shared.shared.client, _NoClient()
    try:
        await b.shared.shared.observe()
    finally:
        b.shared.shared.client = client
    keys = describe(b)["keys"]
    assert keys[0]["state"] == "resting" and "rate limited" in keys[0]["text"]
    await closed(a, b)


async def test_a_worker_learns_the_others_rests_and_keeps_them_when_it_decides_alone(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    a.rests.bench(KEYS[0], 30, why="rate limited")
    a.rests.bench(KEYS[1], 20, model="gpt-big", why="out of quota")
    await written(a)
    await b.shared.shared.observe()  # (about once a second, with the usage batch)
    first, second = describe(b)["keys"][:2]
    assert first["state"] == "resting" and "rate limited" in first["text"]  # as the status page shows it
    assert [r["model"] for r in second["resting"]] == ["gpt-big"]
    assert {b.pick(model="gpt-big").key for _ in range(4)} == {KEYS[2]}  # its own pick, without Redis
    await closed(a, b)


async def test_a_rest_for_one_model_leaves_the_key_to_the_others(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    a.rests.bench(KEYS[0], 30, model="gpt-big", why="out of quota for this model")
    await written(a)
    big = {(await take_and_give_back(b, "gpt-big")).key for _ in range(4)}
    small = {(await take_and_give_back(b, "gpt-small")).key for _ in range(3)}
    assert KEYS[0] not in big and small == set(KEYS)
    await closed(a, b)


async def test_when_every_key_rests_the_pick_names_the_key_back_soonest_and_how_long(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    for key, seconds in zip(KEYS, (40, 7, 20)):
        a.rests.bench(key, seconds)
    await written(a)
    pick = await b.take(model="m")
    assert pick.key == KEYS[1] and 6 < pick.wait <= 7
    pick.drop()
    await closed(a, b)


async def test_a_worker_that_never_saw_the_rests_says_how_long_every_key_rests_or_that_every_key_is_busy(redis_url):
    """What the client's 429 says (KeyPool.resting after the pick): the rests and leases every worker set, not the
    worker's own state, which knows none of them until its once-a-second read."""
    a, b = worker(redis_url), worker(redis_url)
    for key in KEYS:
        a.rests.bench(key, 30)
    await written(a)
    pick = await b.take(model="m")
    pick.drop()
    resting = b.resting("m", pick)
    assert 29 < resting.seconds <= 30 and not resting.busy and not resting.rejected
    await closed(a, b)

    keys = [KeyConfig(key=KEYS[0], max_concurrent=1)]
    a, b = worker(redis_url, keys, name="capped"), worker(redis_url, keys, name="capped")
    held = await a.take()
    a.lease(held.key, "m", held.held)
    pick = await b.take(model="m")
    assert pick.busy and b.resting("m", pick).busy
    await closed(a, b)


async def test_max_concurrent_holds_across_workers_and_a_dead_workers_lease_expires(redis_url):
    keys = [KeyConfig(key=k, max_concurrent=1) for k in KEYS[:2]]
    a = worker(redis_url, keys, lease_seconds=1.5)
    b = worker(redis_url, keys, lease_seconds=1.5)
    first, second = await a.take(), await b.take()
    assert {first.key, second.key} == set(KEYS[:2])
    a.lease(first.key, "m", first.held)  # the attempt begins, and lasts
    b.lease(second.key, "m", second.held)
    # Stays: Redis's own clock (TIME) times a lease, so only real time takes it past the lease time.
    await asyncio.sleep(2.0)  # past the lease time: a's lease lives on, renewed while its attempt lasts
    assert (await b.take()).busy
    await closed(a)  # a dies mid-attempt: its lease is not given back, nor renewed
    pick = await eventually(lambda: free(b), 1.5 + MARGIN, "the dead worker's lease expired (lease time 1.5 s)")
    assert pick.key == first.key
    await closed(b)


async def test_a_lease_held_after_one_given_back_at_once_is_still_renewed(redis_url):
    keys = [KeyConfig(key=KEYS[0], max_concurrent=1)]
    a, b = worker(redis_url, keys, lease_seconds=1.5), worker(redis_url, keys, lease_seconds=1.5)
    quick = await a.take()
    a.lease(quick.key, "m", quick.held).release()  # an attempt that ends at once
    await written(a)  # (a capped key's slot is given back in the background)
    held = await a.take()
    assert held.key == KEYS[0], held
    lease = a.lease(held.key, "m", held.held)  # and one that lasts past the lease time
    await asyncio.sleep(2.2)  # stays: past the lease time on Redis's clock (TIME), which only real time moves
    assert (await b.take()).busy
    lease.release()
    await written(a)
    assert (await b.take()).key == KEYS[0]
    await closed(a, b)


async def test_a_request_waiting_for_a_capped_key_gets_it_when_it_is_given_back(redis_url, monkeypatch):
    import rewrite.state.redis.decisions as redis_decisions

    if isinstance(redis_url, fakeredis.FakeServer):
        pytest.skip("the order on the wire is the pipe's, which a worker over fakeredis has not")
    monkeypatch.setattr(redis_decisions, "SHARED_LOOK_AGAIN", 30.0)  # (only the key's return may wake the waiter)
    a = worker(redis_url, [KeyConfig(key=KEYS[0], max_concurrent=1)])
    first = await a.take()
    lease = a.lease(first.key, "m", first.held)

    async def wait_for_the_key():
        while (pick := await a.take()).busy:
            await a.returned()
        return pick

    waiting = asyncio.ensure_future(wait_for_the_key())
    await turns(1)  # (its pick is sent)
    await written(a)  # (and answered: busy)
    await turns(5)
    assert not waiting.done()
    lease.release()
    pick = await asyncio.wait_for(waiting, 2)  # its first pick after the release already finds the slot free
    assert pick.key == KEYS[0]
    await closed(a)


async def test_a_pick_never_used_frees_its_key_within_the_lease_time(redis_url):
    keys = [KeyConfig(key=KEYS[0], max_concurrent=1)]
    a, b = worker(redis_url, keys, lease_seconds=0.4), worker(redis_url, keys, lease_seconds=0.4)
    assert (await a.take()).key == KEYS[0]  # picked, then neither used nor dropped (its request was cancelled)
    assert (await b.take()).busy
    pick = await eventually(lambda: free(b), 0.4 + MARGIN, "the unused pick's lease expired (lease time 0.4 s)")
    assert pick.key == KEYS[0]
    await closed(a, b)


@pytest.mark.parametrize("when", ["before its answer", "as its answer came"])
async def test_a_pick_whose_request_is_gone_frees_its_capped_key_at_once(redis_server, when):
    """A request cancelled (its client hung up, a hedge outrun) after its pick was sent: the `max_concurrent` slot
    the pick took is given back when the answer comes (or at once if it came as the request went), not when its
    lease expires (30 s)."""
    redis_server.flush()
    keys = [KeyConfig(key=KEYS[0], max_concurrent=1)]
    a, b = worker(redis_server.url, keys), worker(redis_server.url, keys)
    await take_and_give_back(a)  # (connected: a's picks are written to its pipe at once)
    await written(a)
    if when == "before its answer":
        with redis_server.frozen():  # (no answer can come before the request is gone)
            taking = asyncio.ensure_future(a.take(model="m"))
            await turns(1)  # (its pick is sent)
            taking.cancel()
            with pytest.raises(asyncio.CancelledError):
                await taking
    else:
        prefetch = a.prefetch("m")  # (sent now)
        # Told of the answer before the request is: it is cancelled with its pick in, not yet taken.
        prefetch.pick.add_done_callback(lambda _: taking.cancel())
        taking = asyncio.ensure_future(a.take(model="m", prefetch=prefetch))
        with pytest.raises(asyncio.CancelledError):
            await taking
    await written(a)  # (the answer is in: the slot's release sent)
    await written(a)  # (and done)
    pick = await b.take(model="m")
    assert (pick.key, pick.busy, pick.wait) == (KEYS[0], False, 0.0)
    await closed(a, b)


async def test_a_lease_given_back_frees_the_key_at_once(redis_url):
    keys = [KeyConfig(key=KEYS[0], max_concurrent=1)]
    a, b = worker(redis_url, keys), worker(redis_url, keys)
    pick = await a.take()
    lease = a.lease(pick.key, "m", pick.held)
    assert (await b.take()).busy
    lease.release()
    await written(a)
    assert (await b.take()).key == KEYS[0]
    await closed(a, b)


async def test_a_pick_started_early_is_the_first_attempts_own(redis_url):
    a = worker(redis_url)
    prefetch = a.prefetch("m")
    await prefetch.pick  # (answered while the request was on its way to the engine)
    assert (await a.take(model="m", prefetch=prefetch)).key == KEYS[0]  # (not a second pick, which takes KEYS[1])
    assert (await a.take(model="m", prefetch=prefetch)).key == KEYS[1]  # (used once)
    await closed(a)


async def test_a_key_out_or_resting_after_a_stall_is_passed_over_by_the_shared_pick(redis_url):
    """Each worker keeps which of its keys are out (refused) or resting after a stall, and tells the pick: an out key
    is never picked, a stalled one only when no other key is ready."""
    a = worker(redis_url)
    await take_and_give_back(a)  # (connected: the picks below go out as the pipe's prepared call)
    a.rests.reject(KEYS[1])
    a.rests.stalled(KEYS[2])
    assert [(await take_and_give_back(a)).key for _ in range(4)] == [KEYS[0]] * 4
    a.rests.bench(KEYS[0], 30)  # (now no key is ready: the stalled one is used at once, the refused one never)
    await written(a)  # (over fakeredis the rest is written in the background)
    picks = [await take_and_give_back(a) for _ in range(2)]
    assert [(p.key, p.wait) for p in picks] == [(KEYS[2], 0.0)] * 2
    await closed(a)


async def test_a_started_worker_connects_before_its_first_request(redis_server):
    """The connection's set-up (a round trip, the scripts loaded) is done when the worker starts, not inside the
    first request's short timeout: on a loaded machine that first pick would otherwise be decided alone."""
    redis_server.flush()
    a = worker(redis_server.url)
    state = a.shared.shared
    assert not state.ready()
    state.start()
    await eventually(state.ready)
    assert (await a.take(model="m")).held is not None
    await closed(a)


async def test_a_rest_reaches_redis_before_any_pick_sent_after_it(redis_server):
    """Once connected, a rest is written at once, on the connection the picks take: a request that picks right
    after another one's 429 (in the same loop turn) never gets the key that was just rested."""
    redis_server.flush()
    keys = [KeyConfig(key=k, tier=t) for t, k in enumerate(KEYS)]  # (priority: the lowest tier that is free)
    a = worker(redis_server.url, keys, strategy="priority")
    assert (await take_and_give_back(a)).key == KEYS[0]  # (connected)
    for i in range(2):
        a.rests.bench(KEYS[i], 30, why="rate limited")
        assert (await take_and_give_back(a)).key == KEYS[i + 1]
    await closed(a)


async def test_a_pick_sent_once_connected_survives_a_redis_that_forgot_its_scripts(redis_server):
    """After the first pick the pick is written at once and its reply handed straight to the request: a Redis that
    restarted (its scripts gone) still decides, and the worker does not fall back to its own state."""
    redis_server.flush()
    a = worker(redis_server.url)
    assert (await a.take(model="m")).held is not None  # (connected: the next pick goes out at once)
    connect_sync_client(redis_server.url).script_flush()
    picks = [await a.take(model="m") for _ in range(3)]
    assert [p.key for p in picks] == [KEYS[1], KEYS[2], KEYS[0]]
    assert all(p.held is not None for p in picks) and not a.shared.shared.breaker.broken
    await closed(a)


async def test_a_pick_redis_refuses_is_decided_by_the_worker_and_the_outage_said_once(redis_server, caplog):
    redis_server.flush()
    a = worker(redis_server.url)
    assert (await a.take(model="m")).held is not None
    connect_sync_client(redis_server.url).set(a.shared.names.rests, "not a sorted set")  # (the script fails)
    picks = [await a.take(model="m") for _ in range(3)]
    assert all(p.key in KEYS and p.held is None for p in picks)  # decided here
    assert a.shared.shared.breaker.broken
    assert len([r for r in caplog.records if "Redis did not answer" in r.getMessage()]) == 1
    await closed(a)


async def test_leases_given_back_while_redis_is_thought_away_are_left_to_expire(redis_server):
    """With the breaker open nothing is written to Redis, the leases' give-back neither: they expire by themselves."""
    redis_server.flush()
    a = worker(redis_server.url)
    pick = await a.take(model="m")
    a.lease(pick.key, "m", pick.held).release()  # (uncapped: given back with the next pick, or by the flusher)
    a.shared.shared.breaker.failed(ConnectionError("thought away"))
    await a.shared.leases.flush_given_back()
    leases = connect_sync_client(redis_server.url).zcard(a.shared.names.leases(a.shared._fps[0]))
    assert leases == 1
    await closed(a)


@pytest.mark.parametrize("other", ["model", "pool", "request ended"])
async def test_a_pick_started_early_and_not_used_gives_its_key_back_at_once(redis_url, other):
    if isinstance(redis_url, fakeredis.FakeServer):
        pytest.skip("the order on the wire is the pipe's, which a worker over fakeredis has not")
    keys = [KeyConfig(key=KEYS[0], max_concurrent=1)]
    a, b = worker(redis_url, keys), worker(redis_url, keys)
    prefetch = a.prefetch("guessed")
    await prefetch.pick
    assert (await b.take(model="guessed")).busy  # (the early pick holds the only slot)
    if other == "model":
        pick = await a.take(model="asked", prefetch=prefetch)  # its slot is free before this pick is sent
    elif other == "pool":
        prefetch.take(b, "guessed")  # (another pool's: dropped, its slot given back on worker a's connection)
        await written(a)  # (b's next pick goes on b's connection: Redis may serve it before a's)
        pick = await b.take(model="guessed", prefetch=prefetch)
    else:
        prefetch.drop()
        await written(a)
        pick = await b.take(model="guessed")
    assert pick.key == KEYS[0], pick  # (free long before the lease would have expired: 30 s)
    await closed(a, b)


async def test_a_thousand_concurrent_picks_over_two_workers_are_exactly_fair(redis_url):
    keys = [f"sk-pool-key-{i:04d}-xyz" for i in range(10)]
    a = worker(redis_url, keys, "fair-cycle", timeout=30.0)
    b = worker(redis_url, keys, "fair-cycle", timeout=30.0)
    picks = await asyncio.gather(*(take_and_give_back(a if i % 2 else b) for i in range(1000)))
    assert collections.Counter(p.key for p in picks) == {k: 100 for k in keys}
    await closed(a, b)


async def test_a_restarted_worker_loses_no_rest_lease_or_count(redis_url):
    keys = [KeyConfig(key=k, max_concurrent=1) for k in KEYS[:2]]
    a = worker(redis_url, keys)
    a.rests.bench(KEYS[0], 30)
    await written(a)
    pick = await a.take(model="gpt-x")
    a.lease(pick.key, "gpt-x", pick.held)  # held when the worker stops
    a.record_usage(pick.key, "gpt-x", 0.5, output_tokens=120)
    await closed(a)  # a stops: what it counted is written
    restarted = worker(redis_url, keys)
    assert (await restarted.take()).busy  # one key rests, the other is still leased
    hashes = restarted.shared
    fp = (await hashes.keys.fingerprints())[1]
    total = await hashes.shared.client.hgetall(hashes.names.usage(fp))
    assert {k: float(v) for k, v in total.items()} == {
        b"requests": 1, b"tokens": 120, b"cost": 0.5, b"gpt-x|requests": 1, b"gpt-x|tokens": 120, b"gpt-x|cost": 0.5}
    await closed(restarted)


async def test_no_key_text_is_ever_stored_in_redis(redis_url):
    a, b = worker(redis_url, strategy="weighted"), worker(redis_url, name="anthropic")
    for pool in (a, b):
        for _ in range(4):
            pick = await pool.take(model="gpt-x")
            with pool.lease(pick.key, "gpt-x", pick.held):
                pool.record_usage(pick.key, "gpt-x", None, output_tokens=10)
        pool.rests.bench(KEYS[0], 30, model="gpt-x", why="rate limited")
    await written(a, b)
    await closed(a, b)
    r = client(redis_url)
    stored = []
    async for name in r.scan_iter("*"):
        kind = (await r.type(name)).decode()
        value = {"string": r.get, "hash": r.hgetall, "zset": lambda n: r.zrange(n, 0, -1, withscores=True)}[kind](name)
        stored.append(repr(name) + repr(await value))
    text = "\n".join(stored)
    assert "rot:{openai}:rest" in text and "rot:{anthropic}:use:" in text
    for key in KEYS:
        assert key not in text and key[-8:] not in text
    await r.aclose()


async def test_every_worker_names_a_key_alike_where_conversation_state_records_it(redis_url):
    """(rewrite/pool/keypool.py `stored_id`: the conversation state shared through Redis names the key that made an
    entry as Redis names it, whatever each worker's own state file calls it; nothing before Redis answered.)"""
    a, b = worker(redis_url), worker(redis_url)
    name_keys(a, b"one worker's state file")
    name_keys(b, b"another worker's state file")
    assert stored_id(a, KEYS[0]) == "" and key_of(a, a.states[0].id) is None
    await take_and_give_back(a)
    await take_and_give_back(b)
    assert stored_id(a, KEYS[1]) == stored_id(b, KEYS[1]) not in ("", a.states[1].id, b.states[1].id)
    assert key_of(b, stored_id(a, KEYS[2])) == KEYS[2] and key_of(b, b.states[2].id) is None
    assert all(key[-8:] not in stored_id(a, key) for key in KEYS)
    await closed(a, b)


async def test_every_worker_shows_the_usage_of_all_and_the_hour_keeps_only_its_minutes(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    for _ in range(3):
        pick = await a.take(model="gpt-x")
        with a.lease(pick.key, "gpt-x", pick.held):
            a.record_usage(pick.key, "gpt-x", 0.25, output_tokens=100)
    await a.shared.shared.flush()
    pick = await b.take(model="gpt-y")
    with b.lease(pick.key, "gpt-y", pick.held):  # b's own count, not yet written
        b.record_usage(pick.key, "gpt-y", None, output_tokens=7)
    await b.shared.shared.observe()
    keys = describe(b)["keys"]
    assert sum(k["total"]["requests"] for k in keys) == 4 and sum(k["last_hour"]["tokens"] for k in keys) == 307
    assert sum(k["total"]["cost"] for k in keys) == pytest.approx(0.75)
    assert {m for k in keys for m in k["models"]} == {"gpt-x", "gpt-y"}

    old = worker(redis_url, wall=lambda: time.time() - 7200)  # counts of two hours ago
    pick = await old.take()
    old.lease(pick.key, "gpt-x", pick.held).release()
    await old.shared.shared.flush()
    r = old.shared.shared.client
    fp = (await old.shared.keys.fingerprints())[KEYS.index(pick.key)]
    hour = await r.hgetall(old.shared.names.usage(fp, hour=True))
    assert all(int(name.split(b"|")[0]) > time.time() - 3600 for name in hour)  # (not the old minute)
    assert int((await r.hgetall(old.shared.names.usage(fp)))[b"requests"]) >= 1
    await closed(a, b, old)


async def test_every_worker_shows_each_keys_prompt_cache_share_and_cold_cost_of_all(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    pick = await a.take(model="claude-x")
    with a.lease(pick.key, "claude-x", pick.held):  # a cold prefix: written
        a.record_usage(pick.key, "claude-x", 0.01, input_tokens=1000, output_tokens=30, cache_write=1000,
                       cold_cost=0.00115)
    await a.shared.shared.flush()
    with b.lease(pick.key, "claude-x"):  # the same key on b: read (b's own count, not yet written)
        b.record_usage(pick.key, "claude-x", 0.001, input_tokens=1000, output_tokens=30, cache_read=900,
                       cache_write=100, cold_cost=0.000115)
    await b.shared.shared.observe()
    [shown] = [k for k in describe(b)["keys"] if k["total"]["input_tokens"]]
    assert (shown["total"]["cache_read_tokens"], shown["total"]["cache_write_tokens"]) == (900, 1100)
    assert shown["cache_read_share"] == {"last_hour": 0.45, "total": 0.45}
    assert shown["total"]["cold_cost"] == pytest.approx(0.001265)
    assert shown["models"]["claude-x"]["cache_read_tokens"] == 900
    await closed(a, b)


async def test_an_idle_worker_rebuilds_a_keys_view_only_when_some_worker_counted_or_it_was_replaced(
        redis_url, monkeypatch):
    # (turning every key's counts back into its view each second was most of an idle worker's round)
    from rewrite.pool.key_state import KeyCounters
    rebuilt: list[int] = []
    restore = KeyCounters.restore
    monkeypatch.setattr(KeyCounters, "restore", lambda self, data: (rebuilt.append(id(self)), restore(self, data))[1])
    a, b = worker(redis_url), worker(redis_url)
    views = {id(b.by_secret[key].usage): key for key in KEYS}

    def requests() -> list[int]:
        return [k["total"]["requests"] for k in describe(b)["keys"]]

    async def counted(pool: KeyPool, key: str, n: int = 1) -> None:
        for _ in range(n):
            with pool.lease(key, "gpt-x"):
                pool.record_usage(key, "gpt-x", 0.01, output_tokens=10)

    await counted(a, KEYS[0], 2)
    await a.shared.shared.flush()
    await b.shared.shared.observe()
    assert requests() == [2, 0, 0]
    rebuilt.clear()
    for _ in range(3):
        await b.shared.shared.observe()
    assert rebuilt == [] and requests() == [2, 0, 0]  # nobody counted: every view is the one it was

    await counted(a, KEYS[1])
    await a.shared.shared.flush()
    await b.shared.shared.observe()
    assert [views[v] for v in rebuilt] == [KEYS[1]] and requests() == [2, 1, 0]  # another worker counted

    rebuilt.clear()
    await counted(b, KEYS[2])  # its own count, not yet written
    await b.shared.shared.observe()
    assert [views[v] for v in rebuilt] == [KEYS[2]] and requests() == [2, 1, 1]

    b.by_secret[KEYS[0]].usage.restore({})  # the view replaced by something else (a kept state read back)
    rebuilt.clear()
    await b.shared.shared.observe()
    assert views[rebuilt[-1]] == KEYS[0] and requests() == [2, 1, 1]
    await closed(a, b)


async def test_between_its_once_a_second_rounds_an_idle_worker_has_no_timer_of_the_rounds_left_to_wake_it(
        redis_server, monkeypatch):
    # (the reply watch fired a while after every round, with nothing left to watch: one wake-up a second for nothing)
    from rewrite.state.redis.pipe import _Replies
    wasted: list[float] = []  # (a watch that fires with calls under way is a real timeout: not counted)
    check = _Replies._check
    monkeypatch.setattr(_Replies, "_check",
                        lambda self: (None if self.deadlines else wasted.append(time.monotonic()), check(self))[1])
    redis_server.flush()
    pool = worker(redis_server.url, timeout=0.3, flush_interval=0.5)  # (a round's watch would fire 0.3 s after it)
    await take_and_give_back(pool)  # (its pick's watch stays: a request's own costs no timer more)
    rounds: list[float] = []
    observe = pool.shared.shared.observe

    async def observed() -> None:
        await observe()
        rounds.append(time.monotonic())

    monkeypatch.setattr(pool.shared.shared, "observe", observed)
    await eventually(lambda: rounds, timeout=5 + MARGIN)
    wasted.clear()
    await eventually(lambda: len(rounds) >= 4, timeout=10 + MARGIN)
    assert wasted == []
    await closed(pool)
