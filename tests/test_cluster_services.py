"""scripts/cluster waits for each of its own children to listen: a port that another program took between
free_port() and the worker's bind is not mistaken for the worker, and the worker gets another port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from cluster_lib import main as cluster_main  # noqa: E402 - on the path just above
from cluster_lib.arguments import Plan  # noqa: E402
from cluster_lib.services import free_port, listens  # noqa: E402

LISTENER = "import socket, sys, time\ns = socket.create_server(('127.0.0.1', 0))\nprint(s.getsockname()[1], flush=True)\ntime.sleep(60)"


@pytest.fixture
def other_program():
    """A program of its own listening on a loopback port; yields (pid, port)."""
    proc = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.pid, int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def test_a_port_is_a_process_own_only_when_it_listens_there(other_program):
    pid, port = other_program
    with socket.create_server(("127.0.0.1", 0)) as mine:
        own = mine.getsockname()[1]
        assert listens(os.getpid(), own)
        assert listens(pid, port)
        assert not listens(os.getpid(), port)  # (a connection to it would succeed all the same)
        assert not listens(pid, own)
    assert not listens(os.getpid(), own)


def test_a_process_that_opens_and_closes_files_meanwhile_is_still_seen_listening():
    stop = threading.Event()

    def churn() -> None:  # (as a busy worker's connections come and go)
        while not stop.is_set():
            for _ in range(50):
                os.close(os.open(os.devnull, os.O_RDONLY))

    below = [os.open(os.devnull, os.O_RDONLY) for _ in range(64)]  # (the churn takes the numbers listed first)
    listener = socket.create_server(("127.0.0.1", 0))
    for fd in below:
        os.close(fd)
    with listener as mine:
        own = mine.getsockname()[1]
        churning = [threading.Thread(target=churn) for _ in range(2)]
        for thread in churning:
            thread.start()
        try:
            seen = [listens(os.getpid(), own) for _ in range(100)]
        finally:
            stop.set()
            for thread in churning:
                thread.join()
    assert all(seen), f"{seen.count(False)} of {len(seen)} looks missed it"


def test_a_worker_whose_port_was_taken_starts_on_another(other_program, tmp_path, monkeypatch):
    _, taken = other_program
    ports = iter([taken])
    monkeypatch.setattr(cluster_main, "free_port", lambda: next(ports, None) or free_port())
    cluster = cluster_main.Cluster(Plan(workers=1, state_dir=tmp_path, confdir=tmp_path / "confdir"))
    cluster.logs.mkdir(parents=True)
    cluster_main.make_ca(cluster.plan.confdir)
    try:
        cluster._start_workers(None, None)
        [(child, port)] = cluster.workers
        assert port != taken and listens(child.pid, port)
        log = (cluster.logs / "worker-1.log").read_text()
        assert f"127.0.0.1:{taken}" in log and "address already in use" in log.lower()  # the first try, reported
    finally:
        cluster.stop()


@pytest.mark.parametrize("depth", [0, 120])
def test_the_redis_started_here_is_on_a_unix_socket_only_its_user_reaches_even_from_a_deep_state_directory(
        tmp_path, depth):
    """Its socket is in the state directory, or, where that path would not fit a socket's (107 bytes), in a private
    directory of its own, removed at the stop. No TCP port: only this user (and its workers) reach it."""
    import redis

    from rewrite.config import Config

    state = tmp_path / ("d" * depth if depth else "") / "state"
    cluster = cluster_main.Cluster(Plan(workers=1, state_dir=state, confdir=tmp_path / "confdir"))
    cluster.logs.mkdir(parents=True)
    try:
        url = cluster._redis(Config())
        assert url is not None and url.startswith("unix://") and url.endswith("/redis.sock?db=0")
        path = Path(url[len("unix://"):-len("?db=0")])
        assert (path.parent == state / "redis") == (depth == 0)
        assert oct(path.stat().st_mode & 0o777) == "0o700" and len(os.fsencode(path)) <= 107
        client = redis.Redis.from_url(url)
        assert client.ping() and client.config_get("port") == {"port": "0"}
        client.close()
        assert url in cluster.redis_note and str(state / "redis") in cluster.redis_note
    finally:
        cluster.stop()
    assert cluster.socket_dir is None or not cluster.socket_dir.exists()
