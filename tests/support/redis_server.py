"""A real `redis-server` for tests: started on a free loopback port, without persistence, stopped by the run.

    def test_shared(redis_server):            # the session fixture (registered in tests/conftest.py)
        url = redis_server.url                # redis://127.0.0.1:<port>/0 (redis_unix_server: unix://...)
        redis_server.flush()                  # FLUSHALL: a test starts from an empty server
        with redis_server.frozen():           # SIGSTOP for the block (a hung Redis), SIGCONT after it
            ...
        with redis_server.monitored() as monitor:   # MONITOR: monitor.ran("HGETALL", "rot:clients") counts them

`RedisServer(...).start()` / `.stop()` for a server of one's own (a test that kills or restarts it). When the binary
is missing the fixture fails and says how to install it: a skip would hide a missing install step.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import fakeredis
import pytest

from rewrite.pool import KeyPool
from tests.support.harness import dies_with_test_run, free_port

# What a worker's log says when Redis stops answering it, and when it answers again. On a loaded machine a reply can
# come after Redis's 0.25 s timeout, and the worker then decides on its own state for BREAKER_SECONDS, by design
# (tests/test_state_redis_trouble.py): an end-to-end test of what workers share judges only a run without one.
OUTAGE, BACK = "state.redis: Redis did not answer", "state.redis: Redis answers again"

INSTALL_HINT = ("redis-server is not installed: `apt-get install redis-server` (scripts/setup --test does it as "
                "root), or put a redis-server on PATH")


class RedisServer:
    """`unix`: on a Unix socket only (no TCP port), as scripts/cluster starts its own."""

    def __init__(self, port: int | None = None, unix: bool = False) -> None:
        self.port = 0 if unix else port or free_port()
        self.process: subprocess.Popen | None = None
        self._dir = tempfile.mkdtemp(prefix="rotator-redis-")
        self.socket = os.path.join(self._dir, "redis.sock") if unix else None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0" if self.socket else f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(INSTALL_HINT, pytrace=False)
        where = ["--unixsocket", self.socket, "--unixsocketperm", "700"] if self.socket else ["--bind", "127.0.0.1"]
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), *where, "--save", "", "--appendonly", "no",
             "--dir", self._dir, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=dies_with_test_run())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode} at {self.url}")
            if self.command("PING") == "+PONG":
                return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer at {self.url} within {timeout:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # (a frozen server could not act on SIGTERM)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def command(self, *words: str) -> str:
        """One inline command over a plain socket (no client library): its first reply line, "" if none."""
        try:
            with self._connect() as s:
                s.sendall(" ".join(words).encode() + b"\r\n")
                return s.recv(65536).split(b"\r\n", 1)[0].decode()
        except OSError:
            return ""

    def _connect(self) -> socket.socket:
        if self.socket is None:
            return socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1.0)
        try:
            s.connect(self.socket)
        except OSError:
            s.close()
            raise
        return s

    def flush(self) -> None:
        assert self.command("FLUSHALL") == "+OK"

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    @contextlib.contextmanager
    def monitored(self) -> Iterator[Monitor]:
        """The commands the server runs from now on, every client's, as MONITOR reports them."""
        monitor = Monitor(self)
        try:
            yield monitor
        finally:
            monitor.close()


class Monitor:
    """A MONITOR connection: `ran` counts the commands run up to now, as they were written (Lua's calls included)."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.lines: list[str] = []  # e.g. `+1764400000.123456 [0 127.0.0.1:50000] "HGETALL" "rot:clients"`
        self._buffer = b""
        self._socket = server._connect()
        self._socket.settimeout(5.0)
        self._socket.sendall(b"MONITOR\r\n")
        assert self._line() == "+OK"

    def ran(self, *words: str) -> int:
        """How many commands run so far were `words`, exactly (in any case)."""
        marker = f"monitored-{time.monotonic_ns()}"
        assert self.server.command("ECHO", marker)  # (read up to it: every command before it was reported)
        while marker not in (line := self._line()):
            self.lines.append(line)
        said = " ".join(f'"{word}"' for word in words).lower()
        return sum(1 for line in self.lines if line.partition("] ")[2].lower() == said)

    def _line(self) -> str:
        while b"\r\n" not in self._buffer:
            chunk = self._socket.recv(65536)
            if not chunk:
                raise ConnectionError("redis-server closed the MONITOR connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def close(self) -> None:
        self._socket.close()


async def written(*pools: KeyPool) -> None:
    """What each worker's pool sent Redis so far is applied: its background writes are done, and a PING sent after
    them on its pipe is answered (Redis answers one connection in order). Waited on instead of slept for."""
    for pool in pools:
        assert pool.shared is not None
        shared = pool.shared.shared
        while shared.tasks:
            await asyncio.gather(*list(shared.tasks), return_exceptions=True)
        if shared.pipe is not None and shared.pipe.connected():
            await shared.pipe.call("PING")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the test session (one per xdist worker); tests call `flush()` to start empty."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_unix_server() -> Iterator[RedisServer]:
    """`redis_server` on a Unix socket only (`unix://` URLs)."""
    server = RedisServer(unix=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["fakeredis", "redis-server"])
def redis_where(request) -> fakeredis.FakeServer | str:
    """Where a test's workers share their state: a URL-less fakeredis server, or the session's redis-server emptied
    (its URL)."""
    if request.param == "fakeredis":
        return fakeredis.FakeServer()
    server = request.getfixturevalue("redis_server")
    server.flush()
    return server.url
