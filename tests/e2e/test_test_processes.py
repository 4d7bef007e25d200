"""The processes tests start die with the test run however it is stopped: an interrupted `scripts/test` (SIGTERM,
Ctrl-C, or a kill) leaves no mitmdump listening."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.harness import REPO, clean_environ

pytestmark = pytest.mark.e2e

# A test run in miniature: the harness starts a proxy, says its process id, and waits to be stopped.
# (Ctrl-C as it reaches a run started at a terminal: a run started in the background of a shell without job control,
# as a CI step or `cmd &` may be, ignores SIGINT from its start, and so would this one.)
RUN = """
import signal, sys, time
from pathlib import Path
from tests.support.harness import RotatorProcess, default_config
signal.signal(signal.SIGINT, signal.default_int_handler)
proc = RotatorProcess(default_config("http://127.0.0.1:9"), Path(sys.argv[1])).start()
print(proc.process.pid, flush=True)
time.sleep(600)
"""

# scripts/test's shape: pytest-xdist workers, each with its proxies; the test says its proxy's process id.
PYTEST_RUN = """
import time
from pathlib import Path

def test_waits(rotator):
    proxy = rotator(fresh=True)
    said = Path(__file__).with_name("pid.part")
    said.write_text(str(proxy.proc.process.pid))
    said.rename(said.with_name("pid"))
    time.sleep(600)
"""


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):  # (exited, not yet reaped)
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def state(pid: int) -> str:
    """What /proc says of a process that did not end: its state, the signals it ignores and catches, where it waits."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as e:
        return f"unreadable ({e})"
    return "; ".join([*(line for line in status if line.startswith(("State", "SigIgn", "SigCgt", "Threads"))),
                      f"wchan {wchan}"])


def stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's parent-death signal is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["sigterm", "ctrl-c", "sigkill"])
def test_a_proxy_dies_with_the_process_that_started_it(tmp_path, sig):
    run = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path)], cwd=REPO, env=clean_environ(),
                           stdout=subprocess.PIPE, text=True)
    try:
        pid = int(run.stdout.readline())
        assert not gone(pid, within=0.2)  # it runs, in its own session (a Ctrl-C at the terminal misses it)
        run.send_signal(sig)
        try:
            run.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the run did not end on {sig.name}: {state(run.pid)}") from None
        assert gone(pid), f"mitmdump {pid} outlived its test run"
    finally:
        run.kill()
        run.wait()
        stop(pid)


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's parent-death signal is Linux's")
def test_a_killed_parallel_run_leaves_no_proxy(tmp_path):
    """A SIGKILL reaches pytest's main process only: its xdist workers, and their proxies, must go with it."""
    (tmp_path / "test_waits.py").write_text(PYTEST_RUN)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "1", "--rootdir", str(REPO),
               "-c", str(REPO / "pyproject.toml"), "-p", "tests.conftest", str(tmp_path / "test_waits.py")]
    # (its temporary directories, which a killed run cannot remove itself, made under this test's own)
    run = subprocess.Popen(command, cwd=REPO, env={**clean_environ(), "TMPDIR": str(tmp_path)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    said, pid = tmp_path / "pid", None
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts pytest, a worker and mitmdump slowly
        while not said.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert said.exists(), f"the inner run ended ({run.poll()}) or took too long before its proxy started"
        pid = int(said.read_text())
        run.kill()
        run.wait(10)
        # At once (a worker left to notice by itself takes seconds, or as long as its test runs), with slack.
        assert gone(pid, within=2.0), f"mitmdump {pid} outlived its test run"
    finally:
        run.kill()
        run.wait()
        if pid is not None:
            stop(pid)
