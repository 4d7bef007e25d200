"""Which TLS connections Rotator opens: only those to a host the running config claims; every other one is tunnelled.

A connection is decided at its TLS ClientHello, before any handshake (`tls_clienthello`): the name it asks for (its
SNI; without one, the host it was addressed to: the CONNECT's, or a transparent connection's destination) is
intercepted when a provider of the running config claims it (`Router.provider_for`: the built-in vendors', clouds'
and logins' hosts, globs included, and every configured provider's `hosts`) or it is the status page's host. Any other
is tunnelled: its bytes go both ways unchanged, the client sees the server's own certificate, and mitmproxy records
no flow of it, so no addon, mitmweb or saved flow ever sees its content. The SNI decides over a different CONNECT
host, because it is the name the client checks the certificate against: what the client believes it talks to.

The router is read at each ClientHello, so a config change (the `rotator_config` option) applies to the next
connection without a restart. A reverse listener's connections are always Rotator's (it stands for one vendor).
Plain-HTTP requests have no ClientHello: they are relayed as before. mitmproxy's own `ignore_hosts` is applied before
this (an ignored host is tunnelled whatever claims it); `allow_hosts`, when set, is the user's list of what to
intercept and replaces this decision; `rotator_intercept=all` intercepts every connection again (debugging).
"""

from __future__ import annotations

from mitmproxy import ctx, tls
from mitmproxy.proxy import mode_specs

from rewrite.surface import Engine

OURS, ALL = "providers", "all"


class Scope:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, loader) -> None:
        loader.add_option(
            "rotator_intercept", str, OURS,
            f"Which TLS connections Rotator decrypts. {OURS}: only those to the hosts of the config's providers (and "
            "the status page); every other one is tunnelled untouched (the client sees the server's own certificate, "
            f"no flow is recorded). {ALL}: every connection, as plain mitmproxy does (for debugging: every client "
            "must then trust mitmproxy's CA for every host). mitmproxy's allow_hosts, when set, decides instead.",
            choices=(OURS, ALL),
        )

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if ctx.options.rotator_intercept == ALL or ctx.options.allow_hosts:
            return
        if isinstance(data.context.client.proxy_mode, mode_specs.ReverseMode):
            return
        address = data.context.server.address
        if not self.ours(data.client_hello.sni or (address[0] if address else "")):
            data.ignore_connection = True

    def ours(self, host: str) -> bool:
        """Whether a connection to `host` is Rotator's to open."""
        host = host.rstrip(".").lower()
        if not host:
            return False
        status = getattr(ctx.options, "rotator_status_host", "").strip().lower()
        return (status != "" and host == status) or self.engine.router.provider_for(host) is not None


def scope_line(intercept: str, allow_hosts: bool) -> str:
    """What the start-up block says of the connections it does not list."""
    if allow_hosts:
        return "  mitmproxy's allow_hosts decides which connections are decrypted (it replaces the list above)"
    if intercept == ALL:
        return (f"  rotator_intercept={ALL}: every other HTTPS connection is decrypted too (debugging; its clients "
                "must trust mitmproxy's CA)")
    return ("  everything else is tunnelled untouched: its TLS is never opened (the server's own certificate, no "
            "flow recorded or saved)")
