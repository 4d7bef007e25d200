"""Runs `scripts/cluster` for end-to-end tests: N real workers behind HAProxy on a free port, its state (HAProxy
config, logs, a started Redis) in a temporary directory, stopped by the test."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from ruamel.yaml import YAML

from tests.support.harness import REPO, clean_environ, dies_with_test_run, free_port, port_taken
from tests.support.timing import wait_until

CLUSTER = REPO / "scripts" / "cluster"
READY = "rotator cluster: ready."


@dataclass
class Cluster:
    """One `scripts/cluster` process: its output in `out.log`, its state in `workdir/state`."""

    workdir: Path
    config: dict | None
    workers: int = 2
    args: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen | None = None
    since: int = 0  # where this run's output begins in out.log
    pids: dict[str, int] = field(default_factory=dict)  # "haproxy", "worker-1", "redis" ... from the start-up block
    ports: dict[int, int] = field(default_factory=dict)  # worker number -> its loopback port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.workdir / "confdir" / "mitmproxy-ca-cert.pem"

    @property
    def state(self) -> Path:
        return self.workdir / "state"

    @property
    def out_path(self) -> Path:
        return self.workdir / "out.log"

    def output(self) -> str:
        """What this run of scripts/cluster printed (a restart in the same directory appends to the file)."""
        with contextlib.suppress(FileNotFoundError):
            return self.out_path.read_text(errors="replace")[self.since:]
        return ""

    def worker_log(self, n: int) -> str:
        return (self.state / "logs" / f"worker-{n}.log").read_text(errors="replace")

    def command(self) -> list[str]:
        argv = [str(CLUSTER), "--workers", str(self.workers), "--state-dir", str(self.state),
                "--listen-port", str(self.port), "--set", f"confdir={self.workdir / 'confdir'}"]
        if self.config is not None:
            argv += ["--set", f"rotator_config={self.workdir / 'rotator.yaml'}"]
        return argv + list(self.args)

    def launch(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            with (self.workdir / "rotator.yaml").open("w") as f:
                YAML(typ="safe", pure=True).dump(self.config, f)
        self.port = self.port or free_port()
        self.since = len(self.out_path.read_text(errors="replace")) if self.out_path.exists() else 0
        with self.out_path.open("ab") as out:
            self.process = subprocess.Popen(self.command(), cwd=REPO, env=clean_environ(), stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=dies_with_test_run())
        return self

    def start(self, timeout: float = 120.0, attempts: int = 3) -> Cluster:
        chosen = not self.port  # (a port of the test's choosing, not one it asks for)
        for attempt in range(attempts):
            self.launch()
            try:
                return self._wait_ready(timeout)
            except AssertionError:
                # Between free_port() and HAProxy's bind, seconds later, another test's connection may have taken
                # the port as its source port: HAProxy then cannot bind it, and says so.
                if not (chosen and attempt + 1 < attempts and port_taken(self.output())):
                    raise
                self.stop()
                self.port = 0
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float) -> Cluster:
        deadline = time.monotonic() + timeout
        while READY not in self.output():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"scripts/cluster did not start; its output:\n{self.output()[-5000:]}")
            time.sleep(0.1)
        block = self.output().split(READY, 1)[1]
        workers = re.findall(r"worker-(\d+) 127\.0\.0\.1:(\d+) \(pid (\d+)\)", block)
        self.pids = {f"worker-{n}": int(pid) for n, _, pid in workers}
        self.ports = {int(n): int(port) for n, port, _ in workers}
        self.pids["haproxy"] = int(re.search(r"HAProxy in TCP mode, pid (\d+)", block)[1])
        if redis := re.search(r"started here, pid (\d+)", block):
            self.pids["redis"] = int(redis[1])
        return self

    def wait_output(self, needle: str, timeout: float = 10.0) -> str:
        try:
            return wait_until(lambda: needle in (text := self.output()) and text, timeout)
        except AssertionError:
            raise AssertionError(f"{needle!r} not in scripts/cluster's output after {timeout}s:\n"
                                 f"{self.output()[-5000:]}") from None

    def client(self, worker: int | None = None, timeout: float = 30) -> httpx.Client:
        """A client of its own (a connection of its own: HAProxy balances connections) through the cluster, or
        straight to one worker."""
        proxy = self.url if worker is None else f"http://127.0.0.1:{self.ports[worker]}"
        return httpx.Client(proxy=proxy, verify=ssl.create_default_context(cafile=self.ca_cert), timeout=timeout)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # (a zombie left for its parent to reap is not running)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return False


def started_at(pid: int) -> float:
    """When a process started (seconds since the epoch, to 10 ms), from /proc: its start in clock ticks after boot,
    against the time since boot now (/proc/stat's boot time is whole seconds only)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
