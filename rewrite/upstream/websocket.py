"""Opening a provider's WebSocket for a passed-through upgrade: the handshake attempts and their retries.

Each attempt is bounded by `first_token_timeout` (TCP, TLS and the upgrade together). A handshake that stalls,
fails to connect, or is answered 401/403 (with a pool), 408, 409, 429 or 5xx is retried on the next key, up to
`first_token_retries` times, with the same key benching and waits as HTTP requests (rewrite/policy/retry.py). Any other
answer, or the last failure, is what the client gets.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import certifi
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from protocols.urls import path_problem
from rewrite.config import StreamingConfig
from rewrite.exchange.exchange import Job, error_protocol, every_key_resting
from rewrite.policy import retry
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure
from rewrite.providers.credentials import mask
from rewrite.upstream.client import request_headers

# Handshake headers the WebSocket client library writes itself for each attempt.
_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)
_TLS = ssl.create_default_context(cafile=certifi.where())


@dataclass
class SocketJob:
    """One passed-through upgrade. Holds the client's real handshake headers: never put these in a flow."""

    job: Job
    headers: list[tuple[str, str]]  # as the client sent them, credential included
    target: str  # path and query, as the client sent them
    upstream: ClientConnection | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)  # the provider's 101, for the client

    @property
    def subprotocols(self) -> list[str]:
        offered = ",".join(v for n, v in self.headers if n.lower() == "sec-websocket-protocol")
        return [p.strip() for p in offered.split(",") if p.strip()]


def ws_url(http_url: str) -> str:
    return "ws" + http_url[4:] if http_url.startswith("http") else http_url


async def open_upstream(sj: SocketJob, cfg: StreamingConfig) -> Failure | None:
    """Open the provider's WebSocket into `sj.upstream`; None on success, else the failure to answer with."""
    provider = sj.job.route.provider
    pool = provider.pool
    path, _, query = sj.target.partition("?")
    if (problem := path_problem(path)) is not None:  # it would climb out of base_url's path (protocols/urls.py)
        body = error_protocol(provider, None).error_body(400, f"Rotator: the request path {problem}")
        return Failure(FailureKind.BAD_REQUEST, f"bad request: the path {problem}", 400,
                       [("content-type", "application/json")], body, retryable=False)
    headers = [(n, v) for n, v in request_headers(sj.headers) if n.lower() not in _HANDSHAKE]
    attempts = 1 + cfg.first_token_retries
    failure: Failure | None = None
    key: str | None = None
    for n in range(attempts):
        wait = 0.0
        prev = key
        if pool is not None:
            key, wait = pool.acquire(avoid=prev)
            sj.job.key = mask(key)
        wait = retry.wait_before(n, wait, failure, pool is None or key == prev, pool is not None,
                                 cfg.first_token_timeout)
        if wait is None:
            break
        if wait:
            await asyncio.sleep(wait)
        sent, q = provider.authorize(headers, query, key) if key is not None else (headers, query)
        url = ws_url(provider.upstream_url(path) + (f"?{q}" if q else ""))
        failure = await _attempt(sj, url, sent, cfg.first_token_timeout, pool is not None)
        if failure is None:
            return None
        if pool is not None and key is not None:
            pool.failed(key, failure)
        if not failure.retryable or n + 1 == attempts:
            break
        sj.job.note(Note.RETRY, f"handshake attempt {n + 1} failed ({failure.reason}); retrying", attempt=n + 1,
                    reason=failure.reason, key=sj.job.key)
    if failure is None:  # every key rests longer than a handshake may wait: nothing was sent upstream
        sj.job.key = None
        failure = every_key_resting(provider, None, pool.resting())
        sj.job.note(Note.FAILED, f"giving up: {failure.reason}", reason=failure.reason)
        return failure
    if failure.retryable:
        sj.job.note(Note.FAILED, f"giving up: {failure.reason}", reason=failure.reason)
    return failure


async def _attempt(sj: SocketJob, url: str, headers: list[tuple[str, str]], timeout: float,
                   pooled: bool) -> Failure | None:
    try:
        sj.upstream = await connect(
            url,
            additional_headers=headers,
            subprotocols=sj.subprotocols or None,  # type: ignore[arg-type]
            open_timeout=timeout,
            ssl=_TLS if url.startswith("wss:") else None,
            proxy=None,  # a user's HTTPS_PROXY usually points at Rotator itself
            user_agent_header=None,  # the client's own User-Agent is among `headers`
            ping_interval=None,  # pass through: no keepalive of our own, as mitmproxy alone would not send one
            max_size=None,  # mitmproxy holds every message whole anyway
        )
    except InvalidStatus as e:
        r = e.response
        got = list(r.headers.raw_items())
        body = bytes(r.body or b"")
        failure = retry.from_status(r.status_code, got, body, pooled)
        if failure is None and r.status_code >= 500:
            failure = Failure(FailureKind.STATUS, f"status {r.status_code}", r.status_code, got, body)
        return failure or Failure(FailureKind.STATUS, f"status {r.status_code}", r.status_code, got, body,
                                  retryable=False)
    except TimeoutError:
        # the key rests, as after a first-token timeout
        return Failure(FailureKind.HANDSHAKE_TIMEOUT, "handshake timeout", stalled=True)
    except InvalidURI as e:
        return Failure(FailureKind.BAD_REQUEST, f"bad upstream URL: {e}", retryable=False)
    except ValueError as e:  # a header value the handshake cannot carry
        return Failure(FailureKind.BAD_REQUEST, f"bad upstream request: {type(e).__name__}", retryable=False)
    except OSError as e:
        return Failure(FailureKind.CONNECT, f"connect error: {type(e).__name__}", stalled=True)
    except (InvalidHandshake, EOFError) as e:
        return Failure(FailureKind.CONNECT, f"connect error: {type(e).__name__}")
    sj.response_headers = list(sj.upstream.response.headers.raw_items()) if sj.upstream.response else []
    return None
