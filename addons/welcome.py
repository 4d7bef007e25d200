"""One block in the log at start-up that tells a newcomer what is running and how to point a tool at it: which
config was loaded, which hosts are intercepted, the CA file to trust, and the lines to paste into a shell."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mitmproxy import ctx
from mitmproxy.proxy import mode_specs

from addons.exposure import PROXYAUTH_ANY
from rewrite.config import DEFAULT_PATH, source
from rewrite.engine import Engine

logger = logging.getLogger("rotator")

CA_FILE = "mitmproxy-ca-cert.pem"
EVERY_INTERFACE = ("", "0.0.0.0", "::")


@dataclass
class Setup:
    config: Path | None  # None: the embedded defaults
    hosts: list[tuple[str, str]]  # (host, provider)
    ca: Path
    proxy: str  # the proxy URL a client uses
    proxyauth: bool
    clients: bool
    status_host: str = ""  # where the status page is served through the proxy; "" when it is off


def welcome(setup: Setup) -> str:
    if setup.config is not None:
        config = f"config: {setup.config}"
    else:
        config = (f"config: none ({DEFAULT_PATH} does not exist and no --set rotator_config=PATH was given): the "
                  "embedded defaults, every vendor at its own URL with the client's own key; "
                  "rotator.example.yaml shows every setting")
    hosts = ", ".join(f"{host} ({provider})" for host, provider in setup.hosts) or "none"
    lines = [
        "rotator: ready.",
        f"  {config}",
        f"  intercepting: {hosts}; other traffic passes untouched",
        f"  clients must trust mitmproxy's CA: {setup.ca}",
        "  in the shell of the tool to run through Rotator:",
        f"    export HTTPS_PROXY={setup.proxy}",
        f"    export SSL_CERT_FILE={setup.ca}        # Python tools (openai, anthropic, google-genai SDKs, aider)",
        f"    export NODE_EXTRA_CA_CERTS={setup.ca}  # Node tools (Claude Code, Codex CLI, Gemini CLI)",
        f"    export CURL_CA_BUNDLE={setup.ca}       # curl",
    ]
    if setup.proxyauth:
        lines.append("  (USER:PASSWORD: the credentials given to --proxyauth)")
    if setup.clients:
        lines.append("  the tool's API key must be one of the keys in `clients`")
    if setup.status_host:
        lines.append(f"  pools, keys and usage: curl http://{setup.status_host}/ (with HTTPS_PROXY set as above)")
    return "\n".join(lines)


def proxy_url(modes: list[str], listen_host: str, listen_port: int | None, auth: bool) -> str:
    """The URL clients put in HTTPS_PROXY for the first mode that listens."""
    host, port = "127.0.0.1", 8080
    for spec in modes:
        try:
            mode = mode_specs.ProxyMode.parse(spec)
        except ValueError:
            continue
        if mode.listen_port(listen_port) is not None:
            host, port = mode.listen_host(listen_host), mode.listen_port(listen_port)
            break
    if host in EVERY_INTERFACE:
        host = "THIS-HOST"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{'USER:PASSWORD@' if auth else ''}{host}:{port}"


class Welcome:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def running(self) -> None:
        opts = ctx.options
        auth = opts.proxyauth not in (None, "", PROXYAUTH_ANY)
        setup = Setup(
            config=source(opts.rotator_config),
            hosts=[(host, p.name) for p in self.engine.router.providers for host in p.hosts],
            ca=Path(opts.confdir).expanduser() / CA_FILE,
            proxy=proxy_url(list(opts.mode), opts.listen_host, opts.listen_port, auth),
            proxyauth=auth,
            clients=bool(self.engine.config.clients),
            status_host=getattr(opts, "rotator_status_host", "").strip().lower(),
        )
        logger.info(welcome(setup))
