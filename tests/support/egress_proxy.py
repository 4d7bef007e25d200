"""An egress proxy for tests, on 127.0.0.1, and a TLS front for the plain-HTTP fake vendor.

`ConnectProxy` speaks HTTP proxy: CONNECT tunnels, and absolute-form requests (one per connection). Like a
corporate egress proxy it reaches only the hosts it is told about (`routes`: "host:port" -> the address it really
connects to, None for its TLS front), so a request for the caller's own loopback is refused, and it may require
Basic credentials. It records every request it was asked for.

`TLSFront` is a TLS server for one host name, with a CA of its own (`ca_file`, for the client to trust), that
passes the decrypted bytes to a plain-HTTP server: an https base URL can then be tunnelled end to end.

    front = TLSFront(tmp_path, "api.vendor.test", ("127.0.0.1", fake_vendor.port))
    proxy = ConnectProxy({"api.vendor.test:443": None}, credentials=("corp", "pw"), front=front).start()
    ... proxy.seen[0].method == "CONNECT", proxy.seen[0].target == "api.vendor.test:443"
    proxy.stop()   # stops the front too
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy.certs import CertStore

_REASONS = {200: "Connection established", 400: "Bad Request", 403: "Forbidden", 407: "Proxy Authentication Required",
            502: "Bad Gateway"}


@dataclass
class Asked:
    """One request the proxy received."""

    method: str
    target: str  # "host:port" for CONNECT, the absolute URL otherwise
    proxy_authorization: str | None
    status: int  # what the proxy answered (200: tunnelled / forwarded)


class TLSFront:
    def __init__(self, workdir: Path, hostname: str, target: tuple[str, int]) -> None:
        store = CertStore.from_store(workdir, "egress-test", 2048)
        self.ca_file = workdir / "egress-test-ca-cert.pem"
        entry = store.get_cert(hostname, [x509.DNSName(hostname)])
        chain = workdir / f"{hostname}.pem"
        chain.write_bytes(entry.cert.to_pem() + entry.privatekey.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(chain)
        self.target = target
        self.address: tuple[str, int] | None = None
        self.connections = 0

    async def serve(self) -> asyncio.AbstractServer:
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self._tls)
        self.address = server.sockets[0].getsockname()[:2]
        return server

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await splice(reader, writer, up_reader, up_writer)


class ConnectProxy:
    def __init__(self, routes: dict[str, tuple[str, int] | None], credentials: tuple[str, str] | None = None,
                 front: TLSFront | None = None) -> None:
        self.routes = dict(routes)
        self.authorization = (
            "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode() if credentials else None
        )
        self.front = front
        self.seen: list[Asked] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle: a background thread with its own event loop, like the fake vendor

    def start(self) -> ConnectProxy:
        started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(started)), name="egress-proxy",
                                        daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the egress proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    async def _run(self, started: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        servers = [await asyncio.start_server(self._serve, "127.0.0.1", 0)]
        self.port = servers[0].sockets[0].getsockname()[1]
        if self.front is not None:
            servers.append(await self.front.serve())
            self.routes = {k: (v if v is not None else self.front.address) for k, v in self.routes.items()}
        started.set()
        await self._stopping.wait()
        for server in servers:
            server.close()

    # --- one client connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = (request_line.split(" ", 2) + ["", ""])[:3]
        fields = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]
        authorization = next((v for n, v in fields if n.lower() == "proxy-authorization"), None)
        if method == "CONNECT":
            authority = target
        else:
            url = urlsplit(target)
            authority = f"{url.hostname}:{url.port or 80}" if url.scheme == "http" and url.hostname else ""
        address = self.routes.get(authority)
        if not authority:
            status = 400
        elif self.authorization is not None and authorization != self.authorization:
            status = 407
        else:
            status = 200 if address is not None else 403
        self.seen.append(Asked(method, target, authorization, status))
        if status != 200:
            challenge = 'Proxy-Authenticate: Basic realm="egress"\r\n' if status == 407 else ""
            writer.write(f"HTTP/1.1 {status} {_REASONS[status]}\r\n{challenge}Content-Length: 0\r\n"
                         "Connection: close\r\n\r\n".encode())
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*address)
        except OSError:
            self.seen[-1].status = 502
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:  # forwarded in origin-form, the proxy's own headers left out, one request per connection
            url = urlsplit(target)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [f"{n}: {v}" for n, v in fields
                    if n.lower() not in ("proxy-authorization", "proxy-connection", "connection")]
            up_writer.write("\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
                            .encode("latin-1"))
        await splice(reader, writer, up_reader, up_writer)


async def splice(a_reader, a_writer, b_reader, b_writer) -> None:
    """Copy bytes both ways until either side closes, then close both."""

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    await asyncio.gather(copy(a_reader, b_writer), copy(b_reader, a_writer))
