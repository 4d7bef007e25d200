"""The upstream HTTP clients and the header hygiene around them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

# Headers that belong to one connection, or that httpx sets itself (it decodes content-encoding for us).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_REQUEST_DROP = HOP_BY_HOP | {"accept-encoding", "x-rotator-job"}
_RESPONSE_DROP = HOP_BY_HOP | {"content-encoding"}


def request_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(n, v) for n, v in headers if n.lower() not in _REQUEST_DROP]


def response_headers(headers: httpx.Headers | list[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    return [(n, v) for n, v in items if n.lower() not in _RESPONSE_DROP]


def new_client() -> httpx.AsyncClient:
    # trust_env=False: a user's HTTPS_PROXY usually points at Rotator itself, and SSL_CERT_FILE at mitmproxy's CA.
    return httpx.AsyncClient(
        trust_env=False,
        timeout=httpx.Timeout(connect=15.0, read=None, write=60.0, pool=None),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=32, keepalive_expiry=60.0),
        follow_redirects=False,
    )


class Upstream:
    """A few pooled httpx clients, each request leased to the least busy one.

    httpcore's pool scans every one of its connections (and asks each idle one whether its socket is readable)
    on every request and every response close, which grows with the square of concurrent streams; several
    smaller pools keep that scan short. Sequential requests still reuse the first client's keep-alive connections.
    """

    def __init__(self, shards: int = 8) -> None:
        self._clients: list[httpx.AsyncClient | None] = [None] * shards
        self._busy = [0] * shards

    @contextmanager
    def lease(self) -> Iterator[httpx.AsyncClient]:
        i = min(range(len(self._busy)), key=self._busy.__getitem__)
        client = self._clients[i]
        if client is None:
            client = self._clients[i] = new_client()
        self._busy[i] += 1
        try:
            yield client
        finally:
            self._busy[i] -= 1

    async def aclose(self) -> None:
        for i, client in enumerate(self._clients):
            if client is not None:
                await client.aclose()
                self._clients[i] = None
