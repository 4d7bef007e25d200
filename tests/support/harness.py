"""Runs the real proxy for end-to-end tests: `mitmdump -s addons/rotator.py` as a subprocess, on a free port.

The fixtures in tests/conftest.py wrap this; tests rarely import it except for `Rotator` (type hints) and
`default_config`.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.timing import wait_until

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from cluster_lib.services import holds, listens  # noqa: E402 - scripts/ is put on the path just above

__all__ = ["holds"]  # (for tests/support/cloud_net.py)

MITMDUMP = Path(sys.executable).with_name("mitmdump")
ADDON = "addons/rotator.py"
STUB_ADDON = "tests/e2e/stub_addon.py"  # (the harness's own tests' stand-in for Rotator: no welcome)
# What addons/welcome.py logs once every addon has started. mitmproxy listens before it loads its scripts, and a
# connection made then waits in the backlog for them (a second or more): a timing test that counted from the port
# alone counted that wait too.
READY = "rotator: ready."
# ROTATOR_E2E_HANDOFF=tcp: every mitmdump hands flows to the engine over loopback TCP (`rotator_in_memory=false`,
# what Rotator falls back to when mitmproxy's internals differ), so the suite can run in both hand-off modes.
HANDOFF_ARGS = ("--set", "rotator_in_memory=false") if os.environ.get("ROTATOR_E2E_HANDOFF") == "tcp" else ()

CLIENT_KEYS = {
    "OPENAI_API_KEY": "sk-client-placeholder",
    "ANTHROPIC_API_KEY": "sk-ant-client-placeholder",
    "GEMINI_API_KEY": "client-placeholder",
}
POOL_KEYS = {
    "openai": ["sk-pool-1", "sk-pool-2", "sk-pool-3"],
    "anthropic": ["sk-ant-pool-1", "sk-ant-pool-2"],
    "gemini": ["g-pool-1", "g-pool-2"],
}

# Variables that would send a client or the proxy somewhere else than the test intends.
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy", "no_proxy")
ROUTE_VARS = (
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_API_KEY",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_CUSTOM_HEADERS",
    "OPENAI_API_TYPE",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GEMINI_NEXT_GEN_API_BASE_URL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def default_config(vendor_url: str) -> dict:
    """The config contract: every provider pointed at the fake vendor, generous stream timeouts."""
    return {
        "providers": {
            "openai": {"base_url": f"{vendor_url}/v1", "keys": list(POOL_KEYS["openai"])},
            "anthropic": {"base_url": vendor_url, "keys": list(POOL_KEYS["anthropic"])},
            "gemini": {"base_url": vendor_url, "keys": list(POOL_KEYS["gemini"])},
        },
        "streaming": {"first_token_timeout": 30, "idle_timeout": 120},
    }


def merge(base: dict, override: dict | None) -> dict:
    """Deep merge: nested dicts merge, anything else replaces, and a None value deletes the key."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# prctl(2): the kernel signals a process when the one that started it ends (Linux only).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Make this process be killed when its parent ends, however it ends (SIGTERM, Ctrl-C, SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def dies_with_test_run():
    """A `preexec_fn` for every process a test starts: killed with the process that started it, so an interrupted
    run leaves nothing listening. (libc is loaded beforehand: the child only makes the call.)"""
    parent = os.getpid()

    def preexec() -> None:
        die_with_parent()
        if os.getppid() != parent:  # the parent ended before the call: nothing would signal this process
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_taken(output: str) -> bool:
    """A listener's port, drawn by free_port(), was taken before the process bound it: any process's outgoing
    connection may take it as its source port meanwhile (the same ephemeral range). Then draw again."""
    return "address already in use" in output.lower()


def listen_port_drawn_again(command: list[str]) -> list[str]:
    """`command` with the value of its --listen-port drawn again."""
    i = command.index("--listen-port") + 1
    return [*command[:i], str(free_port()), *command[i + 1:]]


def agent_environ(tmp_path: Path, proxy: Rotator) -> tuple[Path, dict[str, str]]:
    """A work directory for an agent CLI run through `proxy`, and the start of its environment: an empty home of
    its own (nothing of this machine's config), PATH and HTTPS_PROXY. The caller adds the CA and key variables its
    CLI reads."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    return work, {"PATH": os.environ["PATH"], "HOME": str(home), "HTTPS_PROXY": proxy.url}


def clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without proxy settings (mitmdump must never proxy through itself) and SDK routing vars."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and k not in ROUTE_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class RotatorStartError(RuntimeError):
    pass


@dataclass
class RotatorProcess:
    """One mitmdump subprocess with its config, confdir and log file."""

    config: dict
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)  # extra environment for mitmdump (e.g. ${VAR} keys)
    args: tuple[str, ...] = ()
    script: str = ADDON
    port: int = 0
    process: subprocess.Popen | None = None
    handed: bool = False  # a test has had a handle on it (`Rotator`)
    output_start: int = 0  # where mitmdump's own output begins in the log (after the command line the harness wrote)

    @property
    def confdir(self) -> Path:
        return self.workdir / "confdir"

    @property
    def config_path(self) -> Path:
        return self.workdir / "rotator.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mitmdump.log"

    @property
    def ca_cert(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        return [
            str(MITMDUMP),
            "-s",
            self.script,
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(self.port),
            "--set",
            f"confdir={self.confdir}",
            "--set",
            f"rotator_config={self.config_path}",
            # (an addon option set twice makes mitmproxy drop every addon option given on the command line)
            *(() if "rotator_in_memory=false" in self.args else HANDOFF_ARGS),
            *self.args,
        ]

    def start(self, timeout: float = 30.0, attempts: int = 3) -> RotatorProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Each process keeps its pools' state in its own file, unless the test names one (to restart on it).
        config = {"state": {"path": str(self.workdir / "state.db")}, **self.config}
        with self.config_path.open("w") as f:
            YAML(typ="safe", pure=True).dump(config, f)
        for attempt in range(attempts):
            self.draw_ports()
            with self.log_path.open("ab") as log:
                log.write(f"$ {' '.join(self.command())}\n".encode())
                log.flush()
                self.output_start = len(self.log_text())
                self.process = subprocess.Popen(
                    self.command(),
                    cwd=REPO,
                    env=clean_environ(self.env),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=dies_with_test_run(),
                )
            try:
                self._wait_ready(timeout)
                return self
            except RotatorStartError:
                self.stop()
                text = self.log_text()
                if port_taken(text) and attempt + 1 < attempts:
                    continue  # another worker grabbed the port between free_port() and the bind
                raise
        raise AssertionError("unreachable")

    def draw_ports(self) -> None:
        """The ports this process will listen on, drawn again at each start attempt."""
        self.port = free_port()

    def listening(self) -> bool:
        """Whether mitmdump itself listens on its port."""
        return self.process is not None and listens(self.process.pid, self.port)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RotatorStartError(
                    f"mitmdump exited with {self.process.returncode} during startup; log:\n{self.log_text()[-5000:]}"
                )
            if self.ca_cert.exists() and self.listening() and (self.script == STUB_ADDON or READY in self.log_text()):
                return
            time.sleep(0.05)
        raise RotatorStartError(f"mitmdump not listening on {self.port} after {timeout}s; log:\n{self.log_text()[-5000:]}")

    def terminate(self) -> None:
        """Ask mitmdump (and anything it started) to exit; `stop()` waits for it."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None


class Rotator:
    """What a test gets from the `rotator` fixture: one running proxy, seen from this test.

    `.env` is the environment an unmodified tool needs; `apply_env()` puts it into this test process (the fixture
    does that by default), so `openai.OpenAI()`, `anthropic.Anthropic()` and `google.genai.Client()` built with no
    arguments go through the proxy to their default vendor URLs. `.log` is the proxy's output since this test took
    the handle, all of it for a process started for it (`.full_log` is all of it; the process may be shared with
    other tests).
    """

    def __init__(self, proc: RotatorProcess, monkeypatch: Any = None):
        self.proc = proc
        self._monkeypatch = monkeypatch
        # (a process started for this handle: its start-up lines are this test's too)
        self._log_start = len(proc.log_text()) if proc.handed else proc.output_start
        proc.handed = True

    @property
    def port(self) -> int:
        return self.proc.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> dict:
        return self.proc.config

    @property
    def config_path(self) -> Path:
        return self.proc.config_path

    @property
    def ca_cert(self) -> Path:
        return self.proc.ca_cert

    @property
    def env(self) -> dict[str, str]:
        return {"HTTPS_PROXY": self.url, "SSL_CERT_FILE": str(self.ca_cert), **CLIENT_KEYS}

    @property
    def full_log(self) -> str:
        return self.proc.log_text()

    @property
    def log(self) -> str:
        return self.proc.log_text()[self._log_start :]

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        """Wait until `needle` shows up in this test's part of the log; return that part."""
        try:
            return wait_until(lambda: needle in self.log and self.log, timeout)
        except AssertionError:
            raise AssertionError(f"{needle!r} not in the rotator log after {timeout}s:\n{self.log[-5000:]}") from None

    def apply_env(self, monkeypatch: Any = None) -> Rotator:
        mp = monkeypatch or self._monkeypatch
        for name in PROXY_VARS + ROUTE_VARS:
            mp.delenv(name, raising=False)
        for name, value in self.env.items():
            mp.setenv(name, value)
        return self

    def __repr__(self) -> str:
        return f"<Rotator port={self.port} log={self.proc.log_path}>"


class RotatorPool:
    """Session-wide: one process per distinct (config, env, args, script), the most recent few kept alive."""

    def __init__(self, base_dir: Path, keep: int = 3):
        self.base_dir = base_dir
        self.keep = keep
        self._shared: dict[str, RotatorProcess] = {}  # insertion order = least recently used first
        self._count = 0

    def _new(self, config: dict, env: dict, args: tuple, script: str) -> RotatorProcess:
        self._count += 1
        proc = RotatorProcess(config, self.base_dir / f"rotator-{self._count}", env, args, script)
        return proc.start()

    def get(self, config: dict, env: dict | None = None, args: tuple = (), script: str = ADDON) -> RotatorProcess:
        key = json.dumps([config, env or {}, list(args), script], sort_keys=True)
        proc = self._shared.pop(key, None)
        if proc is None or not proc.alive():
            if proc is not None:
                proc.stop()
            while len(self._shared) >= self.keep:  # stop the least recently used
                self._shared.pop(next(iter(self._shared))).stop()
            proc = self._new(config, env or {}, args, script)
        self._shared[key] = proc
        return proc

    def fresh(self, config: dict, env: dict | None = None, args: tuple = (), script: str = ADDON) -> RotatorProcess:
        return self._new(config, env or {}, args, script)

    def close(self) -> None:
        for proc in self._shared.values():
            proc.terminate()
        for proc in self._shared.values():
            proc.stop()
        self._shared.clear()
