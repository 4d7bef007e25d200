"""The status page, served through the proxy itself the way mitmproxy serves mitm.it: a request to
`http://rotator.status/` (or https, through CONNECT) is answered here, with no upstream connection (Rotator runs
with connection_strategy=lazy, so the name is never resolved). `?format=json` for scripts, `?format=html` (or a
browser's Accept) for a table; plain text otherwise. `/metrics`: the same figures for Prometheus
(rewrite/accounting/metrics.py).

With `clients` configured, only a request carrying one client key (Authorization: Bearer, x-api-key,
x-goog-api-key, ?key=) sees it, checked as the pools' gate checks it (one credential per request, failed attempts
counted per client address with the gate's); mitmproxy's proxyauth, when set, gates every request before this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

from mitmproxy import ctx, http

from addons.access import client_address
from addons.masking import called_host, hide_credential
from rewrite.surface import (
    CREDENTIAL_STYLES,
    ClientKeys,
    ClientMetrics,
    CredentialStyle,
    Engine,
    Flight,
    Guesses,
    Metrics,
    Tally,
    blocking_reads_of,
    check,
    describe_pool,
    page,
    presented,
    render_html,
    render_json,
    render_text,
)

logger = logging.getLogger("rotator")

STATUS_HOST = "rotator.status"
# Every place any protocol family's client may put its key.
ANY_CLIENT_KEY = CredentialStyle(
    "", "", tuple(dict.fromkeys(h for s in CREDENTIAL_STYLES.values() for h in s.client_headers)), client_query="key"
)
RENDERERS = {"json": ("application/json", render_json), "text": ("text/plain; charset=utf-8", render_text),
             "html": ("text/html; charset=utf-8", render_html)}
REFUSED = ("Rotator status: no client key matched. Send one of the client keys from Rotator's config (`clients`), "
           "and only one, as Authorization: Bearer KEY, x-api-key: KEY or ?key=KEY.\n")
LIMITED = "Rotator status: too many failed client-key attempts from your address. Try again in {} s.\n"


class Status:
    def __init__(self, engine: Engine, guesses: Guesses | None = None,
                 clients: Callable[[], list[dict] | None] = lambda: None,
                 budgets: Callable[[], list[dict] | None] = lambda: None) -> None:
        self.engine = engine
        self.guesses = guesses or Guesses()
        self.tally = Tally()
        self.metrics = Metrics(self._pools, self._in_flight, self._logins,
                               lambda: blocking_reads_of(engine.plugin("conversation")))
        self.clients = clients  # who spent what (addons/spending.py); None: no client configured
        self.budgets = budgets  # each client's budget and limits and their use (addons/spending.py)
        self.metrics.registry.register(ClientMetrics(lambda: self.clients() or []))
        self.host = STATUS_HOST
        self._clients = ClientKeys([])

    def load(self, loader) -> None:
        loader.add_option(
            "rotator_status_host", str, STATUS_HOST,
            "Host name of Rotator's status page, served through the proxy (curl -x PROXY http://HOST/, "
            "?format=json for scripts). Empty: no status page.",
        )

    def configure(self, updated: set[str]) -> None:
        if "rotator_status_host" in updated:
            self.host = ctx.options.rotator_status_host.strip().lower()
        if "rotator_config" in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            self._clients = ClientKeys(self.engine.config.clients)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None or flow.request.method in ("CONNECT", "PRI"):
            return
        if self.host and flow.id not in self.engine.jobs and called_host(flow).lower() == self.host:
            self._serve(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        rotator = flow.metadata.get("rotator")
        if isinstance(rotator, dict):
            self.tally.record(rotator)
            self.metrics.record(rotator, time.time() - flow.request.timestamp_start)

    error = response

    def snapshot(self) -> dict:
        """The page's data, as `?format=json` returns it."""
        now = time.time()
        configured = self.engine.config.providers
        providers = [{"name": p.name, "family": p.family, "pool": describe_pool(p.pool) if p.pool else None,
                      "configured": p.name in configured,
                      "logins": p.logins.describe() if p.logins is not None else None,
                      "signers": p.signers.describe() if p.signers is not None else None}
                     for p in self.engine.router.providers]  # (the pools as the `rotator.pools` command shows them)
        flights = [Flight(job.id, job.provider.name, job.key,
                          job.route.protocol.name if job.route.protocol else None, job.intake.started or now)
                   for job in list(self.engine.jobs.values())]
        return page(providers, flights, self.tally, now, self.clients(), self.budgets())

    def _pools(self) -> list[dict]:
        return [{**describe_pool(p.pool), "provider": p.name} for p in self.engine.router.providers if p.pool]

    def _logins(self) -> list[dict]:
        return [{"provider": p.name, "logins": p.logins.describe()} for p in self.engine.router.providers
                if p.logins is not None]

    def _in_flight(self) -> dict[str, int]:
        counts = dict.fromkeys((p.name for p in self.engine.router.providers), 0)
        for job in list(self.engine.jobs.values()):
            counts[job.provider.name] = counts.get(job.provider.name, 0) + 1
        return counts

    def _serve(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        path, _, query = req.path.partition("?")
        verdict = None
        if self._clients and not flow.metadata.get("rotator", {}).get("client_by"):  # (proxy credentials: a client)
            sent = presented(ANY_CLIENT_KEY, list(req.headers.items(multi=True)), query)
            verdict = check(self._clients, self.guesses, client_address(flow), sent)
        hide_credential(flow, ANY_CLIENT_KEY)
        flow.metadata["rotator"] = {"status_page": True}
        flow.comment = "rotator status page"
        if verdict is not None and verdict.client is None:
            if verdict.tell:
                logger.info("rotator: status page refused: %s (%d)", verdict.reason, verdict.status)
            if verdict.retry_after:
                return self._answer(flow, 429, LIMITED.format(verdict.retry_after).encode(),
                                    "text/plain; charset=utf-8", {"retry-after": str(verdict.retry_after)})
            return self._answer(flow, 401, REFUSED.encode(), "text/plain; charset=utf-8",
                                {"www-authenticate": 'Bearer realm="rotator"'})
        if req.method not in ("GET", "HEAD"):
            return self._answer(flow, 405, b"Rotator status: GET only\n", "text/plain", {"allow": "GET, HEAD"})
        if path == "/metrics":
            return self._answer(flow, 200, *self.metrics.exposition())
        if path != "/":
            return self._answer(flow, 404, b"Rotator status: see / (?format=json for scripts) or /metrics\n",
                                "text/plain")
        fmt = dict(parse_qsl(query)).get("format") or ("html" if "text/html" in req.headers.get("accept", "")
                                                       else "text")
        if fmt not in RENDERERS:
            return self._answer(flow, 400, b"Rotator status: format must be json, text or html\n", "text/plain")
        content_type, render = RENDERERS[fmt]
        try:
            body = render(self.snapshot())
        except Exception:  # a bug here must not send the request on to a host that does not exist
            logger.exception("rotator: status page: internal error")
            return self._answer(flow, 500, b"Rotator status: internal error (see Rotator's log)\n", "text/plain")
        self._answer(flow, 200, body, content_type)

    @staticmethod
    def _answer(flow: http.HTTPFlow, status: int, body: bytes, content_type: str,
                extra: dict[str, str] | None = None) -> None:
        headers = {"content-type": content_type, "cache-control": "no-store", **(extra or {})}
        flow.response = http.Response.make(status, b"" if flow.request.method == "HEAD" else body, headers)
