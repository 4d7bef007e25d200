"""Which intercepted requests Rotator serves, and for which provider and protocol."""

from __future__ import annotations

from dataclasses import dataclass

import protocols
from protocols.base import Protocol
from rewrite.config import Config
from rewrite.providers import Provider, build
from rewrite.routes import Routes


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    protocol: Protocol | None  # None: another path on a vendor host, forwarded with only the credential changed


class Router:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.providers = build(config)
        self._by_host = {h: p for p in self.providers for h in p.hosts}
        self._by_name = {p.name: p for p in self.providers}
        self.routes = Routes.from_config(config.routes)  # which providers serve a model (rewrite/exchange.py)

    def provider_for(self, host: str) -> Provider | None:
        return self._by_host.get(host.lower())

    def provider_named(self, name: str) -> Provider | None:
        return self._by_name.get(name)

    def route(self, host: str, method: str, path: str) -> Route | None:
        """The route for a request to `host`, or None if Rotator leaves it alone. `path` excludes the query."""
        provider = self._by_host.get(host.lower())
        if provider is None or method in ("PRI", "CONNECT"):
            return None
        proto = protocols.detect(method, path)
        if proto is not None and proto.family != provider.family:
            proto = None
        return Route(provider, proto)
