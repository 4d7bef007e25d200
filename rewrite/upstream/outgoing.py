"""A request as the lean transport (rewrite/upstream/transport.py) sends it, and its bytes on the wire."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import httpx

from rewrite.intake.big_json import Upload
from rewrite.upstream.egress import EgressProxy

_CRLF = b"\r\n"

Origin = tuple[str, str, int]


@dataclass(slots=True)
class Outgoing:
    """A request as this transport sends it. UpstreamClient builds the engine's requests as these directly:
    per request, httpx.Request's URL and header models cost more than sending it (scripts/bench)."""

    method: str
    origin: Origin
    netloc: bytes  # the Host header's value, and the authority of an absolute-form target
    target: bytes  # path and query, as on the request line
    headers: list[tuple[bytes, bytes]]  # in order; Content-Length, Transfer-Encoding and Connection are ours
    content: bytes | Upload  # (an Upload: a large body, written a piece at a time)
    connect_timeout: float | None = None


# A request target httpx.URL keeps exactly as it is (RFC 3986 characters, valid percent-escapes, no fragment; and no
# dot segment, checked apart).
_PLAIN_TARGET = re.compile(r"/(?:[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*\Z")


def outgoing(method: str, url: str, headers: list[tuple[bytes, bytes]], content: bytes | Upload,
             connect_timeout: float | None) -> Outgoing | None:
    """The request httpx.Request(method, url, headers=headers, content=content) would be, as this transport sends
    it; None for a URL that httpx would normalise (it is then built by httpx)."""
    scheme_end = url.find("://")
    path_start = url.find("/", scheme_end + 3)
    if scheme_end < 0 or path_start < 0 or not _PLAIN_TARGET.match(url, path_start) or "/." in url[path_start:]:
        return None  # ("/." may be a dot segment, which httpx removes)
    where = _origin(url[:path_start])
    if where is None:
        return None
    origin, netloc = where
    return Outgoing(method, origin, netloc, url[path_start:].encode("ascii"), headers, content, connect_timeout)


@lru_cache(maxsize=256)
def _origin(prefix: str) -> tuple[Origin, bytes] | None:
    if any(c in prefix for c in "?#@\\") or not prefix.isascii():
        return None
    try:
        url = httpx.URL(prefix)
    except httpx.InvalidURL:
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    return _origin_of(url), url.netloc


def _origin_of(url: httpx.URL) -> Origin:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def on_the_wire(request: Outgoing, forward: EgressProxy | None = None) -> bytes:
    """The request's bytes; through an egress proxy (plain http), in absolute form with the proxy's credential.
    A request without a Host header gets one first, where httpx puts it."""
    content = request.content
    return wire_head(request, forward) + (b"" if isinstance(content, Upload) else content)


def wire_head(request: Outgoing, forward: EgressProxy | None = None) -> bytes:
    """The request's head as `on_the_wire` writes it, without the body (written after it as it is: joining a large
    body to its head would copy it once more)."""
    content = request.content
    target = request.target
    if forward is not None:
        target = b"%s://%s%s" % (request.origin[0].encode(), request.netloc, target)
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), target)]
    has_host = False
    for name, value in request.headers:
        lower = name.lower()
        if lower in (b"content-length", b"transfer-encoding", b"connection"):
            continue
        has_host |= lower == b"host"
        lines.append(name + b": " + value)
    if not has_host:
        lines.insert(1, b"Host: " + request.netloc)
    if content or request.method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        lines.append(b"Content-Length: %d" % (content.size if isinstance(content, Upload) else len(content)))
    if forward is not None and forward.authorization:
        lines.append(b"Proxy-Authorization: " + forward.authorization.encode())
    return _CRLF.join(lines) + _CRLF + _CRLF


def from_httpx(request: httpx.Request, content: bytes) -> Outgoing:
    url = request.url
    return Outgoing(request.method, _origin_of(url), url.netloc, url.raw_path, request.headers.raw, content,
                    request.extensions.get("timeout", {}).get("connect"))
