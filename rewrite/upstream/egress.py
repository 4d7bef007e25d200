"""The egress proxy that Rotator's own upstream calls go through, for users whose network reaches the vendors only
through one: `upstream_proxy: http://user:password@host:port` in the config, or mitmproxy's `--mode upstream:URL`
(with `--upstream-auth user:password`). https:// base URLs go through a CONNECT tunnel, http:// ones as
absolute-form requests (rewrite/upstream/transport.py).

The proxy's credentials are a secret like a key: every message shows the proxy as `http://…@host:port`.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import httpx

from rewrite.internals import buffered


@dataclass(frozen=True)
class EgressProxy:
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # the Proxy-Authorization value, if any

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'…@' if self.authorization else ''}{host}:{self.port}"


def basic_authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def parse_proxy_url(url: str) -> EgressProxy:
    """An `http://[user:password@]host[:port]` URL as an EgressProxy. Errors never repeat the URL (it may hold a
    password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("must be a URL of the form http://[user:password@]host[:port]") from None
    if parts.scheme != "http":
        raise ValueError("must be an http:// proxy URL (the proxy is spoken to in plain HTTP; "
                         "https:// base URLs go through it in a CONNECT tunnel)")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be http://[user:password@]host[:port], without a path")
    auth = None
    if parts.username is not None:
        auth = basic_authorization(unquote(parts.username), unquote(parts.password or ""))
    return EgressProxy(parts.hostname, port or 80, auth)


async def open_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proxy: EgressProxy, host: str,
                      port: int, tls: ssl.SSLContext) -> None:
    """On a connection to `proxy`: a CONNECT tunnel to host:port, then TLS with the vendor inside it. Errors are
    httpx's: ProxyError when the proxy will not tunnel, ConnectError when the vendor's TLS fails."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as e:
        raise httpx.ProxyError(f"the upstream proxy {proxy} did not answer CONNECT {authority}") from e
    _, _, status = head.split(b"\r\n", 1)[0].partition(b" ")
    code, _, reason = status.partition(b" ")
    if not code.isdigit():
        raise httpx.ProxyError(f"the upstream proxy {proxy} answered CONNECT {authority} with a malformed status line")
    if not 200 <= int(code) < 300:
        said = reason.decode("latin-1")[:60]
        raise httpx.ProxyError(f"the upstream proxy {proxy} refused CONNECT {authority}: {int(code)} {said}".rstrip())
    if buffered(reader):  # (the vendor speaks first in no protocol we tunnel)
        raise httpx.ProxyError(f"the upstream proxy {proxy} sent unasked bytes after its CONNECT answer")
    try:
        await writer.start_tls(tls, server_hostname=host)
    except (OSError, ssl.SSLError) as e:
        raise httpx.ConnectError(f"{authority} through the upstream proxy {proxy}: {e}") from e
