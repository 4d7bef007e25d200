"""One block in the log at start-up that tells a newcomer what is running and how to point a tool at it: which
config was loaded, which hosts are intercepted, the CA file to trust, and the lines to paste into a shell."""

from __future__ import annotations

import logging
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

from mitmproxy import ctx
from mitmproxy.proxy import mode_specs

from addons.exposure import PROXYAUTH_ANY
from addons.scope import OURS, scope_line
from rewrite.surface import DEFAULT_PATH, Engine, source

logger = logging.getLogger("rotator")

CA_FILE = "mitmproxy-ca-cert.pem"
DEFAULT_CONFDIR = Path("~/.mitmproxy").expanduser()
DEFAULT_PROXY = "http://127.0.0.1:8080"  # (scripts/with-rotator's, without --proxy)
WRAPPER = Path(__file__).resolve().parents[1] / "scripts" / "with-rotator"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
EVERY_INTERFACE = ("", "0.0.0.0", "::")
PROXY_MODES = (mode_specs.RegularMode, mode_specs.UpstreamMode)  # the modes a client reaches with HTTPS_PROXY


@dataclass
class Setup:
    config: Path | None  # None: the embedded defaults
    hosts: list[tuple[str, str]]  # (host, provider)
    ca: Path
    proxy: str  # the proxy URL a client uses; "" when no mode takes proxy traffic (reverse listeners only)
    proxyauth: bool
    clients: bool
    status_host: str = ""  # where the status page is served through the proxy; "" when it is off
    reverse: list[tuple[str, str]] = field(default_factory=list)  # (listener URL, the vendor URL it serves)
    wrapper: Path = WRAPPER
    version: str = ""  # Rotator's (CHANGELOG.md says what each brought)
    intercept: str = OURS  # the rotator_intercept option
    allow_hosts: bool = False  # mitmproxy's allow_hosts is set


def wrapper_command(setup: Setup) -> str:
    """scripts/with-rotator as this proxy's clients run it: its address and confdir named where they are not the
    wrapper's defaults."""
    words = [str(setup.wrapper)]
    if setup.proxy != DEFAULT_PROXY:
        words += ["--proxy", setup.proxy]
    if setup.ca.parent != DEFAULT_CONFDIR:
        words += ["--confdir", str(setup.ca.parent)]
    return shlex.join(words)


def welcome(setup: Setup) -> str:
    if setup.config is not None:
        config = f"config: {setup.config}"
    else:
        config = (f"config: none ({DEFAULT_PATH} does not exist and no --set rotator_config=PATH was given): the "
                  "embedded defaults, every vendor at its own URL with the client's own key; "
                  "rotator.example.yaml shows every setting")
    hosts = ", ".join(f"{host} ({provider})" for host, provider in setup.hosts) or "none"
    lines = ["rotator: ready."]
    if setup.version:
        lines.append(f"  Rotator {setup.version} (CHANGELOG.md says what changed)")
    lines += [f"  {config}", f"  intercepting: {hosts}", scope_line(setup.intercept, setup.allow_hosts)]
    if setup.proxy or not setup.reverse:  # (a reverse listener alone needs no CA: its clients speak plain http)
        lines.append(f"  clients must trust mitmproxy's CA: {setup.ca}")
    if setup.proxy:
        wrapper = wrapper_command(setup)
        lines += [
            "  run a tool through Rotator (claude, codex, python, curl, ...; the proxy, and mitmproxy's CA added to",
            "  the roots it trusts, for that tool alone):",
            f"    {wrapper} CMD [ARGS...]",
            "  or every tool of a shell:",
            f'    eval "$({wrapper} --print-env)"',
        ]
    if setup.reverse:
        lines.append("  reverse listeners: point the tool's base URL at one (plain http, no CA to trust):")
        lines += [f"    {listener} serves {vendor}" for listener, vendor in setup.reverse]
    if setup.proxyauth and setup.proxy:
        lines.append("  (USER:PASSWORD: the credentials given to --proxyauth)")
    if setup.clients:
        lines.append("  the tool's API key must be one of the keys in `clients`")
    if setup.status_host and setup.proxy:
        # curl sends only https:// URLs to HTTPS_PROXY: the page's plain http URL needs the proxy named.
        key = " -H 'x-api-key: CLIENT-KEY'" if setup.clients else ""
        lines.append(f"  pools, keys and usage: curl -x {setup.proxy}{key} http://{setup.status_host}/")
        lines.append(f"  Prometheus metrics: curl -x {setup.proxy}{key} http://{setup.status_host}/metrics")
        if setup.clients:
            lines.append("  (CLIENT-KEY: one of the keys in `clients`)")
    return "\n".join(lines)


def version() -> str:
    """The version of the checkout that runs (its pyproject.toml), else of the installed package."""
    try:
        return str(tomllib.loads(PYPROJECT.read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        try:
            return metadata.version("rotator")
        except metadata.PackageNotFoundError:
            return ""


def parsed(modes: list[str]) -> list[mode_specs.ProxyMode]:
    out = []
    for spec in modes:
        try:
            out.append(mode_specs.ProxyMode.parse(spec))
        except ValueError:
            continue
    return out


def address(mode: mode_specs.ProxyMode, listen_host: str, listen_port: int | None,
            bound: Mapping[mode_specs.ProxyMode, int] = MappingProxyType({})) -> str:
    """HOST:PORT of a mode's listener, as a client on another machine or this one writes it: the port it is bound
    to (`bound`, by mode: the one the system chose for a port 0), else the one asked for."""
    host = mode.listen_host(listen_host)
    if host in EVERY_INTERFACE:
        host = "THIS-HOST"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{bound.get(mode) or mode.listen_port(listen_port)}"


def proxy_url(modes: list[str], listen_host: str, listen_port: int | None, auth: bool,
              bound: Mapping[mode_specs.ProxyMode, int] = MappingProxyType({})) -> str:
    """The URL clients put in HTTPS_PROXY: the first regular or upstream mode's; "" when no mode is one (reverse
    listeners are not proxies)."""
    for mode in parsed(modes):
        if isinstance(mode, PROXY_MODES) and mode.listen_port(listen_port) is not None:
            return f"http://{'USER:PASSWORD@' if auth else ''}{address(mode, listen_host, listen_port, bound)}"
    return ""


def reverse_listeners(modes: list[str], listen_host: str, listen_port: int | None,
                      bound: Mapping[mode_specs.ProxyMode, int] = MappingProxyType({})) -> list[tuple[str, str]]:
    """(the URL a tool uses as its base URL, the vendor URL that listener stands for), per reverse mode."""
    return [(f"http://{address(mode, listen_host, listen_port, bound)}", mode.data) for mode in parsed(modes)
            if isinstance(mode, mode_specs.ReverseMode)]


def bound_ports() -> dict[mode_specs.ProxyMode, int]:
    """The port each of mitmproxy's listeners is bound to, by its mode (its servers start before addons run)."""
    servers = getattr(ctx.master.addons.get("proxyserver"), "servers", ())
    return {server.mode: server.listen_addrs[0][1] for server in servers if server.listen_addrs}


class Welcome:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def running(self) -> None:
        opts = ctx.options
        auth = opts.proxyauth not in (None, "", PROXYAUTH_ANY)
        bound = bound_ports()
        setup = Setup(
            config=source(opts.rotator_config),
            hosts=[(host, p.name) for p in self.engine.router.providers for host in p.hosts],
            ca=Path(opts.confdir).expanduser() / CA_FILE,
            proxy=proxy_url(list(opts.mode), opts.listen_host, opts.listen_port, auth, bound),
            proxyauth=auth,
            clients=bool(self.engine.config.clients),
            status_host=getattr(opts, "rotator_status_host", "").strip().lower(),
            reverse=reverse_listeners(list(opts.mode), opts.listen_host, opts.listen_port, bound),
            version=version(),
            intercept=opts.rotator_intercept,
            allow_hosts=bool(opts.allow_hosts),
        )
        logger.info(welcome(setup))
