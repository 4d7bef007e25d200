"""scripts/with-rotator end to end: a tool run through it reaches the real `mitmdump -s addons/rotator.py` and is
repaired, though its environment held nothing of the proxy (the harness strips it: the wrapper must add it); with
Rotator stopped the tool runs as it would without it, and says so; the tool keeps the terminal, the signals and the
exit status. The real Claude Code and Codex through the wrapper: tests/e2e/test_claude_code.py, test_codex.py."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support.fake_vendor import TEXT, Fault
from tests.support.harness import CLIENT_KEYS, clean_environ, dies_with_test_run, free_port
from tests.support.with_rotator import ADDED, WRAPPER, wrapper_args

pytestmark = pytest.mark.e2e

FIRST_TOKEN_TIMEOUT = 1.5
STALL = 60  # seconds the first pooled key stalls before its headers
# The official SDK, built with no arguments: only the environment points it anywhere.
SDK_CALL = """
import openai
stream = openai.OpenAI().chat.completions.create(model="gpt-4o-mini", stream=True,
                                                 messages=[{"role": "user", "content": "hi"}])
print("".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))
"""
DUMP_ENV = "import json, os; print(json.dumps(dict(os.environ)))"
# Says it is ready, then waits to be signalled; tells which signal came and exits with a status of its own.
WAITS_FOR_A_SIGNAL = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), sys.exit(3)))
try:
    print("ready, stdin a terminal:", os.isatty(0), flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("got SIGINT", flush=True)
    sys.exit(4)
"""


def user_env(tmp_path, **extra: str) -> dict[str, str]:
    """A user's environment: no proxy, no CA variables (clean_environ), a home of its own."""
    env = {k: v for k, v in clean_environ({"HOME": str(tmp_path / "home")}).items() if k not in ADDED}
    return env | extra


def test_an_sdk_run_through_the_wrapper_gets_its_stalled_first_token_retried(rotator, fake_vendor, tmp_path):
    proxy = rotator(apply_env=False, fresh=True, streaming={"first_token_timeout": FIRST_TOKEN_TIMEOUT})
    fake_vendor.always(Fault.stall_before_headers(STALL), key="sk-pool-1")
    env = user_env(tmp_path, OPENAI_API_KEY=CLIENT_KEYS["OPENAI_API_KEY"])

    start = time.monotonic()
    done = subprocess.run([*wrapper_args(proxy), sys.executable, "-c", SDK_CALL], env=env, capture_output=True,
                          text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout == TEXT + "\n" and done.stderr == ""
    assert time.monotonic() - start < STALL / 2  # (not served by the stalled key: it answers after STALL)
    calls = fake_vendor.wait_for(2, done=False)
    assert [c.credential for c in calls[:2]] == ["sk-pool-1", "sk-pool-2"]


def test_with_rotator_stopped_the_tool_runs_as_it_would_and_the_wrapper_says_so(tmp_path):
    env = user_env(tmp_path, NO_PROXY="corp.example")
    port = free_port()  # (nothing listens there)

    done = subprocess.run([str(WRAPPER), "--proxy", f"http://127.0.0.1:{port}", sys.executable, "-c", DUMP_ENV],
                          env=env, capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == env  # untouched: nothing added, changed or taken away
    assert done.stderr == (f"rotator: repairs off for this run of {sys.executable}: nothing answers at "
                           f"127.0.0.1:{port} (Connection refused); running it without Rotator\n")


@pytest.mark.parametrize("running", [True, False])
def test_the_exit_status_is_the_tools(rotator, tmp_path, running):
    url = rotator(apply_env=False).url if running else f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([str(WRAPPER), "--proxy", url, "--confdir", str(tmp_path), "sh", "-c", "exit 7"],
                          env=user_env(tmp_path), capture_output=True, text=True, timeout=30)
    assert done.returncode == 7, done.stderr


def test_a_missing_command_exits_127_as_in_a_shell(rotator, tmp_path):
    done = subprocess.run([*wrapper_args(rotator(apply_env=False)), "no-such-tool-here"], env=user_env(tmp_path),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 127 and "no-such-tool-here: not found" in done.stderr


def test_print_env_evaluated_by_bash_gives_the_tool_the_same_environment(rotator, tmp_path):
    proxy = rotator(apply_env=False)
    env = user_env(tmp_path, NO_PROXY="corp.example", NODE_EXTRA_CA_CERTS=str(proxy.ca_cert))
    dump = f"{sys.executable} -c '{DUMP_ENV}'"
    wrapped = subprocess.run([*wrapper_args(proxy), "bash", "-c", dump], env=env, capture_output=True, text=True,
                             timeout=30)
    exported = subprocess.run(["bash", "-c", f'eval "$({" ".join(wrapper_args(proxy))} --print-env)"\n{dump}'],
                              env=env, capture_output=True, text=True, timeout=30)
    assert wrapped.returncode == exported.returncode == 0, (wrapped.stderr, exported.stderr)
    through_wrapper, through_shell = json.loads(wrapped.stdout), json.loads(exported.stdout)
    assert through_wrapper == through_shell
    assert through_shell["HTTPS_PROXY"] == proxy.url and through_shell["NO_PROXY"].startswith("corp.example,")


def test_a_sigterm_sent_to_the_wrapper_reaches_the_tool(rotator, tmp_path):
    proc = subprocess.Popen([*wrapper_args(rotator(apply_env=False)), sys.executable, "-c", WAITS_FOR_A_SIGNAL],
                            env=user_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=dies_with_test_run())
    try:
        assert proc.stdout is not None and "ready" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)  # to the pid the user started
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (out, proc.returncode) == ("got SIGTERM\n", 3), err


def in_its_terminal():
    """A preexec_fn: the pty on stdin becomes the new session's terminal, as a shell's would be, and the job starts
    with Ctrl-C's default action, as a shell's foreground job does. (The test run may ignore SIGINT from its start, as
    a CI step or `cmd &` does, and an ignored signal stays ignored across exec.)"""
    dies = dies_with_test_run()

    def preexec() -> None:
        dies()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    return preexec


def read_until(fd: int, needle: bytes, timeout: float = 30.0) -> bytes:
    out, deadline = b"", time.monotonic() + timeout
    while needle not in out:
        assert time.monotonic() < deadline, f"{needle!r} not in {out!r}"
        if select.select([fd], [], [], 0.1)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:  # (the pty closed: the tool has exited)
                break
    return out


def test_ctrl_c_typed_in_the_terminal_reaches_the_tool(rotator, tmp_path):
    """The tool runs in the terminal's foreground as the wrapper did: it reads a terminal, and the terminal's Ctrl-C
    (its SIGINT to the foreground process group) reaches it."""
    wrapper = wrapper_args(rotator(apply_env=False))
    master, slave = pty.openpty()
    proc = subprocess.Popen([*wrapper, sys.executable, "-c", WAITS_FOR_A_SIGNAL], env=user_env(tmp_path),
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=in_its_terminal())
    os.close(slave)
    try:
        assert b"ready, stdin a terminal: True" in read_until(master, b"\n")
        os.write(master, b"\x03")  # Ctrl-C, typed
        assert b"got SIGINT" in read_until(master, b"got SIGINT")
        assert proc.wait(30) == 4
    finally:
        proc.kill()
        os.close(master)


OLDEST = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3")))  # (where pyenv has one)


@pytest.mark.skipif(not OLDEST, reason="no Python 3.9 on this machine (pyenv's)")
def test_the_wrapper_runs_with_the_oldest_python_it_claims(rotator, tmp_path):
    proxy = rotator(apply_env=False)
    env = user_env(tmp_path, ROTATOR_PYTHON=OLDEST[0])
    done = subprocess.run([*wrapper_args(proxy), sys.executable, "-c", DUMP_ENV], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    seen = json.loads(done.stdout)
    assert seen["HTTPS_PROXY"] == proxy.url and proxy.ca_cert.read_text() in Path(seen["SSL_CERT_FILE"]).read_text()
