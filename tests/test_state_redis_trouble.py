"""Redis trouble never stops traffic: a frozen (SIGSTOP) or absent Redis moves every decision to the worker's own
state (the one that finds out waits the 0.25 s timeout, the others not at all), said once; after SIGCONT the rests and counts of the meantime are merged back,
none lost and none counted twice. And the conversation store (field cache, continuity) in Redis: TTLs, the size
bound, shared by workers, and served locally while Redis does not answer."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import fakeredis
import pytest

import protocols
from rewrite.conversation.plugin import ConversationState
from rewrite.pool import KeyPool
from rewrite.state.kv import MemoryStore
from rewrite.state.redis.connection import ERRORS, START_SECONDS, TIMEOUT, Breaker, connect, connect_sync, timed_out
from rewrite.state.redis.kv import RedisStore
from rewrite.state.redis.shared import SharedState
from rewrite.state.sharing import where
from tests.support.harness import free_port
from tests.support.redis_server import written
from tests.support.timing import MARGIN, FakeClock, eventually, wait_until

KEYS = ["sk-pool-alpha-0001", "sk-pool-bravo-0002", "sk-pool-charlie-003"]


# How long a decision that finds Redis frozen waits: long enough that one that did not wait is told from it on a
# loaded machine without an upper bound of a fraction of a second.
FROZEN_WAIT = 1.0


def worker(url: str, breaker_seconds: float = 0.5, clock=time.monotonic) -> KeyPool:
    breaker = Breaker(breaker_seconds, clock=clock)
    state = SharedState.from_url(url, socket_timeout=FROZEN_WAIT, timeout=1.2 * FROZEN_WAIT, breaker=breaker,
                                 flush_interval=0.2)
    pool = KeyPool(KEYS, "round-robin", name="openai")
    pool.shared = state.pool(pool)
    return pool


async def served_by(pool: KeyPool, served: list[float]) -> float:
    """One request served by `pool` (a pick, its lease and its usage); how long its pick took, added to `served`."""
    began = time.monotonic()
    pick = await pool.take(model="gpt-x")
    took = time.monotonic() - began
    assert pick.key is not None
    with pool.lease(pick.key, "gpt-x", pick.held):
        pool.record_usage(pick.key, "gpt-x", 0.01, output_tokens=10)
    served.append(took)
    return took


def outage_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Redis did not answer" in r.getMessage()]


async def test_a_frozen_redis_moves_every_decision_to_local_state_and_they_converge_after(redis_server, caplog):
    caplog.set_level(logging.INFO, logger="rotator")
    redis_server.flush()
    clock = FakeClock()  # the breaker's: it retries Redis when the test moves it on
    pool = worker(redis_server.url, clock=clock)
    served: list[float] = []

    async def serve() -> float:
        return await served_by(pool, served)

    await serve()  # (Redis answers: the fingerprints' secret is known)
    with redis_server.frozen():
        took = [await serve() for _ in range(6)]
        pool.rests.bench(KEYS[0], 30, why="rate limited")  # learned while Redis is away: kept here
        clock.advance(0.5)  # the breaker tries Redis again (a decision or a usage batch goes out, and times out)
        took += [await serve() for _ in range(6)]
    # Only the decisions that found Redis frozen (the first, and perhaps the breaker's retry) waited its timeout.
    waited = [t for t in took if t >= 0.9 * FROZEN_WAIT]
    assert 1 <= len(waited) <= 2 and max(took) < 2 * FROZEN_WAIT, took  # (none waited twice)
    assert len(outage_lines(caplog)) == 1, outage_lines(caplog)  # once per outage, not per request

    clock.advance(0.5)  # past the breaker: the next decision goes to Redis, and the meantime is merged
    await serve()
    await written(pool)  # (the merge is written in the background)
    await pool.shared.shared.aclose()  # (and the last counts when the worker stops)
    r = connect_sync(redis_server.url)
    names = pool.shared.names
    fps = pool.shared._fps
    rest, (seconds, micros) = r.zscore(names.rests, fps[0]), r.time()
    assert rest is not None and 27 < rest / 1000 - (seconds + micros / 1e6) <= 30  # the rest learned locally, now shared
    requests = sum(int(r.hget(names.usage(fp), "requests") or 0) for fp in fps)
    tokens = sum(int(r.hget(names.usage(fp), "tokens") or 0) for fp in fps)
    assert (requests, tokens) == (len(served), 10 * len(served))  # every count once: none lost, none doubled
    assert any("answers again" in r.getMessage() for r in caplog.records)
    r.close()


async def test_requests_that_come_while_redis_is_frozen_do_not_wait_for_it_beside_the_one_that_found_out(
        redis_server):
    # Requests come one every 60 ms for 3 s during a freeze: the first finds out (and one sent beside it, before the
    # link was silent long enough to tell), and when the breaker tries Redis again, one call probes while the
    # others decide locally at once. Without that, every request sent while a call waited on the frozen link
    # waited too, at the freeze and at each retry.
    redis_server.flush()
    pool, other = worker(redis_server.url, breaker_seconds=1.0), worker(redis_server.url, breaker_seconds=1.0)
    served: list[float] = []

    async def serve(on: KeyPool) -> float:
        return await served_by(on, served)

    await serve(pool), await serve(other)  # (both have reached Redis: the fingerprints' secret is known)
    with redis_server.frozen():
        loop = asyncio.get_running_loop()
        start = loop.time()
        requests = []
        for n in range(50):
            await asyncio.sleep(max(0.0, start + 0.06 * n - loop.time()))
            requests.append(asyncio.ensure_future(serve(pool)))
        took = await asyncio.gather(*requests)
    waited = [t for t in took if t >= 0.5 * FROZEN_WAIT]
    assert len(waited) <= 4, sorted(took, reverse=True)[:20]
    # Redis back: each worker reaches it again, and what they served meanwhile is counted there once.
    async def reached(each: KeyPool) -> bool:
        await serve(each)
        return not each.shared.shared.breaker.broken

    for each in (pool, other):
        await eventually(lambda each=each: reached(each), what="a request that reaches Redis again")
    for each in (pool, other):
        await written(each)
        await each.shared.shared.aclose()
    r = connect_sync(redis_server.url)
    names = pool.shared.names
    assert sum(int(r.hget(names.usage(fp), "requests") or 0) for fp in pool.shared._fps) == len(served)
    r.close()


def nowhere(kind: str, tmp_path) -> str:
    """A Redis URL where nothing listens: a free loopback port, or a Unix socket's path with no socket."""
    return f"redis://127.0.0.1:{free_port()}/0" if kind == "tcp" else f"unix://{tmp_path}/redis.sock?db=0"


@pytest.mark.parametrize("kind", ["tcp", "unix"])
async def test_no_redis_at_all_still_serves_every_pick_at_once(caplog, kind, tmp_path):
    caplog.set_level(logging.INFO, logger="rotator")
    pool = worker(nowhere(kind, tmp_path))  # nothing listens there
    began = time.monotonic()
    picked = [(await pool.take()).key for _ in range(6)]
    assert picked == KEYS * 2 and time.monotonic() - began < FROZEN_WAIT  # (none waited for Redis)
    assert len(outage_lines(caplog)) == 1


async def busy(seconds: float, stretch: float) -> None:
    """The event loop held in `stretch`-long blocks for `seconds`, as a worker's first TLS handshakes and the
    modules it loads on first use hold it while it starts."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(stretch)
        await asyncio.sleep(0)


@pytest.mark.parametrize("server", ["redis_server", "redis_unix_server"])
async def test_a_worker_whose_loop_is_busy_as_it_starts_still_decides_with_the_others(server, request, caplog):
    # (over a Unix socket, redis-py reports a timeout in a connection's set-up as a ConnectionError: still a timeout)
    redis_server = request.getfixturevalue(server)
    caplog.set_level(logging.INFO, logger="rotator")
    redis_server.flush()
    warm = worker(redis_server.url)
    assert (await warm.take()).key == KEYS[0]
    state = SharedState.from_url(redis_server.url)  # (the 0.25 s timeout, which each block of the loop outlasts)
    starting = KeyPool(KEYS, "round-robin", name="openai")
    starting.shared = state.pool(starting)
    state.start()
    held = asyncio.ensure_future(busy(0.8, stretch=2 * TIMEOUT))
    await asyncio.sleep(0)
    try:
        assert (await starting.take()).key == KEYS[1]  # the turn both workers share, not its own first
    finally:
        await held
        await state.aclose()
    assert outage_lines(caplog) == []


@pytest.mark.parametrize("kind", ["tcp", "unix"])
async def test_a_worker_that_finds_no_redis_as_it_starts_decides_alone_at_once(caplog, kind, tmp_path):
    caplog.set_level(logging.INFO, logger="rotator")
    state = SharedState.from_url(nowhere(kind, tmp_path))  # refused: no answer to wait for
    pool = KeyPool(KEYS, "round-robin", name="openai")
    pool.shared = state.pool(pool)
    began = time.monotonic()
    state.start()
    picked = [(await pool.take()).key for _ in range(3)]
    await state.aclose()
    assert picked == KEYS and time.monotonic() - began < START_SECONDS / 2
    assert len(outage_lines(caplog)) == 1


@pytest.fixture(params=["fakeredis", "redis-server"])
def sync_client(request):
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        return lambda: fakeredis.FakeRedis(server=server)
    redis_server = request.getfixturevalue("redis_server")
    redis_server.flush()
    return lambda: connect_sync(redis_server.url)


def store(client, max_bytes: int = 1 << 20) -> RedisStore:
    return RedisStore(client, MemoryStore(100, max_bytes))


def test_the_conversation_store_is_shared_by_workers_and_keeps_each_entry_for_its_ttl(sync_client):
    a, b = store(sync_client()), store(sync_client())
    a.put("resp_1", b"turn one", ttl=30)
    a.put("short", b"gone soon", ttl=0.2)
    assert b.get("resp_1") == b"turn one" and b.get("short") == b"gone soon"
    assert a.local.get("resp_1") == b"turn one"  # in Redis, and in the worker that wrote it
    wait_until(lambda: b.get("short") is None, 0.2 + MARGIN, "the short entry expired")
    b.delete("resp_1")
    assert store(sync_client()).get("resp_1") is None  # (a worker hears of it on the feed: test_state_redis_store.py)


def test_an_entry_larger_than_the_bound_is_not_kept(sync_client):
    a = store(sync_client(), max_bytes=64)
    a.put("big", b"x" * 100, ttl=30)
    assert a.get("big") is None


def test_a_frozen_redis_leaves_the_conversation_store_to_the_worker_at_once(redis_server, caplog):
    caplog.set_level(logging.INFO, logger="rotator")
    redis_server.flush()
    a = store(connect_sync(redis_server.url, timeout=FROZEN_WAIT))
    with redis_server.frozen():
        a.put("resp_2", b"kept here meanwhile", ttl=30)  # (it found Redis frozen, and waited its timeout)
        began = time.monotonic()
        assert a.get("resp_2") == b"kept here meanwhile"
        assert time.monotonic() - began < FROZEN_WAIT  # the get did not wait
    assert len(outage_lines(caplog)) == 1


def test_the_log_names_the_redis_server_without_its_password():
    assert where("rediss://:hunter2-secret@cache.internal:6380/2") == "rediss://cache.internal:6380/2"
    assert where("redis://127.0.0.1") == "redis://127.0.0.1:6379/0"


def test_a_responses_conversation_recorded_by_one_worker_continues_on_another(redis_server):
    redis_server.flush()
    one, other = ConversationState(), ConversationState()
    one.share(redis_server.url)
    other.share(redis_server.url)
    first = {"model": "gpt-4o", "input": "What is the weather in Paris?"}
    answer = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "18C."}]}]
    stored = protocols.registered("openai_responses").continuity
    one.continuity.record(stored, "resp_1", first, answer, "openai", native=False)
    follow_up = {"model": "gpt-4o", "previous_response_id": "resp_1", "input": "And tomorrow?"}
    expanded = other.continuity.expand(stored, follow_up, "anthropic", resolves=False).body
    assert "previous_response_id" not in expanded
    assert [item.get("content") for item in expanded["input"]][1] == answer[0]["content"]
    one.share(None)  # back to this process only
    assert one.continuity.store.get("anything") is None and not isinstance(one.continuity.store, RedisStore)


@pytest.mark.parametrize("kind", ["tcp", "unix"])
async def test_a_redis_that_is_slow_to_answer_a_new_connection_is_a_timeout_and_one_refused_is_not(kind, tmp_path):
    # (A starting worker tries a first contact that timed out again for START_SECONDS, a refused one not at all.
    # Over a Unix socket, redis-py reports a set-up that timed out as a ConnectionError "Timeout reading from".)
    silent = socket.socket(socket.AF_INET if kind == "tcp" else socket.AF_UNIX)
    silent.bind(("127.0.0.1", 0) if kind == "tcp" else str(tmp_path / "silent.sock"))
    silent.listen()  # (accepts, never answers)
    slow = f"redis://127.0.0.1:{silent.getsockname()[1]}/0" if kind == "tcp" else f"unix://{tmp_path}/silent.sock?db=0"
    errors = []
    for url in (slow, nowhere(kind, tmp_path)):
        client = connect(url, timeout=0.2)
        with pytest.raises(ERRORS) as raised:
            await client.get("x")
        errors.append(raised.value)
        await client.aclose()
    silent.close()
    assert [timed_out(e) for e in errors] == [True, False], errors
