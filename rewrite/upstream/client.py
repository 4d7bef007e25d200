"""The upstream HTTP client and the header hygiene around it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any, Protocol

import certifi
import httpx

from rewrite.intake.big_json import Upload
from rewrite.upstream.egress import EgressProxy
from rewrite.upstream.framing import Outgoing, outgoing
from rewrite.upstream.transport import LeanTransport

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


class UnsendableHeader(ValueError):
    """A header that cannot go upstream as it is: its name or value would end the header line early, or has a
    character that is no byte on the wire. The message names the header, never its value."""


_LINE_BREAKS = ("\r", "\n", "\0")


def encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Headers as their bytes on the wire: a client's header byte for byte (the loopback server reads them as
    latin-1), and a refusal for a CR, LF or NUL, which would let a value add a header of its own."""
    out = []
    for name, value in headers:
        if any(c in name or c in value for c in _LINE_BREAKS):
            raise UnsendableHeader(f"header {name[:40]!r} has a line break or NUL in it")
        try:
            out.append((name.encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise UnsendableHeader(f"header {name[:40]!r} has a character that is not a byte") from None
    return out


def response_headers(headers: httpx.Headers | list[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    return [(n, v) for n, v in items if n.lower() not in _RESPONSE_DROP]


# What Rotator asks upstreams for in place of the client's accept-encoding (dropped: Rotator decodes and re-frames
# the body). Not httpx's default "gzip, deflate, br, zstd": LLM answers are small next to the time they take to
# generate, a compressing server may hold back SSE events to fill a block, every event would cost a decode, and a
# body that does not decode is one more way for an answer to break. An upstream that compresses anyway is decoded.
ACCEPT_ENCODING = "identity"


def tls_context(extra_ca: str | None = None) -> ssl.SSLContext:
    """certifi's bundle, plus the PEM certificates in `extra_ca` (e.g. a TLS-inspecting egress proxy's CA)."""
    context = ssl.create_default_context(cafile=certifi.where())
    if extra_ca:
        context.load_verify_locations(cafile=extra_ca)
    return context


class Sender(Protocol):
    """What the engine sends its upstream requests with: an UpstreamClient, or any httpx.AsyncClient (the engine's
    tests give one with httpx.MockTransport). `send` takes what `build_request` gave."""

    def build_request(self, method: str, url: str, *, headers: Any, content: Any) -> Any: ...

    async def send(self, request: Any, *, stream: bool = False) -> httpx.Response: ...


# What httpx.AsyncClient(headers={"accept-encoding": ACCEPT_ENCODING}) sends by default, in its order.
DEFAULT_HEADERS = [(b"Accept", b"*/*"), (b"Connection", b"keep-alive"),
                   (b"User-Agent", b"python-httpx/" + httpx.__version__.encode()),
                   (b"accept-encoding", ACCEPT_ENCODING.encode())]
# Connect within this; no read or pool limit (the engine keeps its own clocks), and a stuck upload fails.
TIMEOUT = httpx.Timeout(connect=15.0, read=None, write=60.0, pool=None)


class UpstreamClient:
    """The engine's upstream client: the lean transport, with the default headers every request carries.

    Not an httpx.AsyncClient: Rotator uses none of what httpx's `send` adds around the transport (auth flows,
    redirects, event hooks, the cookie jar), and per request that, and httpx.Request's URL and header models, cost
    more than sending the request (scripts/bench). Without a jar, a cookie set on one client's answer is never sent
    upstream with another client's request. Its answers are httpx.Responses whose stream is the transport's
    FastBody (rewrite/upstream/transport.py)."""

    def __init__(self, transport: LeanTransport, headers: list[tuple[bytes, bytes]] = DEFAULT_HEADERS,
                 timeout: httpx.Timeout = TIMEOUT) -> None:
        self.lean = transport
        self._defaults = headers
        self.timeout = timeout
        self.is_closed = False

    def build_request(self, method: str, url: str, *, headers: list[tuple[bytes, bytes]] | None = None,
                      content: bytes | Upload = b"") -> httpx.Request | Outgoing:
        """The request as httpx would build it (the client's default headers the request lacks, then the
        request's): as the lean transport's Outgoing, or as an httpx.Request for a URL that httpx normalises."""
        headers = headers or []
        present = {n.lower() for n, _ in headers}
        merged = [(n, v) for n, v in self._defaults if n.lower() not in present]
        merged += headers
        request = outgoing(method, url, merged, content, self.timeout.connect)
        if request is None:
            if isinstance(content, Upload) and content.whole:  # (a held body's pieces: one length)
                content = b"".join(content.pieces)
            return httpx.Request(method, url, headers=merged, content=content,
                                 extensions={"timeout": self.timeout.as_dict()})
        return request

    async def send(self, request: httpx.Request | Outgoing, *, stream: bool = False) -> httpx.Response:
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        if isinstance(request, Outgoing):
            response = await self.lean.send(request)
        else:
            response = await self.lean.handle_async_request(request)
            response.request = request
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response

    async def aclose(self) -> None:
        self.is_closed = True
        await self.lean.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def new_client(proxy: EgressProxy | None = None, extra_ca: str | None = None) -> UpstreamClient:
    # No environment: a user's HTTPS_PROXY usually points at Rotator itself, and SSL_CERT_FILE at mitmproxy's CA
    # (LeanTransport verifies TLS against certifi's bundle). An egress proxy is Rotator's own setting.
    return UpstreamClient(LeanTransport(tls_context(extra_ca) if extra_ca else None, proxy))


class Upstream:
    """The upstream client, created on first use (inside the running event loop)."""

    def __init__(self) -> None:
        self._client: UpstreamClient | None = None
        self.proxy: EgressProxy | None = None
        self.extra_ca: str | None = None
        self._tls: ssl.SSLContext | None = None
        self._closing: set[asyncio.Task] = set()

    @property
    def client(self) -> UpstreamClient:
        if self._client is None:
            self._client = new_client(self.proxy, self.extra_ca)
        return self._client

    @property
    def tls(self) -> ssl.SSLContext:
        """The TLS trust upstream calls use (certifi's bundle and `upstream_ca`), for what is not sent by the client
        (a WebSocket upgrade)."""
        if self._tls is None:
            self._tls = tls_context(self.extra_ca)
        return self._tls

    def configure(self, proxy: EgressProxy | None, extra_ca: str | None) -> None:
        """Use this egress proxy and CA file from the next request on (requests under way finish as they are)."""
        if (proxy, extra_ca) == (self.proxy, self.extra_ca):
            return
        self.proxy, self.extra_ca, self._tls = proxy, extra_ca, None
        old, self._client = self._client, None
        if old is not None:
            with contextlib.suppress(RuntimeError):  # (no running loop: nothing was ever sent with it)
                task = asyncio.get_running_loop().create_task(old.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
