"""Re-checks of long rests with `state.redis` (rewrite/state/redis/scripts.py): the pick script claims a due re-check
in the same step as it leases the key, so two workers never send two re-checks of one key at a time; a served
re-check ends the rest for every worker, a refused one renews it and moves the next re-check out."""

from __future__ import annotations

import asyncio
import json

import fakeredis

from rewrite.pool import KeyPool
from rewrite.pool.report import describe
from rewrite.state.redis.names import PoolNames
from rewrite.state.redis.shared import SharedState
from tests.support.redis_server import written
from tests.support.timing import eventually
from tests.support.vendor_errors import failure

KEYS = ["sk-recheck-alpha-0001", "sk-recheck-bravo-0002"]
RECHECK = 0.5  # seconds (the Redis server's clock is real time)
QUOTA = json.dumps({"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}).encode()


def worker(where) -> KeyPool:
    """One worker's pool over the shared state, its own client (a long timeout: what is tested is what the workers
    decide together)."""
    if isinstance(where, fakeredis.FakeServer):
        state = SharedState(fakeredis.FakeAsyncRedis(server=where), timeout=5.0)
    else:
        state = SharedState.from_url(where, socket_timeout=5.0, timeout=5.0)
    pool = KeyPool(KEYS, name="openai", recheck_after=RECHECK)
    pool.shared = state.pool(pool)
    return pool


async def served(pool: KeyPool) -> tuple[str | None, str]:
    pick = await pool.take(model="gpt-4o")
    if pick.key is not None:
        pool.lease(pick.key, "gpt-4o", pick.held).release()
    return pick.key, pick.recheck


async def test_two_workers_make_one_recheck_at_a_time_and_a_served_one_ends_the_rest_for_both(redis_where):
    a, b = worker(redis_where), worker(redis_where)
    await served(a)  # (connected: fingerprints known)
    a.rests.failed(KEYS[0], failure(429, (), QUOTA), "gpt-4o")
    await written(a)
    assert [(await served(w))[0] for w in (a, b, a, b)] == [KEYS[1]] * 4

    async def rechecked() -> tuple[KeyPool, str] | None:
        for w in (a, b):
            key, said = await served(w)
            if key == KEYS[0]:
                return w, said
        return None

    checker, said = await eventually(rechecked, what="a re-check once recheck_after has passed")
    assert said.startswith("re-check of a rest since ") and said.endswith("(insufficient_quota)")
    # While it is in flight, every other pick of either worker keeps avoiding the key.
    assert [(await served(w))[0] for w in (a, b) * 4] == [KEYS[1]] * 8
    checker.states[0].rests.clear()  # (as a worker that has not read the rest from Redis yet: only Redis holds it)
    checker.rests.succeeded(KEYS[0], "gpt-4o")
    await written(checker)
    assert await a.shared.shared.client.zcard(PoolNames("openai").rests) == 0
    for w in (a, b):  # (each worker's own view, the status page's, learns it within a second)
        await w.shared.shared.observe()
        assert describe(w)["keys"][0]["state"] == "ready"
    assert {(await served(w))[0] for w in (a, b) * 2} == set(KEYS)
    await a.shared.shared.aclose()
    await b.shared.shared.aclose()


async def test_a_refused_recheck_renews_the_rest_and_the_next_comes_twice_as_late(redis_where):
    a, b = worker(redis_where), worker(redis_where)
    await served(a)
    a.rests.failed(KEYS[0], failure(429, (), QUOTA), "gpt-4o")
    await written(a)
    loop_time = asyncio.get_running_loop().time
    times = []
    for _ in range(2):
        async def rechecked() -> KeyPool | None:
            for w in (a, b):
                if (await served(w))[0] == KEYS[0]:
                    return w
            return None

        checker = await eventually(rechecked, what="the next re-check")
        times.append(loop_time())
        checker.rests.failed(KEYS[0], failure(429, (), QUOTA), "gpt-4o")  # (still out of quota)
        await written(checker)
    names = PoolNames("openai")
    [(_, until)] = await a.shared.shared.client.zrange(names.rests, 0, -1, withscores=True)
    seconds, micros = await a.shared.shared.client.time()
    assert until / 1000 - (seconds + micros / 1e6) > 3500  # (renewed: an hour from the refusal)
    # The first came after about 0.5 s, the second about 1 s after it (twice the wait, jittered by at most a fifth).
    assert times[1] - times[0] >= 2 * RECHECK * 0.8 - 0.05
    await a.shared.shared.aclose()
    await b.shared.shared.aclose()


async def test_a_key_out_after_401_is_not_rechecked(redis_where):
    a = worker(redis_where)
    await served(a)
    a.rests.failed(KEYS[0], failure(429, (), QUOTA), "gpt-4o")
    a.rests.failed(KEYS[0], failure(401, (), b'{"error": {"message": "bad key"}}'), "gpt-4o")
    await written(a)
    await asyncio.sleep(RECHECK * 2)  # (past when its re-check would have been due: absence is only seen by waiting)
    assert [(await served(a))[0] for _ in range(6)] == [KEYS[1]] * 6
    await a.shared.shared.aclose()
