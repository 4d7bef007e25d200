"""state.redis end to end through a real `mitmdump -s addons/rotator.py` and the OpenAI SDK: a 429 with retry-after
rests the key in Redis, where a restarted worker still finds it (its own state file is off), the requests and
tokens are counted there, and no pooled key appears in Redis or in the log."""

from __future__ import annotations

import time

import openai
import pytest
import redis

from tests.support.fake_vendor import Fault
from tests.support.harness import POOL_KEYS
from tests.support.redis_server import OUTAGE, RedisServer

pytestmark = pytest.mark.e2e


def ask(n: int = 1) -> None:
    with openai.OpenAI(max_retries=0) as client:  # (closed: the worker is stopped with no connection open)
        for _ in range(n):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def stored_text(server: RedisServer) -> str:
    r = redis.Redis.from_url(server.url)
    out = []
    for name in r.scan_iter("*"):
        kind = r.type(name).decode()
        value = {"string": r.get, "hash": r.hgetall, "zset": lambda n: r.zrange(n, 0, -1, withscores=True)}[kind](name)
        out.append(f"{name!r} {value!r}")
    r.close()
    return "\n".join(out)


@pytest.mark.parametrize("server", ["redis_server", "redis_unix_server"])  # (over TCP, and a unix:// URL)
def test_a_rest_and_the_counts_live_in_redis_and_a_restarted_worker_keeps_them(fake_vendor, rotator, server, request):
    redis_server = request.getfixturevalue(server)
    first_key, *others = POOL_KEYS["openai"]
    state = {"redis": redis_server.url, "path": ""}  # (no state file: what survives is in Redis)

    def two_workers_one_after_the_other():
        redis_server.flush()
        fake_vendor.reset()
        fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}), key=first_key)
        proxy = rotator(fresh=True, state=state)
        ask(3)
        before = fake_vendor.keys()
        proxy.proc.stop()  # the worker stops (its last counts are written)

        fake_vendor.reset()
        fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}), key=first_key)
        again = rotator(fresh=True, state=state)
        ask(4)
        again.proc.stop()
        return proxy, again, before, fake_vendor.keys()

    for _ in range(3):  # (judged on a run in which both workers heard Redis: tests/support/redis_server.py's OUTAGE)
        proxy, again, before, used = two_workers_one_after_the_other()
        if OUTAGE not in proxy.full_log + again.full_log:
            break
    else:
        raise AssertionError("Redis did not answer the workers through any of three runs")
    assert before[0] == first_key and first_key not in before[1:]
    assert len(used) == 4 and first_key not in used  # the rest outlived the worker

    text = stored_text(redis_server)
    assert "rot:{openai}:rest" in text and "rot:{openai}:use:" in text
    r = redis.Redis.from_url(redis_server.url)
    totals = [r.hgetall(name) for name in r.scan_iter("rot:{openai}:use:*") if name.count(b":") == 3]
    r.close()
    assert sum(int(t[b"requests"]) for t in totals) == 8  # 4 + 4 attempts (the 429s included), each counted once
    assert sum(int(t.get(b"tokens", 0)) for t in totals) > 0
    for key in POOL_KEYS["openai"]:
        assert key not in text
        assert key not in proxy.full_log and key not in again.full_log
    assert f"shared through Redis at {redis_server.url}\n" in proxy.full_log
    assert "Traceback" not in proxy.full_log + again.full_log, again.full_log[-3000:]


def test_a_worker_whose_redis_is_gone_serves_every_request_on_its_own_state(fake_vendor, rotator):
    gone = RedisServer().start()
    url = gone.url
    gone.stop()
    proxy = rotator(fresh=True, state={"redis": url, "path": ""})
    began = time.monotonic()
    ask(4)
    assert time.monotonic() - began < 10
    assert fake_vendor.keys()[:3] == POOL_KEYS["openai"]  # rotation goes on, locally
    assert proxy.log.count("Redis did not answer") == 1
