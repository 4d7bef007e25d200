"""scripts/bench's tunnelled download (issue 66): what a host Rotator does not intercept costs it.

A TLS server of its own CA on 127.0.0.1 (a process of its own, on the load CPUs) serves one 100 MiB body to
`localhost`; the client downloads it over HTTPS three ways, each in turn within a repetition:

- direct: straight to the server;
- bare mitmdump intercepting it: a plain `mitmdump` (no script, `stream_large_bodies=1`: the body streamed through,
  as the bare addon streams) through a CONNECT, the client trusting mitmproxy's CA, mitmproxy the server's;
- rotator tunnelling it: the rotator column's mitmdump, which no provider of its config claims `localhost` for: the
  CONNECT's bytes pass untouched (addons/scope.py), the client trusting the server's own CA.

Each download's wall time (throughput) and the proxy's CPU time over it (its process's CPU-time clock).

    python -m bench_lib.tunnel --serve CERT KEY SIZE   # (the server: prints "PORT n", then serves until stdin ends)
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

from bench_lib.procinfo import cpu_seconds
from bench_lib.procs import Proc, child_env, free_port, pin, port_open, wait_ready
from bench_lib.stats import summary

MIB = 1 << 20
SIZE = 100 * MIB
HOST = "localhost"
CHUNK = MIB
WAYS = ("direct", "bare", "rotator")
TUNNEL_SHARE = 0.33  # the goal: a tunnel costs at most a third of the proxy CPU of an intercepted download


def serve(cert: str, key: str, size: int) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    body = bytes(CHUNK)
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"PORT {listener.getsockname()[1]}", flush=True)

    def answer(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request:
                piece = tls.recv(65536)
                if not piece:
                    return
                request += piece
            tls.sendall(f"HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n".encode())
            for start in range(0, size, CHUNK):
                tls.sendall(body[: min(CHUNK, size - start)])

    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()  # (ends with the bench)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


def download(port: int, proxy: int | None, cafile: Path, size: int) -> float:
    """Seconds one GET of the body took (through `proxy`'s CONNECT when given)."""
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", proxy or port), timeout=60)
    if proxy:
        sock.sendall(f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        if b" 200" not in head.split(b"\r\n", 1)[0]:
            raise OSError(f"CONNECT refused: {head[:100]!r}")
    with ssl.create_default_context(cafile=str(cafile)).wrap_socket(sock, server_hostname=HOST) as tls:
        tls.sendall(f"GET /download HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
        got = 0
        buffer = bytearray(CHUNK)
        while got < size + 64:  # (the head, then the body to its end: the server closes after it)
            n = tls.recv_into(buffer)
            if not n:
                break
            got += n
    if got < size:
        raise OSError(f"the download ended after {got} bytes")
    return time.perf_counter() - started


class TunnelRun:
    """The server and the bare intercepting mitmdump, started beside the bench's own processes."""

    def __init__(self, logdir: Path, confdir: Path, mitmproxy_ca: Path, mitmdump: Path, cwd: Path,
                 load_cpus, proxy_cpus, size: int = SIZE) -> None:
        from mitmproxy.certs import CertStore

        self.size, self.mitmproxy_ca = size, mitmproxy_ca
        store_dir = logdir / "tunnel-ca"
        store_dir.mkdir(exist_ok=True)
        store = CertStore.from_store(store_dir, "tunnel-bench", 2048)
        self.server_ca = store_dir / "tunnel-bench-ca-cert.pem"
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        entry = store.get_cert(HOST, [x509.DNSName(HOST)])
        cert, key = store_dir / "server-cert.pem", store_dir / "server-key.pem"
        cert.write_bytes(entry.cert.to_pem())
        key.write_bytes(entry.privatekey.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                                       serialization.NoEncryption()))
        env = child_env(PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        self.server = Proc("tunnel-server", [sys.executable, "-m", "bench_lib.tunnel", "--serve", str(cert), str(key),
                                             str(size)], logdir / "tunnel-server.log", env, cwd, stdout_pipe=True,
                           stdin_pipe=True)
        pin(self.server.pid, load_cpus)
        assert self.server.p.stdout is not None
        self.port = int(self.server.p.stdout.readline().decode().split()[1])
        self.bare_port = free_port()
        self.bare = Proc("tunnel-bare", [str(mitmdump), "--listen-host", "127.0.0.1", "--listen-port",
                                         str(self.bare_port), "--set", f"confdir={confdir}", "--set",
                                         "stream_large_bodies=1", "--set",
                                         f"ssl_verify_upstream_trusted_ca={self.server_ca}", "-q"],
                         logdir / "tunnel-bare.log", child_env(), cwd)
        pin(self.bare.pid, proxy_cpus)
        self.ready = wait_ready(self.bare, lambda: port_open(self.bare_port), 30)

    def measure(self, reps: int, rotator: tuple[int, int] | None) -> dict:
        """Per way, the repetitions' {"seconds", "mib_s", "cpu_s"}; `rotator`: its (port, pid), None when it is not
        running."""
        proxies = {"direct": None, "bare": (self.bare_port, self.bare.pid) if self.ready is None else None,
                   "rotator": rotator}
        out: dict[str, list] = {way: [] for way in WAYS}
        for rep in range(reps):
            for way in WAYS if rep % 2 == 0 else WAYS[::-1]:
                proxy = proxies[way]
                if way != "direct" and proxy is None:
                    continue
                trust = self.mitmproxy_ca if way == "bare" else self.server_ca
                cpu = cpu_seconds([proxy[1]]) if proxy else 0.0
                try:
                    seconds = download(self.port, proxy[0] if proxy else None, trust, self.size)
                except OSError as e:
                    out[way].append({"failed": str(e)})
                    continue
                used = cpu_seconds([proxy[1]]) - cpu if proxy else None
                out[way].append({"seconds": seconds, "mib_s": self.size / MIB / seconds, "cpu_s": used})
        return {"size_mib": self.size // MIB, "bare_ready": self.ready, "ways": out}

    def stop(self) -> None:
        self.bare.stop()
        self.server.stop()


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))


def summarised(result: dict) -> dict[str, dict]:
    """Per way: the median (min, max) of its throughput and proxy CPU, over the repetitions that completed."""
    out = {}
    for way, runs in result.get("ways", {}).items():
        done = [r for r in runs if "failed" not in r]
        out[way] = {"mib_s": summary([r["mib_s"] for r in done]), "cpu_s": summary([r["cpu_s"] for r in done]),
                    "failed": [r["failed"] for r in runs if "failed" in r]}
    return out
