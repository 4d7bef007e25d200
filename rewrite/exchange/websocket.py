"""Opening a provider's WebSocket for a passed-through upgrade: the handshake attempts and their retries.

The attempts go over the same loop as HTTP requests (`KeyAttempts`, rewrite/exchange/attempt.py): a key picked
(waiting for a lease while every usable key is at its max_concurrent), the waits, the key's rest. One attempt on one
key is one handshake, bounded by `first_token_timeout` (TCP, the egress proxy's tunnel, TLS and the upgrade
together), trusting what HTTP upstream calls trust (`upstream_ca`). A handshake that stalls, fails to connect, or is
answered 401/403 (with a pool), 408, 409, 429 or 5xx is retried on the next key, up to `first_token_retries` times
(rewrite/policy/retry.py). Any other answer, or the last failure, is what the client gets. The key's lease is held
for as long as the socket is open.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from protocols import registry
from protocols.urls import path_problem
from rewrite.config import StreamingConfig
from rewrite.exchange.attempt import NO_CONNECTION
from rewrite.exchange.clock import Clock
from rewrite.exchange.context import Context
from rewrite.exchange.job import Job, error_protocol
from rewrite.exchange.keys import KeyAttempts
from rewrite.lifecycle.events import Paying
from rewrite.lifecycle.hooks import Hooks, Plugin, engaged, plugins_for
from rewrite.lifecycle.payer import AS_IT_CAME, Flow, Outbound, Ticket, carried
from rewrite.lifecycle.setting import Setting
from rewrite.policy import retry
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure
from rewrite.upstream.client import Upstream, request_headers
from rewrite.upstream.egress import tunnel_socket

# Handshake headers the WebSocket client library writes itself for each attempt.
_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)


class _NoDebug(logging.LoggerAdapter):
    """The websockets library writes each handshake header line at DEBUG, the pooled key's among them, whenever its
    logger allows DEBUG; mitmproxy runs with the root logger at DEBUG and mitmweb's event log keeps such records. So
    the provider's socket logs nothing at DEBUG (its errors still show)."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and super().isEnabledFor(level)


_LOGGER = _NoDebug(logging.getLogger("rotator.ws_upstream"))


@dataclass
class SocketJob:
    """One passed-through upgrade. Holds the client's real handshake headers: never put these in a flow."""

    job: Job
    headers: list[tuple[str, str]]  # as the client sent them, credential included
    target: str  # path and query, as the client sent them
    upstream: ClientConnection | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)  # the provider's 101, for the client
    lease: Flow | None = None  # the key's (its payer's flow, suspended), held while the provider's WebSocket is open

    async def release(self) -> None:
        """Give the key back (the socket closed, or never opened)."""
        lease, self.lease = self.lease, None
        if lease is not None:
            await lease.aclose()

    @property
    def subprotocols(self) -> list[str]:
        offered = ",".join(v for n, v in self.headers if n.lower() == "sec-websocket-protocol")
        return [p.strip() for p in offered.split(",") if p.strip()]


def ws_url(http_url: str) -> str:
    return "ws" + http_url[4:] if http_url.startswith("http") else http_url


async def open_upstream(sj: SocketJob, cfg: StreamingConfig, upstream: Upstream, setting: Setting,
                        plugins: Sequence[Plugin] | None = None) -> Failure | None:
    """Open the provider's WebSocket into `sj.upstream` over the target's attempts (rewrite/exchange/keys.py), its
    key's lease held in `sj` until `sj.release()`; None on success, else the failure to answer with. `setting` and
    `plugins` are the engine's (plug-ins of their own, made from `setting`, without one)."""
    provider = sj.job.route.provider
    path, _, query = sj.target.partition("?")
    if (problem := path_problem(path)) is not None:  # it would climb out of base_url's path (protocols/urls.py)
        body = error_protocol(provider, None).error_body(400, f"Rotator: the request path {problem}")
        return Failure(FailureKind.BAD_REQUEST, f"bad request: the path {problem}", 400,
                       [("content-type", "application/json")], body,
                       retryable=False)
    headers = [(n, v) for n, v in request_headers(sj.headers) if n.lower() not in _HANDSHAKE]
    ctx = Context(sj.job, None, Clock(None, sj.job, None, math.inf), cfg, setting, Hooks(()),  # type: ignore[arg-type]
                  upstream.client)
    ctx.hooks = engaged(plugins if plugins is not None else plugins_for(setting), ctx)
    payer = ctx.hooks.decide(Paying, provider, "", True) or AS_IT_CAME

    async def on_key(ticket: Ticket) -> Failure | None:
        out = payer.apply(Outbound("GET", provider.upstream_url(path), query, list(headers), b""), ticket)
        url = ws_url(out.url + (f"?{out.query}" if out.query else ""))
        failure = await _attempt(sj, url, out.headers, cfg.first_token_timeout, payer.pooled, upstream)
        if failure is not None and failure.body:  # (a refusal that quotes the credential)
            sent = carried(out.headers, out.query, provider.credential.client_query)
            failure.body = ticket.scrubbed(failure.body, sent)
        return failure

    attempts = KeyAttempts(ctx, payer, provider, "")
    failure = await attempts.run(on_key, keep_lease=True)
    sj.lease = attempts.held
    if failure is not None and (failure.retryable or not attempts.tried):
        sj.job.note(Note.FAILED, f"giving up: {failure.reason}", reason=failure.reason)
    return failure


async def _attempt(sj: SocketJob, url: str, headers: list[tuple[str, str]], timeout: float, pooled: bool,
                   upstream: Upstream) -> Failure | None:
    """One handshake, through the egress proxy if there is one (a CONNECT tunnel, for ws:// too), TLS trusting
    what upstream calls trust; TCP, the tunnel, TLS and the upgrade together bounded by `timeout`."""
    secure = url.startswith("wss:")
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(timeout):
            if upstream.proxy is not None:
                parts = urlsplit(url)
                assert parts.hostname is not None
                sock = await tunnel_socket(upstream.proxy, parts.hostname, parts.port or (443 if secure else 80))
            sj.upstream = await connect(
                url,
                additional_headers=headers,
                subprotocols=sj.subprotocols or None,  # type: ignore[arg-type]
                open_timeout=None,
                ssl=upstream.tls if secure else None,
                sock=sock,
                proxy=None,  # a user's HTTPS_PROXY usually points at Rotator itself; the egress proxy is `sock`
                user_agent_header=None,  # the client's own User-Agent is among `headers`
                ping_interval=None,  # pass through: no keepalive of our own, as mitmproxy alone would not send one
                max_size=None,  # mitmproxy holds every message whole anyway
                logger=_LOGGER,
            )
    except InvalidStatus as e:
        r = e.response
        got = list(r.headers.raw_items())
        body = bytes(r.body or b"")
        error = registry.errors(sj.job.route.provider.family).read(r.status_code, got, body, time.time())
        failure = retry.decide(error, got, body, pooled)
        if failure is None and r.status_code >= 500:
            failure = Failure(FailureKind.STATUS, f"status {r.status_code}", r.status_code, got, body)
        return failure or Failure(FailureKind.STATUS, f"status {r.status_code}", r.status_code, got, body,
                                  retryable=False)
    except TimeoutError:
        # the key rests, as after a first-token timeout
        return Failure(FailureKind.HANDSHAKE_TIMEOUT, "handshake timeout", stalled=True)
    except NO_CONNECTION as e:  # the egress proxy would not tunnel: as for HTTP (rewrite/exchange/attempt.py)
        return Failure(FailureKind.CONNECT, f"{type(e).__name__}: {e}", stalled=True)
    except InvalidURI as e:
        return Failure(FailureKind.BAD_REQUEST, f"bad upstream URL: {e}", retryable=False)
    except ValueError as e:  # a header value the handshake cannot carry
        return Failure(FailureKind.BAD_REQUEST, f"bad upstream request: {type(e).__name__}", retryable=False)
    except OSError as e:
        return Failure(FailureKind.CONNECT, f"connect error: {type(e).__name__}", stalled=True)
    except (InvalidHandshake, EOFError) as e:
        return Failure(FailureKind.CONNECT, f"connect error: {type(e).__name__}")
    finally:
        if sock is not None and sj.upstream is None:
            sock.close()
    sj.response_headers = list(sj.upstream.response.headers.raw_items()) if sj.upstream.response else []
    return None
