"""WebSocket upgrades on a provider's host (Codex CLI opens the Responses API as a WebSocket first).

mitmproxy itself carries these: the handshake is pointed at the provider's base URL with the pooled credential,
and the messages pass through untouched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mitmproxy import http

from addons.interception import show_credential
from rewrite.credentials import mask
from rewrite.engine import Engine
from rewrite.providers import Provider


class WebSocketUpstream:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # What the client asked for, restored for display once the handshake is answered.
        self._shown: dict[str, tuple[str, str, int, str, Provider, str | None]] = {}

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if flow.response is not None or req.headers.get("upgrade", "").lower() != "websocket":
            return
        provider = self.engine.router.provider_for(req.pretty_host)
        if provider is None:
            return
        target = urlsplit(provider.upstream_url(req.path))
        masked = None
        query = target.query
        if provider.pool is not None:
            key, _ = provider.pool.acquire()
            masked = mask(key)
            headers, query = provider.credential.apply(list(req.headers.items(multi=True)), query, key)
            req.headers.clear()
            for n, v in headers:
                req.headers.add(n, v)
        self._shown[flow.id] = (req.scheme, req.host, req.port, req.path, provider, masked)
        req.scheme = target.scheme
        req.host = target.hostname or ""
        req.port = target.port or (443 if target.scheme == "https" else 80)
        req.path = target.path + (f"?{query}" if query else "")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        shown = self._shown.pop(flow.id, None)
        if shown is None:
            return
        scheme, host, port, path, provider, masked = shown
        flow.request.scheme, flow.request.host, flow.request.port = scheme, host, port
        flow.request.path = path
        show_credential(flow, provider.credential, masked)
        flow.metadata["rotator"] = {"provider": provider.name, "key": masked}

    error = responseheaders
