"""Several workers behind one proxy address, end to end: `scripts/cluster` starts real `mitmdump -s
addons/rotator.py` workers behind HAProxy, and the official SDK talks to them through it with real TLS. A worker or
the Redis it started that dies is started again (docs/scaling.md, "Several workers"): a Redis killed under 100
streams across both workers ends none of them, later connections are served, and the workers share again after."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time

import httpx
import openai
import pytest

from tests.support import cluster as cluster_support
from tests.support.cluster import Cluster, running, started_at
from tests.support.fake_vendor import TEXT, Fault
from tests.support.harness import POOL_KEYS, default_config, free_port
from tests.support.timing import MARGIN, PATIENCE, wait_until

pytestmark = pytest.mark.e2e

CHAT = "/v1/chat/completions"


def ask(http_client: httpx.Client) -> str:
    client = openai.OpenAI(api_key="sk-client-placeholder", http_client=http_client, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content or ""


def ask_anew(cluster: Cluster) -> str:
    """One request on a connection of its own (HAProxy balances connections, not requests)."""
    with cluster.client() as http_client:
        return ask(http_client)


def served(cluster: Cluster, n: int) -> int:
    return cluster.worker_log(n).count(CHAT)


@pytest.fixture
def cluster(fake_vendor, tmp_path, request):
    request.node._clusters = [Cluster(tmp_path, default_config(fake_vendor.url))]
    started = request.node._clusters[0].start()
    yield started
    started.stop()


def test_two_workers_share_one_ca_and_split_the_connections(cluster, fake_vendor):
    workers = [pid for name, pid in cluster.pids.items() if name.startswith("worker-")]
    made = (cluster.workdir / "confdir" / "mitmproxy-ca.pem").stat().st_mtime
    assert len(workers) == 2 and made <= min(map(started_at, workers)) + 0.01  # before any worker: none makes its own
    clients = [cluster.client() for _ in range(4)]  # four connections, each kept open for two requests
    answers = [ask(http_client) for _ in range(2) for http_client in clients]
    for http_client in clients:
        http_client.close()

    assert all(answers), answers  # every certificate verified against the one CA the cluster named
    assert (served(cluster, 1), served(cluster, 2)) == (4, 4)  # leastconn: two open connections on each worker
    assert {r.credential for r in fake_vendor.requests} <= set(POOL_KEYS["openai"])
    out = cluster.output()
    assert f"proxy: http://127.0.0.1:{cluster.port}" in out
    assert f"with-rotator --proxy http://127.0.0.1:{cluster.port} --confdir {cluster.ca_cert.parent} CMD" in out, out
    assert "Traceback" not in out and not any(key in out for key in POOL_KEYS["openai"])


def test_a_worker_that_dies_is_reported_and_started_again_the_other_serves_and_stopping_stops_everything(cluster):
    os.kill(cluster.pids["worker-1"], signal.SIGKILL)
    report = cluster.wait_output("worker-1 (127.0.0.1:")
    assert "exited with code -9" in report

    assert all(ask_anew(cluster) for _ in range(4))  # (a connection HAProxy still gives worker-1 is sent to worker-2)
    port = cluster.ports[1]
    again = cluster.wait_output(f"worker-1 started again (127.0.0.1:{port}, pid ", timeout=30)
    restarted = int(re.findall(rf"worker-1 started again \(127\.0\.0\.1:{port}, pid (\d+)\)", again)[-1])
    assert restarted != cluster.pids["worker-1"] and running(restarted)
    with cluster.client(1) as http_client:  # on its own port again, as HAProxy knows it
        wait_until(lambda: b"rotator: ready." in (cluster.state / "logs" / "worker-1.log").read_bytes()
                   .rsplit(b"$ ", 1)[-1], 60)
        assert ask(http_client)

    started = {**cluster.pids, "worker-1": restarted}
    assert cluster.stop() == 0
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in started.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [name for name, pid in started.items() if running(pid)] == []
    assert "rotator cluster: stopped" in cluster.output()


def test_a_port_a_connection_holds_is_named_at_start_and_the_harness_draws_another(fake_vendor, tmp_path,
                                                                                     monkeypatch):
    """A client's connection holds its source port; HAProxy, binding it later, cannot. A port asked for is the
    user's: the start-up says which and stops. A port the harness drew (free_port(), seconds before HAProxy's bind)
    is drawn again: another test's connection may take it meanwhile."""
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as held:
        port = held.getsockname()[1]
        asked = Cluster(tmp_path / "asked", default_config(fake_vendor.url), port=port)
        try:
            with pytest.raises(AssertionError) as failed:
                asked.start()
        finally:
            asked.stop()
        assert "haproxy exited with code 1 while starting" in str(failed.value)
        assert f"Address already in use) for [127.0.0.1:{port}]" in str(failed.value)

        drawn = iter([port])
        monkeypatch.setattr(cluster_support, "free_port", lambda: next(drawn, None) or free_port())
        cluster = Cluster(tmp_path / "drawn", default_config(fake_vendor.url))
        try:
            cluster.start()
            assert cluster.port != port and ask_anew(cluster)
        finally:
            cluster.stop()


def test_key_pools_beyond_loopback_without_authentication_start_nothing(fake_vendor, tmp_path):
    cluster = Cluster(tmp_path, default_config(fake_vendor.url), args=("--listen-host", "0.0.0.0")).launch()
    assert cluster.process is not None and cluster.process.wait(60) == 1
    [line] = [line for line in cluster.output().splitlines() if line.startswith("rotator:")]
    assert "refusing to serve key pools on 0.0.0.0" in line and "--proxyauth" in line
    assert not (cluster.state / "logs").exists()  # no worker, HAProxy or Redis was started


def test_a_bad_config_stops_start_up_with_one_line(tmp_path):
    cluster = Cluster(tmp_path, {"streaming": {"first_token_timeout": -1}}).launch()
    assert cluster.process is not None and cluster.process.wait(60) == 1
    assert "streaming.first_token_timeout" in cluster.output()
    assert "Traceback" not in cluster.output()


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

    # Back on the restarted Redis, the two workers show one count again: every request either served, once.
    counts: list[int] = []

    def agreed() -> bool:
        counts[:] = [requests_last_hour(cluster, worker) for worker in (1, 2)]
        return counts == [STREAMS + 4] * 2

    assert wait_until(agreed, 30.0, "both workers show every request, once")
    assert "Traceback" not in cluster.output()
