"""Clients known by proxy credentials: `HTTPS_PROXY=http://NAME:KEY@host:port`, NAME a `clients` entry's name and KEY
its key, which leaves the tool's own credential alone (a subscription login, a SigV4-signing client, a tool's own
vendor key): its requests are the client's whatever they carry, and a request that carries a client key as well is
the proxy credentials' client.

Only with `clients` configured. The CONNECT's `Proxy-Authorization` (`http_connect`) names the client of the whole
connection (mitmproxy's client connection: every request it carries); a plain HTTP proxy request's names its own
request. A wrong pair is refused with 407 before anything is relayed, intercepted or tunnelled; the client-key rules
hold (rewrite/intake/clients.py `check_proxy`: constant-time compare, the per-address guessing limit shared with the
pools' gate, 429 past it). The header is taken out of every request (never sent on, never in a flow) and never
logged; a connection without it goes on as before (its requests may carry a client key as their API key:
addons/access.py). mitmproxy's own `proxyauth`, when set, checks the header first (and takes it out): a pair it
accepted that is a client's names that client.
"""

from __future__ import annotations

import hmac
import logging
import weakref

from mitmproxy import connection, ctx, http

from rewrite.surface import ClientKeys, Engine, Guesses, check_proxy

logger = logging.getLogger("rotator")

PROXY_AUTHORIZATION = "proxy-authorization"
REFUSED = ("Rotator: the proxy credentials (NAME:KEY in the proxy URL) match no client in Rotator's config "
           "(`clients`).\n")
LIMITED = "Rotator: too many failed client-key attempts from your address. Try again in {} s.\n"


class ProxyClients:
    def __init__(self, engine: Engine, guesses: Guesses) -> None:
        self.engine = engine
        self.guesses = guesses
        self._clients = ClientKeys([])
        self._keys: dict[str, str] = {}
        # Each connection that gave a client's proxy credentials at its CONNECT: the client's name and key (a
        # reload that changes the key or removes the client ends what the connection's CONNECT proved).
        self.known: weakref.WeakKeyDictionary[connection.Client, tuple[str, str]] = weakref.WeakKeyDictionary()

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            clients = self.engine.config.clients
            self._clients = ClientKeys(clients)
            self._keys = {c.name: c.key for c in clients}

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self._clients and flow.response is None:
            found = self._authenticate(flow)
            if found is not None:
                self.known[flow.client_conn] = found
                logger.info("rotator: connection %s: client: %s (proxy credentials)", flow.client_conn.id[:8],
                            found[0])

    def attribute(self, flow: http.HTTPFlow) -> None:
        """Name the request's client in its flow when its connection's CONNECT (or, for a plain HTTP proxy request,
        its own header) gave a client's proxy credentials. Called by the gate (addons/access.py) for every request
        while `clients` are configured: no hook of this addon runs per request otherwise."""
        if not self._clients or flow.response is not None:
            return
        found = self.known.get(flow.client_conn)
        if found is not None and not self._still(*found):
            found = None
        if found is None and (PROXY_AUTHORIZATION in flow.request.headers or "proxyauth" in flow.metadata):
            found = self._authenticate(flow)  # (a plain HTTP proxy request: its own credentials)
        if found is not None:
            flow.metadata.setdefault("rotator", {}).update(client=found[0], client_by="proxy credentials")

    def _authenticate(self, flow: http.HTTPFlow) -> tuple[str, str] | None:
        """The client the request's proxy credentials name (the header taken out), or None: none given (then
        nothing changes), or a wrong pair (then the request is answered 407, or 429 past the guessing limit)."""
        headers = flow.request.headers
        given = headers.get(PROXY_AUTHORIZATION)
        if given is None:
            accepted = flow.metadata.get("proxyauth")  # (mitmproxy's proxyauth took the header out)
            if ctx.options.proxyauth and accepted:
                name = self._clients.identify_pair(*accepted)
                return (name, accepted[1]) if name is not None else None
            return None
        del headers[PROXY_AUTHORIZATION]
        peer = flow.client_conn.peername
        verdict = check_proxy(self._clients, self.guesses, str(peer[0]) if peer else "unknown", given)
        if verdict.client is not None:
            return verdict.client, self._keys[verdict.client]
        if verdict.tell:
            logger.info("rotator: connection %s: refused: %s (%d)", flow.client_conn.id[:8], verdict.reason,
                        verdict.status)
        if verdict.retry_after:
            flow.response = http.Response.make(429, LIMITED.format(verdict.retry_after),
                                               {"retry-after": str(verdict.retry_after),
                                                "content-type": "text/plain; charset=utf-8"})
        else:
            flow.response = http.Response.make(407, REFUSED, {"proxy-authenticate": 'Basic realm="rotator"',
                                                              "content-type": "text/plain; charset=utf-8"})
        flow.metadata.setdefault("rotator", {})["refused"] = f"{verdict.reason} ({verdict.status})"
        return None

    def _still(self, name: str, key: str) -> bool:
        """Whether `name` is still a client with `key` (the config may have been reloaded since the CONNECT)."""
        now = self._keys.get(name)
        return now is not None and hmac.compare_digest(now.encode(), key.encode())
