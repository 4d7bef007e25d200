"""What scripts/cluster is asked to run: its own options (--workers, --state-dir), where the user wants the proxy
(the balancer's address), and the rest of the arguments, which every worker gets as `scripts/run` would."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
EVERY_INTERFACE = ("", "0.0.0.0", "::")


class UsageError(Exception):
    """Arguments scripts/cluster cannot run; the message is one line."""


@dataclass
class Plan:
    workers: int = 2
    host: str = DEFAULT_HOST  # where HAProxy listens (the workers always listen on loopback)
    port: int = DEFAULT_PORT
    state_dir: Path | None = None  # None: $XDG_STATE_HOME/rotator/cluster, else ~/.local/state/rotator/cluster
    confdir: Path = Path("~/.mitmproxy")
    rotator_config: str | None = None
    proxyauth: str | None = None
    worker_args: list[str] = field(default_factory=list)  # the user's other mitmdump arguments

    @property
    def state(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir.expanduser().resolve()
        base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
        return Path(base).expanduser().resolve() / "rotator" / "cluster"

    @property
    def proxy_url(self) -> str:
        """As a client writes it (THIS-HOST for every interface, as Rotator's own start-up block says it)."""
        host = "THIS-HOST" if self.host in EVERY_INTERFACE else self.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{'USER:PASSWORD@' if self.proxyauth else ''}{shown}:{self.port}"


def _number(flag: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise UsageError(f"{flag} wants a whole number from {low} to {high}, not {text!r}")
    return value


def parse(argv: list[str]) -> Plan:
    """The plan for `argv`. Options given as `--flag VALUE`, `--flag=VALUE` or `--set name=VALUE` are all seen."""
    plan = Plan()
    args = list(argv)
    i = 0

    def value() -> str:
        nonlocal i
        flag = args[i]
        if "=" in flag and flag.startswith("--"):
            return flag.split("=", 1)[1]
        if i + 1 >= len(args):
            raise UsageError(f"{flag} needs a value")
        i += 1
        return args[i]

    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if name == "--workers":
            plan.workers = _number("--workers", value(), 1, 64)
        elif name == "--state-dir":
            plan.state_dir = Path(value())
        elif name == "--listen-host":
            plan.host = value()
        elif name in ("--listen-port", "-p"):
            plan.port = _number("--listen-port", value(), 1, 65535)
        elif name == "--proxyauth":
            plan.proxyauth = value()
            plan.worker_args += ["--proxyauth", plan.proxyauth]
        elif name in ("--mode", "-m"):
            raise UsageError("scripts/cluster runs regular proxy workers: --mode is not supported (use scripts/run)")
        elif name == "--set":
            _setting(plan, value())
        else:
            plan.worker_args.append(arg)
        i += 1
    return plan


def _setting(plan: Plan, setting: str) -> None:
    name, _, val = setting.partition("=")
    if name == "listen_host":
        plan.host = val
    elif name == "listen_port":
        plan.port = _number("listen_port", val, 1, 65535)
    elif name == "confdir":
        plan.confdir = Path(val)
    elif name == "rotator_config":
        plan.rotator_config = val
    elif name == "mode":
        raise UsageError("scripts/cluster runs regular proxy workers: mode is not supported (use scripts/run)")
    else:
        if name == "proxyauth":
            plan.proxyauth = val
        plan.worker_args += ["--set", setting]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problem(plan: Plan, pooled: bool, clients: bool) -> str | None:
    """The refusal Rotator gives when it listens beyond loopback with key pools anyone could use (addons/exposure.py).
    The workers listen on loopback and cannot see it: the balancer's address is checked here, before any starts."""
    if is_loopback(plan.host) or not pooled or clients or plan.proxyauth not in (None, "", "any"):
        return None
    where = plan.host or "every interface"
    return (f"rotator: refusing to serve key pools on {where} to anyone who reaches it: require proxy "
            "authentication (--proxyauth USER:PASS) or client keys (`clients` in the rotator config), "
            f"or listen on {DEFAULT_HOST}")
