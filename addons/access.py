"""Who may use the key pools: with `clients` configured, only a request that sends a client's key as its API key.

The gate decides per request, before any attempt, on every pool the request could draw from: the called
provider's and those of the route targets its model goes to (a keyless provider routed to a pooled one is gated
too). On such a request (any path, WebSocket upgrades included):
- with `clients`: one credential, and it must be a client's key (rewrite/intake/clients.py `check`); otherwise 401 in
  its protocol's error shape, and after a burst of failed attempts from one client address, 429 with
  `retry-after` for the rest of the window (logged once per address and window);
- without `clients`: a request from a web browser (see `from_browser`) is refused with 403
  unless the config's `allow_browsers` is set, so a web page cannot spend the pools through a browser that uses
  Rotator as its proxy.
A request whose connection gave a client's proxy credentials (addons/clients.py) is that client's, whatever it
carries as its API key. A refused request never goes upstream. An accepted request is tagged with the client's
name on the flow (`flow.metadata["rotator"]["client"]`) and in one log line, and its client key is taken out of the
request: it never goes upstream, not even to a keyless provider a route falls back to. Without a pool in play,
nothing changes.
A request carrying a client's own subscription login (rewrite/providers/login.py) is not gated: the login is its
credential, checked by its vendor before a `from:` route's next target may serve it.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from addons.clients import ProxyClients
from addons.masking import called_host, hide_credential, streamed
from rewrite.surface import (
    NO_MATCH,
    SEVERAL,
    ClientKeys,
    ClientKeyVerdict,
    CredentialStyle,
    Engine,
    Guesses,
    Provider,
    check,
    presented,
    refusal_body,
    without_query_key,
)

logger = logging.getLogger("rotator")

BROWSER = "a request from a web browser"
MESSAGES = {
    NO_MATCH: "Rotator: no client key matched. Send one of the client keys from Rotator's config (`clients`) as your "
              "API key.",
    SEVERAL: "Rotator: this request carries several credentials. Send exactly one API key: a client key from "
             "Rotator's config (`clients`).",
    BROWSER: "Rotator: requests from a web browser (an Origin or Sec-Fetch-* header) are not served from the key "
             "pools, so no web page can spend them. Send a client key (`clients` in Rotator's config), or set "
             "`allow_browsers: true` there.",
}
LIMITED_MESSAGE = "Rotator: too many failed client-key attempts from your address. Try again in {} s."


class Access:
    def __init__(self, engine: Engine, guesses: Guesses | None = None, proxy: ProxyClients | None = None) -> None:
        self.engine = engine
        self.guesses = guesses or Guesses()  # shared with the status page's own check
        self.proxy = proxy  # who gave proxy credentials (addons/clients.py)
        self._clients = ClientKeys([])

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            self._clients = ClientKeys(self.engine.config.clients)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if streamed(flow, self.engine):  # (its body is not read: it could name any route's model)
            self._gate(flow)

    def request(self, flow: http.HTTPFlow) -> None:
        if not streamed(flow, self.engine):
            self._gate(flow)

    def _gate(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if flow.response is not None or req.method in ("CONNECT", "PRI"):
            return
        if self._clients and self.proxy is not None:
            self.proxy.attribute(flow)
            if flow.response is not None:  # (a plain HTTP proxy request's wrong proxy credentials: 407)
                return
        browser = (not self._clients and not self.engine.config.allow_browsers
                   and from_browser(req.headers))
        if not (self._clients or browser):
            return  # (the common case, decided without looking up the route)
        host = called_host(flow)
        path, _, query = req.path.partition("?")
        router = self.engine.router
        provider = router.provider_for(host)
        if provider is None or router.claimed(host, req.headers) is not None:
            return  # (a client's own subscription login is not a pool's: it is the client's credential)
        if provider.pool is None:
            route = router.route(host, req.method, path, req.headers)
            if route is None or not router.pooled(route, path, req.raw_content):
                return  # no pool in play (or a request Rotator leaves alone): the client's own key goes upstream
        style = provider.credential
        known = flow.metadata.get("rotator", {})
        if self._clients and known.get("client_by"):  # (its proxy credentials name it: addons/clients.py)
            verdict = ClientKeyVerdict(client=known["client"])
        elif self._clients:
            sent = presented(style, list(req.headers.items(multi=True)), query)
            verdict = check(self._clients, self.guesses, client_address(flow), sent)
        else:
            verdict = ClientKeyVerdict(status=403, reason=BROWSER)
        if verdict.client is None:
            hide_credential(flow, style)
            self._refuse(flow, provider, verdict)
            return
        withdraw_credential(flow, style)
        flow.metadata.setdefault("rotator", {})["client"] = verdict.client
        logger.info("rotator: %s %s: client: %s", provider.name, flow.id[:8], verdict.client)

    def _refuse(self, flow: http.HTTPFlow, provider: Provider, verdict: ClientKeyVerdict) -> None:
        path = flow.request.path.partition("?")[0]
        headers = {"content-type": "application/json"}
        if verdict.retry_after:
            headers["retry-after"] = str(verdict.retry_after)
            message = LIMITED_MESSAGE.format(verdict.retry_after)
        else:
            message = MESSAGES[verdict.reason]
        body = refusal_body(provider, flow.request.method, path, verdict.status, message)
        flow.response = http.Response.make(verdict.status, body, headers)
        detail = f"{verdict.reason} ({verdict.status})"
        flow.comment = f"rotator refused: {detail}"
        flow.metadata["rotator"] = {"provider": provider.name, "refused": detail}
        if verdict.tell:
            logger.info("rotator: %s %s: refused: %s", provider.name, flow.id[:8], detail)


def withdraw_credential(flow: http.HTTPFlow, style: CredentialStyle) -> None:
    """Take the client's credential out of the request: a client key is Rotator's own, never a vendor's."""
    req = flow.request
    names = {n.encode() for n in style.client_headers}
    req.headers.fields = tuple(f for f in req.headers.fields if f[0].lower() not in names)
    path, _, query = req.path.partition("?")
    if style.client_query and query:
        query = without_query_key(style, query)
        req.path = f"{path}?{query}" if query else path


def from_browser(headers: http.Headers) -> bool:
    """Whether a browser sent the request: it has an Origin, a Sec-Fetch-Site, or a Sec-Fetch-Mode other than a
    lone `cors` (pages cannot remove these headers). Node's fetch (undici, which the vendors' Node SDKs use) sends
    `sec-fetch-mode: cors` on every request, and a browser never sends that mode without an Origin."""
    if "origin" in headers or "sec-fetch-site" in headers:
        return True
    return headers.get("sec-fetch-mode", "cors").strip().lower() != "cors"


def client_address(flow: http.HTTPFlow) -> str:
    """The address the request came from (failed client-key attempts are counted per address)."""
    peer = flow.client_conn.peername
    return str(peer[0]) if peer else "unknown"

