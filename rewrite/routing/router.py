"""Which intercepted requests Rotator serves, and for which provider and protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass

import protocols
from protocols.base import Protocol
from rewrite.config import Config
from rewrite.providers import Provider, build
from rewrite.routing.routes import Routes, Target
from rewrite.routing.targets import plan


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
        self.routes = Routes.from_config(config.routes)  # which providers serve a model (rewrite/exchange/fallback.py)

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

    def targets(self, called: Provider, model: str) -> list[tuple[Provider, Target]]:
        """The providers that serve `model` asked of `called`, in the order they are tried."""
        return plan(self.routes.targets_for(model, called.name), self.provider_named, called) or [
            (called, Target(called.name))]

    def pooled(self, route: Route, path: str, body: bytes | None) -> list[Provider]:
        """Every provider with a pool that could serve a request on `route`: the called one, and the targets of
        the route its model matches (a body not read yet could name any model)."""
        serving: list[Provider | None] = [route.provider]
        if route.protocol is not None:
            if body is None:
                serving += [self.provider_named(t.provider) for r in self.routes.routes for t in r.targets]
            elif self.routes.routes:
                model = _model(route.protocol, path, body)
                if model is not None:
                    serving += [p for p, _ in self.targets(route.provider, model)]
        return list({id(p): p for p in serving if p is not None and p.pool is not None}.values())


def _model(proto: Protocol, path: str, body: bytes) -> str | None:
    """The model a request asks for, read as the engine reads it (rewrite/exchange/request.py); None when its body is
    not a JSON object (the engine then forwards it to the called provider as it is)."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return proto.model(path, parsed) if isinstance(parsed, dict) else None
