"""`scripts/cluster` outlives the Redis it started: killed under 100 streams across two workers, Redis is started
again, the streams in flight end as the vendor ended them, later connections are served, and once Redis is back
the workers share their counts again (docs/scaling.md, "Several workers")."""

from __future__ import annotations

import os
import re
import signal
import threading

import openai
import pytest

from tests.support.cluster import Cluster, running
from tests.support.fake_vendor import TEXT, Fault
from tests.support.harness import default_config
from tests.support.timing import MARGIN, PATIENCE, wait_until

pytestmark = pytest.mark.e2e

STREAMS = 100  # 50 on each worker
INTERVAL = 0.25  # seconds between two events of each stream: a stream lasts a few seconds


def stream(cluster: Cluster, worker: int, started: threading.Semaphore) -> tuple[str, str | None]:
    """One streamed chat answer through `worker`: its text and its finish reason (None: it ended without one)."""
    text, finish = "", None
    with cluster.client(worker, timeout=60) as http_client:
        client = openai.OpenAI(api_key="sk-client-placeholder", http_client=http_client, max_retries=0)
        chunks = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                                stream=True)
        for n, chunk in enumerate(chunks):
            if n == 0:
                started.release()
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
    return text, finish


def requests_last_hour(cluster: Cluster, worker: int) -> int:
    with cluster.client(worker) as http_client:
        page = http_client.get("http://rotator.status/?format=json").json()
    [pool] = [p["pool"] for p in page["providers"] if p["name"] == "openai"]
    return sum(key["last_hour"]["requests"] for key in pool["keys"])


def ask_anew(cluster: Cluster) -> str:
    with cluster.client() as http_client:
        client = openai.OpenAI(api_key="sk-client-placeholder", http_client=http_client, max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content or ""


@pytest.fixture
def cluster(fake_vendor, tmp_path, request):
    request.node._clusters = [Cluster(tmp_path, default_config(fake_vendor.url))]
    started = request.node._clusters[0].start()
    yield started
    started.stop()


def test_a_redis_killed_under_load_is_started_again_and_no_stream_or_later_connection_is_lost(cluster, fake_vendor):
    assert "redis" in cluster.pids, cluster.output()
    fake_vendor.always(Fault().slow(INTERVAL))
    started = threading.Semaphore(0)
    results: list[tuple[str, str | None] | BaseException] = []

    def run(worker: int) -> None:
        try:
            results.append(stream(cluster, worker, started))
        except BaseException as e:  # (kept for the assertion: a stream cut shows as its exception)
            results.append(e)

    threads = [threading.Thread(target=run, args=(1 + n % 2,), daemon=True) for n in range(STREAMS)]
    for thread in threads:
        thread.start()
    for _ in range(STREAMS):  # every stream has its first event: all of them are in flight
        assert started.acquire(timeout=PATIENCE + MARGIN), f"{len(results)} ended before all began: {results[:3]}"
    os.kill(cluster.pids["redis"], signal.SIGKILL)

    for thread in threads:
        thread.join(60)
    assert len(results) == STREAMS
    assert [r for r in results if not isinstance(r, tuple) or r != (TEXT, "stop")] == []  # each ended as sent

    again = cluster.wait_output("redis-server started again (pid ", timeout=PATIENCE)
    restarted = int(re.findall(r"redis-server started again \(pid (\d+)\)", again)[-1])
    assert restarted != cluster.pids["redis"] and running(restarted)
    assert all(running(pid) for name, pid in cluster.pids.items() if name != "redis")  # nothing else was stopped
    fake_vendor.always(None)
    assert all(ask_anew(cluster) == TEXT for _ in range(4))  # later connections, through HAProxy

    # Back on the restarted Redis, the two workers show one count again: what each served, merged.
    def agreed() -> int:
        counts = {requests_last_hour(cluster, worker) for worker in (1, 2)}
        return counts.pop() if len(counts) == 1 else 0

    assert wait_until(agreed, 30.0, "both workers show the same count") >= STREAMS
    assert "Traceback" not in cluster.output()
