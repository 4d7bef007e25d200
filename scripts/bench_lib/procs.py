"""Starting, pinning and stopping the benchmark's processes."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

PROXY_ENV_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for every child: no outbound proxy, loopback exempt, unbuffered Python."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cpu_sets() -> tuple[set[int] | None, set[int] | None]:
    """(CPUs for the process under test, CPUs for the fake vendor and the load client).

    The proxy under test gets one core of its own, like a deployment with one process per core; the vendor and
    the client share the rest. With a single CPU nothing is pinned.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus is None:
        return
    for tid in tasks(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


def tasks(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def tail(path: Path, n: int = 1500) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-n:].decode(errors="replace")


class Proc:
    """A child process in its own session, with its output in a log file; stopped by its own process group."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path,
                 stdout_pipe: bool = False, stdin_pipe: bool = False) -> None:
        self.name = name
        self.log = log
        self._logf = open(log, "wb")  # noqa: SIM115  (open for the process's life; closed when it is stopped)
        self.p = subprocess.Popen(
            argv, cwd=cwd, env=env, start_new_session=True,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._logf,
            stderr=self._logf,
        )
        self.pid = self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.p.wait(5)
        else:
            # The leader is gone; make sure nothing it started in its group lingers.
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self._logf.close()


def wait_ready(proc: Proc, check, timeout: float) -> str | None:
    """Polls `check()` until it is true; returns None when ready, else why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            return f"{proc.name} exited with code {proc.p.returncode}"
        if check():
            return None
        time.sleep(0.2)
    return f"{proc.name} not ready after {timeout:.0f} s"


class Worker:
    """The load client process: one JSON job in, one JSON result out."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.p.stdout:
            self.lines.put(line.decode())
        self.lines.put(None)

    def run(self, job: dict, cpus: set[int] | None) -> dict:
        pin(self.proc.pid, cpus)
        self.proc.p.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.p.stdin.flush()
        limit = job.get("time_limit", 60) + 90
        try:
            line = self.lines.get(timeout=limit)
        except queue.Empty:
            raise RuntimeError(f"load client gave no answer within {limit} s") from None
        if line is None:
            raise RuntimeError("load client exited: " + tail(self.proc.log, 800))
        return json.loads(line)


def python_for_venv() -> str:
    """The interpreter the project's .venv was made from (for the separate LiteLLM venv)."""
    base = Path(sys.base_prefix) / "bin"
    for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3"):
        if (base / name).exists():
            return str(base / name)
    return sys.executable
