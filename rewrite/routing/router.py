"""Which intercepted requests Rotator serves, and for which provider and protocol."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import protocols
from protocols.base import Protocol
from rewrite.config import Config
from rewrite.providers import Provider, build, is_glob
from rewrite.providers.credentials import CredentialStyle
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
        # A host's owner: its API-key provider, else the login provider alone on it (a login may share the host).
        self._by_host: dict[str, Provider] = {}
        for p in sorted(self.providers, key=lambda p: p.login is not None):
            for h in p.hosts:
                if not is_glob(h):
                    self._by_host.setdefault(h, p)
        self._globs = [(h, p) for p in self.providers for h in p.hosts if is_glob(h)]
        self._logins = [p for p in self.providers if p.login is not None]
        self._by_name = {p.name: p for p in self.providers}
        # Which providers serve a model (rewrite/exchange/fallback.py).
        self.routes = Routes.from_config(config.routes, frozenset(p.name for p in self._logins))

    def provider_for(self, host: str) -> Provider | None:
        """The provider whose host `host` is (its API-key provider when a login shares it)."""
        host = host.lower()
        found = self._by_host.get(host)
        if found is None and self._globs:
            found = next((p for _, p in self._globs if p.serves_host(host)), None)
        return found

    def provider_named(self, name: str) -> Provider | None:
        return self._by_name.get(name)

    def login_for(self, host: str, headers: Mapping[str, str]) -> Provider | None:
        """The login provider whose client's own login a request to `host` carries, if any."""
        for p in self._logins:
            assert p.login is not None
            if p.serves_host(host) and p.login.claims(headers):
                return p
        return None

    def login_style(self, host: str, headers: Mapping[str, str]) -> CredentialStyle | None:
        """Where the login a request carries sits, when it goes to one of a login's hosts or side hosts (its flow
        then shows the login masked, whoever sends it on)."""
        login = self.login_for(host, headers)
        if login is not None:
            return login.credential
        host = host.lower()
        return next((p.credential for p in self._logins if p.login is not None and host in p.login.side_hosts), None)

    def route(self, host: str, method: str, path: str, headers: Mapping[str, str] | None = None) -> Route | None:
        """The route for a request to `host`, or None if Rotator leaves it alone (`headers`: the request's, with
        its credential, to tell a login's request; `path` excludes the query). A login's or a platform's other paths
        are left alone (mitmproxy forwards them as they came), unless its wire `forwards` them."""
        provider = self.provider_for(host)
        if provider is None or method in ("PRI", "CONNECT"):
            return None
        login = self.login_for(host, headers or {}) if self._logins else None
        if login is not None:
            assert login.login is not None
            proto = login.login.generation(method, path)
            return Route(login, proto) if proto is not None or login.login.forwards(method, path) else None
        if provider.login is not None:  # (a login's host, without the login)
            return None
        if provider.wire is not None:  # a platform's host: its paths speak several families; other paths pass
            proto = provider.wire.generation(method, path)  # (unless it forwards them: Bedrock's, signed)
            return Route(provider, proto) if proto is not None or provider.wire.forwards(method, path) else None
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
                model = _model(route, path, body)
                if model is not None:
                    serving += [p for p, _ in self.targets(route.provider, model)]
        return list({id(p): p for p in serving if p is not None and p.pool is not None}.values())


def _model(route: Route, path: str, body: bytes) -> str | None:
    """The model a request asks for, read as the engine reads it (rewrite/exchange/request.py: inside an envelope of
    its provider's); None when its body is not a JSON object (the engine then forwards it to the called provider as
    it is)."""
    assert route.protocol is not None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    envelope = route.provider.envelope
    inside = envelope.opened(path, parsed) if envelope is not None else None
    if inside is not None:
        path, parsed = inside
    return route.protocol.model(path, parsed)
