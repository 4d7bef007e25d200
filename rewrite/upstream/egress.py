"""The egress proxy that Rotator's own upstream calls go through, for users whose network reaches the vendors only
through one: `upstream_proxy: http://user:password@host:port` in the config, or mitmproxy's `--mode upstream:URL`
(with `--upstream-auth user:password`). https:// base URLs go through a CONNECT tunnel, http:// ones as
absolute-form requests (rewrite/upstream/transport.py).

The proxy's credentials are a secret like a key: every message shows the proxy as `http://…@host:port`.
"""

from __future__ import annotations

import asyncio
import base64
import socket
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
    authority, request = _connect_request(proxy, host, port)
    writer.write(request)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as e:
        raise httpx.ProxyError(f"the upstream proxy {proxy} did not answer CONNECT {authority}") from e
    past_head = bool(buffered(reader))  # bytes read past the head
    _check_connect_answer(head, past_head, proxy, authority)
    try:
        await writer.start_tls(tls, server_hostname=host)
    except (OSError, ssl.SSLError) as e:
        raise httpx.ConnectError(f"{authority} through the upstream proxy {proxy}: {e}") from e


async def tunnel_socket(proxy: EgressProxy, host: str, port: int) -> socket.socket:
    """A plain socket to `proxy` with a CONNECT tunnel to host:port open in it, for a library that takes a socket and
    does the TLS itself (a WebSocket upgrade). The same errors as `open_tunnel`."""
    loop = asyncio.get_running_loop()
    authority, request = _connect_request(proxy, host, port)
    try:
        sock = await _connected_socket(proxy)
    except OSError as e:
        raise httpx.ConnectError(f"the upstream proxy {proxy} could not be reached: {type(e).__name__}") from e
    try:
        await loop.sock_sendall(sock, request)
        head = b""
        while b"\r\n\r\n" not in head:
            data = await loop.sock_recv(sock, 4096)
            if not data or len(head) > _MAX_ANSWER:
                raise httpx.ProxyError(f"the upstream proxy {proxy} did not answer CONNECT {authority}")
            head += data
        head, _, extra = head.partition(b"\r\n\r\n")
        _check_connect_answer(head, bool(extra), proxy, authority)
    except OSError as e:
        sock.close()
        raise httpx.ProxyError(f"the upstream proxy {proxy} did not answer CONNECT {authority}") from e
    except BaseException:
        sock.close()
        raise
    return sock


# The most of a CONNECT answer's head read before the proxy counts as not answering.
_MAX_ANSWER = 1 << 16


async def _connected_socket(proxy: EgressProxy) -> socket.socket:
    loop = asyncio.get_running_loop()
    error: OSError = OSError(f"no address for {proxy.host}")
    for family, kind, proto, _, address in await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
            return sock
        except OSError as e:
            error = e
            sock.close()
        except BaseException:
            sock.close()
            raise
    raise error


def _connect_request(proxy: EgressProxy, host: str, port: int) -> tuple[str, bytes]:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return authority, ("\r\n".join(lines) + "\r\n\r\n").encode()


def _check_connect_answer(head: bytes, more: bool, proxy: EgressProxy, authority: str) -> None:
    """Raise ProxyError unless `head` (the proxy's answer to CONNECT) opened the tunnel; `more`: bytes came after it."""
    _, _, status = head.split(b"\r\n", 1)[0].partition(b" ")
    code, _, reason = status.partition(b" ")
    if not code.isdigit():
        raise httpx.ProxyError(f"the upstream proxy {proxy} answered CONNECT {authority} with a malformed status line")
    if not 200 <= int(code) < 300:
        said = reason.decode("latin-1")[:60]
        raise httpx.ProxyError(f"the upstream proxy {proxy} refused CONNECT {authority}: {int(code)} {said}".rstrip())
    if more:  # the vendor speaks first in no protocol we tunnel
        raise httpx.ProxyError(f"the upstream proxy {proxy} sent unasked bytes after its CONNECT answer")
