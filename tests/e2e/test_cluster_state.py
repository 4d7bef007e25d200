"""Two workers of `scripts/cluster` behave as one through the Redis it starts, end to end with real TLS and the
official SDK: a rest one worker learns keeps the key out of the other's rotation, fair-cycle and max_concurrent hold
across both, a Responses conversation moves between them, a frozen Redis stops no request, a dead worker's lease
frees itself, a restart loses no rest or usage count, and a conversation stays on one key whichever worker takes
each turn. Each test talks to one worker or the other directly (its
loopback port), so which worker serves a request is the test's choice, not HAProxy's."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import httpx
import openai
import pytest

from rewrite.state.redis.connection import BREAKER_SECONDS
from rewrite.state.redis.shared import LEASE_SECONDS
from tests.support.cluster import Cluster
from tests.support.fake_vendor import Fault
from tests.support.harness import POOL_KEYS, default_config, merge
from tests.support.multi_turn import SYSTEM, Conversation
from tests.support.redis_server import BACK, OUTAGE
from tests.support.timing import MARGIN, wait_until

pytestmark = pytest.mark.e2e

KEYS = ["sk-pool-1", "sk-pool-2", "sk-pool-3"]
FIRST_TOKEN_TIMEOUT = 2.0


def openai_client(cluster: Cluster, worker: int) -> tuple[openai.OpenAI, httpx.Client]:
    http_client = cluster.client(worker, timeout=LEASE_SECONDS + 30)  # (a request may wait for a lease to expire)
    return openai.OpenAI(api_key="sk-client-placeholder", http_client=http_client, max_retries=0), http_client


def ask(cluster: Cluster, worker: int, **extra) -> str:
    client, http_client = openai_client(cluster, worker)
    with http_client:
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                                **extra)
    return answer.choices[0].message.content or ""


def outages(cluster: Cluster) -> list[int]:
    """Each worker's outages of Redis so far, and how many of them ended, as its log says."""
    logs = [cluster.worker_log(worker) for worker in (1, 2)]
    return [log.count(OUTAGE) for log in logs] + [log.count(BACK) for log in logs]


def while_redis_answers(cluster: Cluster, scenario):
    """`scenario`'s result, from a run in which both workers heard Redis throughout (tests/support/redis_server.py's
    OUTAGE says why a run may not)."""
    for _ in range(3):
        wait_until(lambda: (seen := outages(cluster))[:2] == seen[2:], 2 * BREAKER_SECONDS + MARGIN,
                   "both workers hear Redis")
        before = outages(cluster)
        try:
            result = scenario()
        except Exception:
            if outages(cluster) == before:
                raise
            continue  # (what failed is what a worker deciding alone does)
        if outages(cluster) == before:
            return result
    raise AssertionError(f"Redis did not answer the workers through any of three runs: {outages(cluster)}")


def hold_a_stream(cluster: Cluster, worker: int) -> None:
    """A streamed request that reads its first event and then waits for the rest (until its worker dies)."""
    client, http_client = openai_client(cluster, worker)
    with contextlib.suppress(Exception), http_client:
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                                stream=True):
            pass


def requests_last_hour(cluster: Cluster, worker: int) -> int:
    """The openai pool's requests in the last hour, as one worker's status page shows them."""
    with cluster.client(worker) as http_client:
        page = http_client.get("http://rotator.status/?format=json").json()
    [pool] = [p["pool"] for p in page["providers"] if p["name"] == "openai"]
    return sum(key["last_hour"]["requests"] for key in pool["keys"])


def resting_on(cluster: Cluster, worker: int) -> int:
    """How many of the openai pool's keys one worker's status page shows resting."""
    with cluster.client(worker) as http_client:
        page = http_client.get("http://rotator.status/?format=json").json()
    [pool] = [p["pool"] for p in page["providers"] if p["name"] == "openai"]
    return sum(1 for key in pool["keys"] if key["resting"])


def shown_within(cluster: Cluster, worker: int, count: int, timeout: float = 10.0) -> int:
    """The count the worker's status page shows once it reaches `count` (counts go to Redis about once a second)."""
    deadline = time.monotonic() + timeout
    while (shown := requests_last_hour(cluster, worker)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return shown


def keys_since(fake_vendor, mark: int) -> list[str | None]:
    return [r.credential for r in fake_vendor.requests[mark:]]


def start(fake_vendor, tmp_path, openai_provider: dict | None = None, **sections) -> Cluster:
    config = merge(default_config(fake_vendor.url), {"providers": {"openai": openai_provider or {}}, **sections})
    return Cluster(tmp_path, config).start()


@pytest.fixture
def cluster_of(fake_vendor, tmp_path, request):
    started: list[Cluster] = []
    request.node._clusters = started

    def make(openai_provider: dict | None = None, **sections) -> Cluster:
        started.append(start(fake_vendor, tmp_path, openai_provider, **sections))
        assert "redis" in started[-1].pids, started[-1].output()
        # (the Redis started here is on a Unix socket, which each worker reaches: tests/test_cluster_services.py)
        assert "shared through Redis at unix://" in started[-1].worker_log(1)
        return started[-1]

    yield make
    for cluster in started:
        cluster.stop()


def test_a_rest_one_worker_learns_keeps_that_key_out_of_the_others_rotation(fake_vendor, cluster_of):
    cluster = cluster_of()
    fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}), key="sk-pool-1")
    for _ in KEYS:  # worker 1 meets sk-pool-1's 429 (and answers from another key)
        assert ask(cluster, 1)
        if "sk-pool-1" in keys_since(fake_vendor, 0):
            break
    assert "sk-pool-1" in keys_since(fake_vendor, 0)


    def six_asks() -> list[str]:
        mark = len(fake_vendor.requests)
        for _ in range(6):
            assert ask(cluster, 2)
        return keys_since(fake_vendor, mark)

    assert sorted(while_redis_answers(cluster, six_asks)) == ["sk-pool-2"] * 3 + ["sk-pool-3"] * 3


def test_fair_cycle_is_fair_across_both_workers(fake_vendor, cluster_of):
    cluster = cluster_of({"strategy": "fair-cycle"})

    def six_asks() -> list[str | None]:
        mark = len(fake_vendor.requests)
        for n in range(6):
            assert ask(cluster, 1 + n % 2)
        return keys_since(fake_vendor, mark)

    used = while_redis_answers(cluster, six_asks)
    assert sorted(used[:3]) == KEYS and sorted(used[3:]) == KEYS, used  # every key once per cycle, whoever asked


def test_max_concurrent_holds_across_both_workers(fake_vendor, cluster_of):
    cluster = cluster_of({"keys": [{"key": key, "max_concurrent": 1} for key in KEYS[:2]]})
    fake_vendor.always(Fault.slow(0.3))  # (each stream takes a couple of seconds: both are open at once)

    def both_at_once() -> tuple[list[str], list[str]]:
        mark, answers = len(fake_vendor.requests), []
        threads = [threading.Thread(target=lambda w=w: answers.append(ask(cluster, w))) for w in (1, 2)]
        for thread in threads:
            thread.start()
            fake_vendor.wait_for(len(fake_vendor.requests) + 1, done=False)
        for thread in threads:
            thread.join(60)
        return answers, keys_since(fake_vendor, mark)

    answers, keys = while_redis_answers(cluster, both_at_once)
    assert len(answers) == 2 and all(answers)
    assert sorted(keys) == KEYS[:2]  # one stream per key, never two on one


def test_a_frozen_redis_stops_no_request_and_the_workers_converge_after(fake_vendor, cluster_of):
    cluster = cluster_of(streaming={"first_token_timeout": FIRST_TOKEN_TIMEOUT})
    assert ask(cluster, 1) and ask(cluster, 2)  # (both have met Redis)

    def answered_in_time(worker: int) -> None:
        began = time.monotonic()
        assert ask(cluster, worker)
        assert time.monotonic() - began < MARGIN  # (not held by Redis: the client would wait LEASE_SECONDS + 30 s)

    os.kill(cluster.pids["redis"], signal.SIGSTOP)
    try:
        for worker in (1, 2, 1, 2):
            answered_in_time(worker)
        fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}), key="sk-pool-1")
        mark = len(fake_vendor.requests)
        for _ in KEYS:  # only worker 1 meets the 429, while Redis cannot hear of it
            answered_in_time(1)
        assert "sk-pool-1" in keys_since(fake_vendor, mark)
    finally:
        os.kill(cluster.pids["redis"], signal.SIGCONT)
    # (the breaker tries Redis again within 5 s: worker 1's rest goes there, worker 2 reads it)
    wait_until(lambda: resting_on(cluster, 2), 2 * BREAKER_SECONDS + MARGIN, "worker 2 shows worker 1's rest")
    mark = len(fake_vendor.requests)
    for _ in range(4):
        assert ask(cluster, 2)
    assert "sk-pool-1" not in keys_since(fake_vendor, mark)
    assert "Traceback" not in cluster.worker_log(1) + cluster.worker_log(2)


def test_a_restart_loses_no_rest_and_no_usage_count(fake_vendor, cluster_of):
    cluster = cluster_of()
    fake_vendor.always(Fault.status(429, headers={"retry-after": "60"}), key="sk-pool-1")
    for _ in KEYS:
        assert ask(cluster, 1)
    made = len(fake_vendor.requests)
    assert shown_within(cluster, 2, made) == made  # worker 2 shows what worker 1 did
    assert cluster.stop() == 0

    again = cluster_of()
    assert shown_within(again, 2, made) == made  # (from Redis: worker 2 never served them)

    def four_asks() -> list[str | None]:
        mark = len(fake_vendor.requests)
        for worker in (1, 2, 1, 2):
            assert ask(again, worker)
        return keys_since(fake_vendor, mark)

    assert "sk-pool-1" not in while_redis_answers(again, four_asks)

QUESTION, FOLLOW_UP = "What is the weather in Paris?", "And tomorrow?"


def test_a_responses_conversation_begun_on_one_worker_continues_on_the_other_through_a_route(fake_vendor, cluster_of):
    cluster = cluster_of(routes=[{"models": ["responses-via-claude"], "targets": ["anthropic/claude-sonnet-4-5"]}])

    def two_turns():
        mark = len(fake_vendor.requests)
        client, http_client = openai_client(cluster, 1)
        with http_client:
            first = client.responses.create(model="responses-via-claude", input=QUESTION)
        client, http_client = openai_client(cluster, 2)
        with http_client:
            second = client.responses.create(model="responses-via-claude", input=FOLLOW_UP,
                                             previous_response_id=first.id)
        return first, second, fake_vendor.wait_for(mark + 2)[mark:]

    first, second, [_, turn_two] = while_redis_answers(cluster, two_turns)
    assert second.output_text
    assert turn_two.protocol == "anthropic"
    sent = turn_two.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert QUESTION in str(sent[0]["content"]) and first.output_text in str(sent[1]["content"])
    assert FOLLOW_UP in str(sent[2]["content"])


def test_a_worker_killed_mid_stream_frees_its_lease_within_the_lease_time(fake_vendor, cluster_of):
    cluster = cluster_of({"keys": [{"key": "sk-pool-1", "max_concurrent": 1}]},
                         streaming={"first_token_timeout": LEASE_SECONDS + 20, "first_token_retries": 0})
    fake_vendor.script(Fault.stall_after(1, seconds=120), key="sk-pool-1")  # worker 1's stream holds the lease
    threading.Thread(target=hold_a_stream, args=(cluster, 1), daemon=True).start()
    fake_vendor.wait_for(1, done=False)
    os.kill(cluster.pids["worker-1"], signal.SIGKILL)

    killed = time.monotonic()
    # It waits for the dead worker's lease to expire. (A run in which worker 2 missed a reply from Redis served at once
    # from its own state, by design; the next run still finds the dead lease, which expires at the same time.)
    assert while_redis_answers(cluster, lambda: ask(cluster, 2))
    assert 5 <= time.monotonic() - killed < LEASE_SECONDS + MARGIN


def test_a_pool_one_worker_rested_whole_tells_the_other_workers_clients_how_long_to_wait(fake_vendor, cluster_of):
    cluster = cluster_of(streaming={"first_token_timeout": FIRST_TOKEN_TIMEOUT})
    fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}))
    with pytest.raises(openai.RateLimitError):  # worker 1 meets every key's 429 (the last is the vendor's own)
        ask(cluster, 1)
    assert sorted(keys_since(fake_vendor, 0)) == KEYS
    rested = time.monotonic()

    def refused(worker: int) -> tuple[openai.RateLimitError, int]:
        mark = len(fake_vendor.requests)
        with pytest.raises(openai.RateLimitError) as raised:
            ask(cluster, worker)
        return raised.value, len(fake_vendor.requests) - mark

    for worker in (2, 1):  # worker 2 never met a 429: it reads when the rests worker 1 set in Redis end
        error, sent = while_redis_answers(cluster, lambda w=worker: refused(w))
        assert "rate limited" in error.message
        left = 30 - (time.monotonic() - rested)
        assert left - 2 <= int(error.response.headers["retry-after"]) <= 30, worker
        assert sent == 0  # nothing was sent upstream: every key rests


def test_a_conversation_stays_on_one_key_whichever_worker_takes_each_turn(fake_vendor, cluster_of):
    """Conversation affinity (issue 30) through Redis: the binding one worker makes is the other's, so each turn of a
    conversation goes to the key (the organization, whose prompt cache holds the turn before) that served the first,
    while another conversation is interleaved and the turns alternate between the workers."""
    cluster = cluster_of()
    fake_vendor.organizations({key: f"org-{i}" for i, key in enumerate(KEYS, 1)})
    runs = iter(range(3))

    def six_turns_each() -> dict[str, Conversation]:
        run = next(runs)  # (a run a worker decided alone in is asked again with conversations of its own)
        convos = {name: Conversation("chat", None, system=f"Conversation {name}{run}. " + SYSTEM * 2)
                  for name in ("a", "b")}
        for turn in range(6):
            for n, (name, convo) in enumerate(convos.items()):
                convo.client, http_client = openai_client(cluster, 1 + (turn + n) % 2)
                with http_client:
                    assert convo.ask(f"{name}, question {turn}: what does the next module do?").text
        for name in convos:
            calls = [c for c in fake_vendor.calls() if f"Conversation {name}{run}." in c.body["messages"][0]["content"]]
            assert len({c.credential for c in calls}) == 1, [c.credential for c in calls]
        return convos

    for convo in while_redis_answers(cluster, six_turns_each).values():
        assert [t.cache_read for t in convo.turns[1:]] == [t.input for t in convo.turns[:-1]]


def test_a_gemini_cache_made_through_one_worker_is_used_on_its_key_through_the_other(fake_vendor, cluster_of):
    """A Gemini explicit cache made through one worker is bound in Redis to the key (the project) that made it:
    generateContent calls naming it through either worker go there, one-shot calls rotating in between, and its
    deletion through the other worker too."""
    cluster = cluster_of()
    fake_vendor.organizations({key: f"project-{i}" for i, key in enumerate(POOL_KEYS["gemini"], 1)})

    def gemini(worker: int, method: str, path: str, body: dict | None = None) -> httpx.Response:
        with cluster.client(worker) as http_client:
            return http_client.request(method, f"https://generativelanguage.googleapis.com/v1beta/{path}", json=body,
                                       headers={"x-goog-api-key": "client-placeholder"})

    def made_used_and_deleted() -> tuple[str, int]:
        mark = len(fake_vendor.requests)
        made = gemini(1, "POST", "cachedContents", {"model": "models/gemini-2.5-flash", "ttl": "600s",
                                                    "systemInstruction": {"parts": [{"text": SYSTEM * 2}]}})
        name = made.json()["name"]
        for turn in range(4):
            for cached in (None, name):
                asked = {"contents": [{"role": "user", "parts": [{"text": f"question {turn}"}]}]}
                asked.update({"cachedContent": cached} if cached else {})
                assert gemini(1 + turn % 2, "POST", "models/gemini-2.5-flash:generateContent", asked).status_code == 200
        assert gemini(2, "DELETE", name).status_code == 200
        return name, mark

    name, mark = while_redis_answers(cluster, made_used_and_deleted)  # (each run its own cache)
    on_cache = [r for r in fake_vendor.requests[mark:] if name in r.path or (r.body or {}).get("cachedContent") == name
                or r.protocol == "gemini-caches"]
    assert len(on_cache) == 6 and {r.status for r in on_cache} == {200}
    assert len({r.credential for r in on_cache}) == 1
    assert len({r.credential for r in fake_vendor.calls("gemini")}) == 2  # (the one-shot calls rotated)
