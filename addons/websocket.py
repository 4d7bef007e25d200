"""WebSocket upgrades on a provider's host (Codex CLI opens the Responses API as a WebSocket before it POSTs).

`websocket: downgrade` (the default): an upgrade for a protocol whose clients fall back to HTTPS POST (its
registration's `websocket_refusal`: the Responses API, a path ending in /responses) is answered 426 with a short
reason in the protocol's shape. Codex, and clients that fall back the same way, then use HTTPS POST for the whole
session, where every retry and repair applies. So is a subscription login's upgrade to one of its generation paths
(Codex on ChatGPT); any other of a login's upgrades, and every one with `websocket: pass`, passes as it came (a
login is never pooled: the relay has no key to give it).

Every other upgrade on a provider's host (the Realtime API, or Responses with `websocket: pass`) goes through the
engine's WebSocket relay (rewrite/exchange/ws_relay.py), which opens the provider's WebSocket with the pooled key and
retries a stalled or refused handshake on the next key. The flow only ever carries masked credentials, and
nothing that names its job: mitmproxy sends the upgrade as the flow holds it, and a flow saved or shown while the
handshake is pending must neither reveal a key nor let another connection to the relay take the job. The relay
knows the job by mitmproxy's connection to it (`server_connected`), and takes it once.

Interception (addons/interception.py) hands this addon the upgrades at its `request`, `responseheaders` and `error`
hooks (`upgrade`, `answered`): no other flow runs code here.
"""

from __future__ import annotations

import logging

from mitmproxy import http
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from addons.interception import annotate, reach_directly
from addons.masking import called_host, hide_credential, show_credential
from protocols.registration import Registration
from rewrite.surface import Engine, Note, Provider

logger = logging.getLogger("rotator")

DOWNGRADE_REASON = (
    "Rotator answers the {} API over HTTPS only, where its retries and repairs apply: send the same "
    "request as POST. (To pass WebSockets through instead, set `websocket: pass` in Rotator's config.)"
)
DOWNGRADE_STATUS = 426


class WebSocketUpstream:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.relay = engine.relay
        self._origins: dict[str, tuple[str, str, int]] = {}  # flow id -> the scheme, host and port the client used

    def done(self) -> None:
        self.relay.close()

    def upgrade(self, flow: http.HTTPFlow) -> None:
        """A WebSocket upgrade's request (Interception's `request`)."""
        req = flow.request
        if flow.response is not None:
            return
        upgrade = self.engine.router.upgrade(called_host(flow), req.path, req.headers)
        if upgrade is None:  # (no provider's, or a client's own login's not downgraded: passed as it came)
            return
        provider = upgrade.provider
        if upgrade.downgrade is not None:
            hide_credential(flow, provider.credential)
            self._downgrade(flow, provider, upgrade.downgrade)
            return
        # The relay gets the real headers and path in-process; the flow keeps masked ones from here on.
        sj = self.relay.submit(flow.client_conn.id, flow.id, provider, list(req.headers.items(multi=True)), req.path)
        sj.job.intake.client = flow.metadata.get("rotator", {}).get("client", "")  # (its budget and limits hold it too)
        hide_credential(flow, provider.credential)
        self._origins[flow.id] = (req.scheme, req.host, req.port)
        req.scheme, req.host, req.port = "http", "127.0.0.1", self.relay.listen()
        reach_directly(flow)

    def server_connected(self, data: ServerConnectionHookData) -> None:
        """mitmproxy sends the upgrade once this hook returns: from here the relay expects it on this connection."""
        local = data.server.sockname  # set once connected
        if self.relay.port is not None and data.server.address == ("127.0.0.1", self.relay.port) and local:
            self.relay.connected(data.client.id, local)

    def answered(self, flow: http.HTTPFlow) -> None:
        """An upgrade's answer, or its error (Interception's `responseheaders` and `error`)."""
        origin = self._origins.pop(flow.id, None)
        if origin is None:  # (not an upgrade this addon pointed at the relay)
            return
        sj = self.relay.forget(flow.id)
        if sj is None:
            return
        flow.request.scheme, flow.request.host, flow.request.port = origin
        show_credential(flow, sj.job.route.provider.credential, sj.job.key)
        annotate(flow, sj.job)

    def _downgrade(self, flow: http.HTTPFlow, provider: Provider, registration: Registration) -> None:
        assert registration.websocket_refusal is not None  # (see Router.upgrade)
        body = registration.websocket_refusal(DOWNGRADE_REASON.format(registration.label))
        flow.response = http.Response.make(DOWNGRADE_STATUS, body, {"content-type": "application/json"})
        detail = (f"{registration.label} WebSocket answered {DOWNGRADE_STATUS} so the client uses HTTPS POST "
                  "(websocket: downgrade)")
        flow.comment = f"rotator downgraded: {detail}"
        flow.metadata["rotator"] = {"provider": provider.name, "protocol": None, "key": None,
                                    "events": [{"kind": Note.DOWNGRADED, "detail": detail}]}
        logger.info("rotator: %s %s: downgraded: %s", provider.name, flow.id[:8], detail)
