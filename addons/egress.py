"""The egress proxy for Rotator's own upstream calls: the config's `upstream_proxy`, else mitmproxy's
`--mode upstream:URL` (with `--upstream-auth user:password`), which then carries Rotator's calls as well as the
traffic mitmproxy relays itself. The proxy is named in logs without its credentials (rewrite/upstream/egress.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mitmproxy import ctx, exceptions
from mitmproxy.addons.upstream_auth import parse_upstream_auth
from mitmproxy.proxy.mode_specs import ProxyMode, UpstreamMode

from rewrite.surface import EgressProxy, Engine

logger = logging.getLogger("rotator")


class Egress:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.started = False
        self._said: EgressProxy | None = None

    def running(self) -> None:
        self.started = True

    def configure(self, updated: set[str]) -> None:
        if not updated & {"mode", "upstream_auth", "rotator_config"}:
            return
        try:
            proxy = mode_proxy(ctx.options.mode, ctx.options.upstream_auth)
        except ValueError as e:
            if self.started:
                raise exceptions.OptionsError(f"mode: {e}") from None
            logger.error("rotator: mode: %s", e)  # at start-up, mitmproxy exits on an error line
            return
        self.engine.use_mode_proxy(proxy)
        egress = self.engine.egress
        if egress != self._said:
            self._said = egress
            source = "upstream_proxy" if self.engine.config.upstream_proxy else "--mode upstream"
            if egress is not None:
                logger.info("rotator: upstream calls go through the proxy %s (%s)", egress, source)


def mode_proxy(modes: Sequence[str], upstream_auth: str | None) -> EgressProxy | None:
    """The proxy of mitmproxy's first upstream mode, with `upstream_auth` as its credentials; None without one."""
    for spec in modes:
        mode = ProxyMode.parse(spec)
        if not isinstance(mode, UpstreamMode):
            continue
        if mode.scheme != "http":
            raise ValueError("Rotator's own upstream calls can go through an http:// upstream proxy only")
        host, port = mode.address
        auth = parse_upstream_auth(upstream_auth).decode() if upstream_auth else None
        return EgressProxy(host, port, auth)
    return None
