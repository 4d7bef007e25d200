"""Which intercepted requests Rotator serves, and for which provider and protocol."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import protocols
from protocols.base import Protocol
from protocols.registration import Registration
from protocols.sse import loads
from rewrite.config import Config
from rewrite.providers import Provider, build, is_glob
from rewrite.providers.credentials import CredentialStyle
from rewrite.providers.wire import Wire
from rewrite.routing.routes import Routes, RouteTarget


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    protocol: Protocol | None  # None: another path on a vendor host, forwarded with only the credential changed


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A WebSocket upgrade Rotator takes: answered 426 for `downgrade`'s protocol, whose clients then use POST; else
    (None) relayed with `provider`'s credentials (rewrite/exchange/ws_relay.py)."""

    provider: Provider
    downgrade: Registration | None


_HOSTS_REMEMBERED = 1024


class Router:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.providers = build(config)
        # A host's owner: its provider without a wire, else the one whose wire speaks there (a wire that claims its
        # requests by the credential they carry, a login's, may share its host with one without: Router.route).
        self._by_host: dict[str, Provider] = {}
        for p in sorted(self.providers, key=lambda p: p.wire is not None):
            for h in p.hosts:
                if not is_glob(h):
                    self._by_host.setdefault(h, p)
        self._globs = [(h, p) for p in self.providers for h in p.hosts if is_glob(h)]
        # The wires that claim a request by the credential it carries (the client's own), with their providers.
        # (those that tell their own from another's on a host they share first: Router.claimed)
        claiming = [(p, w) for p in self.providers if not p.serves_other_clients and (w := p.wire) is not None]
        self._claiming = sorted(claiming, key=lambda pw: pw[1].owns is None)
        self._claiming_by_host: dict[str, list[tuple[Provider, Wire]]] = {}
        self._by_name = {p.name: p for p in self.providers}
        # Which providers serve a model (rewrite/exchange/fallback.py).
        self.routes = Routes.from_config(config.routes,
                                         frozenset(p.name for p in self.providers if not p.serves_other_clients))

    def provider_for(self, host: str) -> Provider | None:
        """The provider whose host `host` is (the one without a wire when another's wire shares it)."""
        host = host.lower()
        found = self._by_host.get(host)
        if found is None and self._globs:
            found = next((p for _, p in self._globs if p.serves_host(host)), None)
        return found

    def provider_named(self, name: str) -> Provider | None:
        return self._by_name.get(name)

    def claimed(self, host: str, headers: Mapping[str, str], path: str = "", body: bytes | None = None
                ) -> Provider | None:
        """The provider whose wire claims a request to `host` by the credential it carries: the client's own (a
        subscription login), which is never pooled; None when none does. Where several logins share the host (Gemini
        CLI's and Antigravity's), one that tells its own there (`Login.owns`, by the headers, `path` and `body`) takes
        those it owns, and the other the rest."""
        return next((p for p, wire in self._claiming_at(host) if wire.claim(headers)
                     and ((owns := _owns(wire, host)) is None or owns(headers, path, body))), None)

    def looked_up(self, host: str, path: str, headers: Iterable[tuple[str, str]]
                  ) -> Callable[[int, bytes], None] | None:
        """For a side call in which a login's client reads its plan (`Login.lookups`), what keeps its answer (status,
        body) on the entry of the login it carries; None for another call."""
        if not self._claiming or not any(w.lookups is not None for _, w in self._claiming_at(host)):
            return None
        path, headers = path.partition("?")[0], list(headers)
        provider = self.claimed(host, {n.lower(): v for n, v in headers}, path)
        wire, book = (provider.wire, provider.logins) if provider is not None else (None, None)
        if wire is None or book is None or wire.lookups is None or not wire.lookups.fullmatch(path):
            return None
        token = wire.token(headers)
        if not token:
            return None
        state, lookup = book.login(token), wire.lookup
        return lambda status, body: book.looked_up(state, *lookup(path, status, body, time.time()))

    def _claiming_at(self, host: str) -> list[tuple[Provider, Wire]]:
        """The claiming wires whose providers serve `host` (worked out once a host: asked of every request)."""
        found = self._claiming_by_host.get(host)
        if found is None:
            if len(self._claiming_by_host) >= _HOSTS_REMEMBERED:  # (any host may be asked: the proxy's every flow)
                self._claiming_by_host.clear()
            found = self._claiming_by_host[host] = [(p, w) for p, w in self._claiming if p.serves_host(host)]
        return found

    def claimed_style(self, host: str, headers: Mapping[str, str]) -> CredentialStyle | None:
        """Where the credential a wire claims sits, when a request carrying one goes to its hosts or side hosts (its
        flow then shows it masked, whoever sends it on)."""
        claimed = self.claimed(host, headers)
        if claimed is not None:
            return claimed.credential
        host = host.lower()
        return next((p.credential for p, wire in self._claiming if host in wire.side_hosts), None)

    def route(self, host: str, method: str, path: str, headers: Mapping[str, str] | None = None,
              body: bytes | None = None) -> Route | None:
        """The route for a request to `host`, or None if Rotator leaves it alone (`headers`: the request's, with
        its credential, which a wire may claim it by; `path` excludes the query; `body`, when held already, tells
        the logins that share a host apart: `claimed`; a query on `path` is left out). A wire's other paths, and its
        hosts' requests it does not claim (a login's host, without the login), are left alone (mitmproxy forwards
        them as they came), unless it `forwards` them."""
        provider = self.provider_for(host)
        if provider is None or method in ("PRI", "CONNECT"):
            return None
        headers, path = headers or {}, path.partition("?")[0]
        serving = (self.claimed(host, headers, path, body) if self._claiming else None) or provider
        wire = serving.wire
        if wire is not None:  # its paths speak several families; other paths pass (unless it forwards them)
            if not wire.claim(headers) or ((owns := _owns(wire, host)) is not None and not owns(headers, path, body)):
                return None
            proto = wire.generation(method, path)
            return Route(serving, proto) if proto is not None or wire.forwards(method, path) else None
        proto = protocols.detect(method, path)
        if proto is not None and proto.family != provider.family:
            proto = None
        return Route(provider, proto)

    def upgrade(self, host: str, path: str, headers: Mapping[str, str]) -> Upgrade | None:
        """What is done with a WebSocket upgrade to `host` (addons/websocket.py); None: it passes as it came. With
        `websocket: downgrade`, one for a protocol whose clients fall back to POST is answered so that they do; a
        claimed credential's (the client's own: no key for the relay) only to one of its wire's generation paths,
        and otherwise passes; any other goes through the relay."""
        claimed = self.claimed(host, headers) if self._claiming else None
        provider = claimed or self.provider_for(host)
        if provider is None:
            return None
        falls_back = _falls_back(path) if self.config.websocket == "downgrade" else None
        if claimed is not None and claimed.wire is not None:
            asked = claimed.wire.generation("POST", _bare(path)) is not None
            return Upgrade(claimed, falls_back) if asked and falls_back is not None else None
        return Upgrade(provider, falls_back)

    def targets(self, called: Provider, model: str) -> list[tuple[Provider, RouteTarget]]:
        """The providers that serve `model` asked of `called`, in the order they are tried."""
        planned = _plan(self.routes.targets_for(model, called.name), self.provider_named, called)
        wire = called.wire
        if wire is not None and (foreign := wire.foreign_model(model)) != model:  # (a name only its vendor knows)
            planned = [(p, t if p is called or t.model is not None else RouteTarget(t.provider, foreign))
                       for p, t in planned]
        return planned or [(called, RouteTarget(called.name))]

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


def _owns(wire: Wire, host: str) -> Callable[[Mapping[str, str], str, bytes | None], bool] | None:
    """How a wire tells its own requests on `host`, one it shares with another; None: all it claims are its own."""
    return wire.owns if host in wire.shared_hosts else None


def _model(route: Route, path: str, body: bytes) -> str | None:
    """The model a request asks for, read as the engine reads it (rewrite/exchange/request.py: inside an envelope of
    its provider's); None when its body is not a JSON object (the engine then forwards it to the called provider as
    it is)."""
    assert route.protocol is not None
    try:
        parsed = loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    envelope = route.provider.envelope
    inside = envelope.opened(path, parsed) if envelope is not None else None
    if inside is not None:
        path, parsed = inside
    return route.protocol.model(path, parsed)


def _falls_back(path: str) -> Registration | None:
    """The registration of the protocol whose call an upgrade's path is, when its clients fall back to POST."""
    proto = protocols.detect("POST", _bare(path))
    registration = protocols.registered(proto.name) if proto is not None else None
    return registration if registration is not None and registration.websocket_refusal is not None else None


def _bare(target: str) -> str:
    return target.partition("?")[0].rstrip("/")


def _plan(targets: tuple[RouteTarget, ...], by_name, called: Provider) -> list[tuple[Provider, RouteTarget]]:
    """The providers of `targets`, in order (a name no provider has is left out: the config check refuses it)."""
    out = []
    for t in targets:
        provider = called if t.provider == called.name else by_name(t.provider)
        if provider is not None:
            out.append((provider, t))
    return out
