"""Who may use the key pools: with `clients` configured, only a request that sends a client's key as its API key.

A request on a pooled provider's host (any path, WebSocket upgrades included) whose credential matches no client
key is answered 401 in its protocol's error shape and never goes upstream. An accepted request is tagged with the
client's name on the flow (`flow.metadata["rotator"]["client"]`) and in one log line. Without `clients`, or on a
provider without a pool (the client's own key goes upstream there), nothing changes.
"""

from __future__ import annotations

import json
import logging

from mitmproxy import http

import protocols
from addons.interception import called_host, hide_credential
from rewrite.clients import ClientKeys, presented
from rewrite.engine import Engine
from rewrite.providers import Provider

logger = logging.getLogger("rotator")

REFUSED = 401
REFUSED_MESSAGE = (
    "Rotator: no client key matched. Send one of the client keys from Rotator's config (`clients`) as your API key."
)


class Access:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._clients = ClientKeys([])

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            self._clients = ClientKeys(self.engine.config.clients)

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if flow.response is not None or req.method in ("CONNECT", "PRI"):
            return
        provider = self.engine.router.provider_for(called_host(flow))
        if provider is None or provider.pool is None or not self._clients:
            return
        style = provider.credential
        sent = presented(style, list(req.headers.items(multi=True)), req.path.partition("?")[2])
        name = self._clients.identify(sent)
        if name is None:
            hide_credential(flow, style)
            self._refuse(flow, provider)
            return
        flow.metadata.setdefault("rotator", {})["client"] = name
        logger.info("rotator: %s %s: client: %s", provider.name, flow.id[:8], name)

    def _refuse(self, flow: http.HTTPFlow, provider: Provider) -> None:
        path = flow.request.path.partition("?")[0]
        flow.response = http.Response.make(
            REFUSED, error_body(provider.family, flow.request.method, path), {"content-type": "application/json"}
        )
        detail = f"no client key matched ({REFUSED})"
        flow.comment = f"rotator refused: {detail}"
        flow.metadata["rotator"] = {"provider": provider.name, "refused": detail}
        logger.info("rotator: %s %s: refused: %s", provider.name, flow.id[:8], detail)


def error_body(family: str, method: str, path: str) -> bytes:
    """The refusal in the request's protocol's error shape; on other paths, in the shape of the family's first."""
    proto = protocols.detect(method, path)
    if proto is None or proto.family != family:
        proto = next((p for p in protocols.all() if p.family == family), None)
    if proto is None:
        return json.dumps({"error": {"message": REFUSED_MESSAGE}}).encode()
    return proto.error_body(REFUSED, REFUSED_MESSAGE)
