"""Where the proxy listens: on loopback unless the user asks for another address, and never beyond loopback with
key pools that anyone there could use.

mitmproxy's own default listen host, "", is every interface. Rotator puts 127.0.0.1 in its place; an address
the user gives (`--listen-host`, `--set listen_host=`, `--mode regular@HOST:PORT`) is kept. mitmdump starts its
servers before it loads `-s` scripts, so they may already be bound to every interface when this addon first sees
the options: they are then restarted on the new address at once.

Bound beyond loopback with a key pool, Rotator refuses to start (or, at run time, refuses the option change)
unless clients must authenticate: mitmproxy's `proxyauth`, or `clients` in Rotator's config.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from mitmproxy import ctx, exceptions
from mitmproxy.proxy import mode_specs
from mitmproxy.utils import asyncio_utils

from rewrite.surface import Engine

logger = logging.getLogger("rotator")

LOOPBACK = "127.0.0.1"
# mitmproxy's proxyauth spec that accepts any credentials: no authentication at all.
PROXYAUTH_ANY = "any"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # "" (every interface) or a name that may resolve anywhere


def exposed_hosts(modes: Sequence[str], listen_host: str, listen_port: int | None) -> list[str]:
    """The addresses beyond loopback that the proxy's servers listen on ("" is every interface)."""
    hosts = []
    for spec in modes:
        try:
            mode = mode_specs.ProxyMode.parse(spec)
        except ValueError:
            continue  # mitmproxy reports a bad mode itself
        if mode.listen_port(listen_port) is None:
            continue  # a mode without a listening socket (local redirect)
        host = mode.listen_host(listen_host)
        if not is_loopback(host) and host not in hosts:
            hosts.append(host)
    return hosts


class Exposure:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.started = False
        self._warned: str | None = None  # the last warning given, so a repeated configure does not repeat it

    def running(self) -> None:
        self.started = True

    def configure(self, updated: set[str]) -> None:
        if "listen_host" in updated and ctx.options.listen_host == "":
            ctx.options.update(listen_host=LOOPBACK)  # (configures every addon again, this one included)
            asyncio_utils.create_task(self._rebind(), name="rotator: listen on loopback", keep_ref=True)
            return
        if not updated & {"listen_host", "listen_port", "mode", "proxyauth", "rotator_config"}:
            return
        problem = self._problem()
        if problem is None:
            return
        if self.started:  # a change at run time: refuse it, keep listening as before
            raise exceptions.OptionsError(problem)
        logger.error(problem)  # at start-up, mitmproxy exits non-zero when an error is logged

    def _problem(self) -> str | None:
        exposed = exposed_hosts(ctx.options.mode, ctx.options.listen_host, ctx.options.listen_port)
        if not exposed:
            return None
        where = ", ".join(h or "every interface" for h in exposed)
        if ctx.options.proxyauth not in (None, "", PROXYAUTH_ANY) or self.engine.config.clients:
            return None
        if not any(p.pool for p in self.engine.router.providers):
            warning = f"rotator: listening on {where} without proxy authentication: anyone who reaches it can use it"
            if warning != self._warned:
                logger.warning(warning)
                self._warned = warning
            return None
        return (f"rotator: refusing to serve key pools on {where} to anyone who reaches it: require proxy "
                "authentication (--proxyauth USER:PASS) or client keys (`clients` in the rotator config), "
                f"or listen on {LOOPBACK}")

    async def _rebind(self) -> None:
        """Restart servers that were bound before the loopback default applied, on their new address."""
        proxyserver = ctx.master.addons.get("proxyserver")
        if proxyserver is None:
            return
        try:
            modes = [mode_specs.ProxyMode.parse(m) for m in ctx.options.mode]
        except ValueError:
            return  # mitmproxy reports a bad mode itself
        await proxyserver.servers.update(modes)  # (waits for a start-up still binding)
        stale = [s.mode for s in proxyserver.servers
                 if s.mode.custom_listen_host is None and not all(is_loopback(a[0]) for a in s.listen_addrs)]
        if not stale:
            return
        await proxyserver.servers.update([m for m in modes if m not in stale])
        await proxyserver.servers.update(modes)
        logger.info("rotator: listening on %s only; give --listen-host to listen on another address", LOOPBACK)
