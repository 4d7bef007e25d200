"""Opening the lean transport's connections (rewrite/upstream/transport.py): TCP and TLS, or through the egress
proxy; and their protocol, which takes an idle connection out of its idle list as soon as the server closes it.
Not on a request's way while its connection is reused."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import NamedTuple, Protocol

import httpx

from rewrite.internals import PushingProtocol, PushingReader
from rewrite.upstream.egress import EgressProxy, open_tunnel
from rewrite.upstream.framing import Origin


class Closing(Protocol):
    """What a connection's protocol tells of the server's end: the transport's connection (`_Connection`)."""

    def peer_closed(self) -> None: ...


class ConnectionProtocol(PushingProtocol):
    """Takes an idle connection out of its idle list as soon as the server closes it (vendors close idle
    keep-alive connections on their own schedule), instead of leaving it there until its next reuse."""

    conn: Closing | None = None

    def eof_received(self) -> bool | None:
        keep_open = super().eof_received()
        if self.conn is not None:
            self.conn.peer_closed()
        return keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.conn is not None:
            self.conn.peer_closed()
            self.conn = None  # no cycle left behind


class Opened(NamedTuple):
    reader: PushingReader
    writer: asyncio.StreamWriter
    protocol: ConnectionProtocol
    forward: EgressProxy | None  # the proxy that takes its absolute-form requests (an http origin through one)


async def connect(origin: Origin, tls: ssl.SSLContext, proxy: EgressProxy | None, timeout: float | None) -> Opened:
    """A new connection to `origin` (TLS with `tls` for https); through `proxy`, an https origin in a CONNECT
    tunnel (TLS inside it), an http origin as absolute-form requests to the proxy. Errors are httpx's."""
    scheme, host, port = origin
    if proxy is None:
        return await _open(host, port, tls if scheme == "https" else None, timeout)
    start = time.monotonic()
    opened = await _open(proxy.host, proxy.port, None, timeout, name=f"the upstream proxy {proxy}")
    if scheme != "https":
        return Opened(opened.reader, opened.writer, opened.protocol, proxy)
    left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
    try:
        await asyncio.wait_for(open_tunnel(opened.reader, opened.writer, proxy, host, port, tls), left)
    except TimeoutError as e:
        opened.writer.close()
        raise httpx.ConnectTimeout(f"connecting to {host}:{port} through the upstream proxy {proxy} timed out") from e
    except BaseException:
        opened.writer.close()
        raise
    return opened


async def _open(host: str, port: int, tls: ssl.SSLContext | None, timeout: float | None, name: str = "") -> Opened:
    name = name or f"{host}:{port}"
    loop = asyncio.get_running_loop()
    reader = PushingReader(limit=1 << 20, loop=loop)
    protocol = ConnectionProtocol(reader, loop=loop)
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(lambda: protocol, host, port, ssl=tls, server_hostname=host if tls else None),
            timeout,
        )
    except TimeoutError as e:
        raise httpx.ConnectTimeout(f"connecting to {name} timed out") from e
    except (OSError, ssl.SSLError) as e:
        raise httpx.ConnectError(f"{name}: {e}") from e
    return Opened(reader, asyncio.StreamWriter(transport, protocol, reader, loop), protocol, None)
