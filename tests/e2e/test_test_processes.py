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

from tests.e2e.harness import REPO, clean_environ

pytestmark = pytest.mark.e2e

# A test run in miniature: the harness starts a proxy, says its process id, and waits to be stopped.
RUN = """
import sys, time
from pathlib import Path
from tests.e2e.harness import RotatorProcess, default_config
proc = RotatorProcess(default_config("http://127.0.0.1:9"), Path(sys.argv[1])).start()
print(proc.process.pid, flush=True)
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
        run.wait(10)
        assert gone(pid), f"mitmdump {pid} outlived its test run"
    finally:
        run.kill()
        run.wait()
        stop(pid)

