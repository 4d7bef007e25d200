"""A shell's everyday tools and the sites they reach, in a private namespace (tests/support/cloud_net.py) where
github.com, pypi.org, registry.npmjs.org and plain.example are one local TLS server (`ToolSites`), signed by a CA of
the test's that the namespace's system trust store holds (its /etc/ssl/certs/ca-certificates.crt, bind-mounted):
the tools trust it the way they trust the real sites, never through mitmproxy's CA.

    world = ToolWorld(tmp_path).start()             # the namespace, the sites on :443 and a fake vendor inside
    proxy = world.rotator({...}, args=("-w", str(flows)))
    world.run(["git", "clone", world.repo_url, "demo"], tool_env("shell", world, proxy), cwd=tmp_path)
    world.stop()

`tool_env(via, ...)` is a child's environment as each way of pointing it at Rotator makes it ("shell": the user
exported HTTPS_PROXY, and nothing else, in the shell); nothing of this machine's environment (its CA variables).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import zipfile
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.cloud_certs import CloudCA
from tests.support.cloud_kit import NamespacedPool
from tests.support.cloud_net import CloudNet
from tests.support.fake_vendor import FakeVendor
from tests.support.harness import ADDON, Rotator
from tests.support.with_rotator import wrapper_args

GITHUB, PYPI, NPM, PLAIN = "github.com", "pypi.org", "registry.npmjs.org", "plain.example"
SITES = (GITHUB, PYPI, NPM, PLAIN)
VIAS = ("shell", "wrapper")  # how a user points a tool at Rotator: HTTPS_PROXY exported, or scripts/with-rotator
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's: curl, git (libcurl) and OpenSSL read it
PACKAGE = "scopedemo"  # the one package the index and the registry hold, and the repository's name
PLAIN_TEXT = b"plain.example answers itself\n"
VENDOR_PORT = 8000  # the fake LLM vendor, plain HTTP on 127.0.0.1 inside


def missing_tools() -> str | None:
    """Why the tools' test cannot run here (for a skip), or None."""
    absent = [tool for tool in ("git", "curl", "npm") if shutil.which(tool) is None]
    return f"{', '.join(absent)} not installed" if absent else None


class ToolSites:
    """One TLS server for every site: a bare git repository over dumb HTTP (github.com), a PEP 503 simple index and
    its wheel (pypi.org), a package document and its tarball (registry.npmjs.org), a page (plain.example)."""

    def __init__(self, workdir: Path) -> None:
        self.files: dict[tuple[str, str], tuple[str, bytes]] = {}  # (host, path) -> content type, body
        self.seen: list[tuple[str, str]] = []  # (host, path) of each request, in order
        self._repo(workdir / "repo")
        self._index()
        self._registry()
        self.files[PLAIN, "/"] = ("text/plain", PLAIN_TEXT)
        self.site: StaticSite | None = None

    def _repo(self, workdir: Path) -> None:
        work, bare = workdir / "work", workdir / f"{PACKAGE}.git"
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example", "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "init", "-q", str(work)], check=True)
        (work / "README").write_text("cloned through a tunnel\n")
        subprocess.run([*git, "-C", str(work), "add", "README"], check=True)
        subprocess.run([*git, "-C", str(work), "commit", "-qm", "first"], check=True)
        subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)
        subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
        for path in bare.rglob("*"):
            if path.is_file():
                self.files[GITHUB, f"/scope/{bare.name}/{path.relative_to(bare)}"] = (
                    "application/octet-stream", path.read_bytes())

    def _index(self) -> None:
        name = f"{PACKAGE}-1.0-py3-none-any.whl"
        wheel = _wheel()
        link = f"https://{PYPI}/packages/{name}#sha256={hashlib.sha256(wheel).hexdigest()}"
        page = f'<!DOCTYPE html><html><body><a href="{link}">{name}</a></body></html>'.encode()
        self.files[PYPI, f"/simple/{PACKAGE}/"] = ("text/html", page)
        self.files[PYPI, f"/packages/{name}"] = ("application/octet-stream", wheel)

    def _registry(self) -> None:
        tarball = _tarball()
        url = f"https://{NPM}/{PACKAGE}/-/{PACKAGE}-1.0.0.tgz"
        dist = {"tarball": url, "shasum": hashlib.sha1(tarball).hexdigest(),  # noqa: S324 - npm's own field
                "integrity": "sha512-" + b64encode(hashlib.sha512(tarball).digest()).decode()}
        document = {"name": PACKAGE, "dist-tags": {"latest": "1.0.0"},
                    "versions": {"1.0.0": {"name": PACKAGE, "version": "1.0.0", "dist": dist}}}
        self.files[NPM, f"/{PACKAGE}"] = ("application/json", json.dumps(document).encode())
        self.files[NPM, f"/{PACKAGE}/-/{PACKAGE}-1.0.0.tgz"] = ("application/octet-stream", tarball)

    def serve(self, net: CloudNet, ca: CloudCA) -> ToolSites:
        sock = net.listen(443)
        sock.setblocking(True)
        self.site = StaticSite(self.files, ca.server_context(SITES), sock)
        self.seen = self.site.seen
        return self

    def stop(self) -> None:
        if self.site is not None:
            self.site.stop()


class StaticSite:
    """An HTTPS server of fixed files, by (Host, path), on a listening socket of the caller's; `seen` records each
    request's (host, path)."""

    def __init__(self, files: dict[tuple[str, str], tuple[str, bytes]], tls: ssl.SSLContext,
                 sock: socket.socket) -> None:
        self.seen: list[tuple[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                host, path = self.headers.get("host", "").split(":")[0].lower(), self.path.partition("?")[0]
                site.seen.append((host, path))
                content_type, body = files.get((host, path), ("text/plain", b""))
                self.send_response(200 if (host, path) in files else 404)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = sock.getsockname()[1]
        self.httpd = ThreadingHTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
        self.httpd.daemon_threads, self.httpd.block_on_close = True, False
        self.httpd.socket = tls.wrap_socket(sock, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _wheel() -> bytes:
    info = f"{PACKAGE}-1.0.dist-info"
    files = {f"{PACKAGE}/__init__.py": b"",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"]).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return out.getvalue()


def _tarball() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in {"package/package.json": json.dumps({"name": PACKAGE, "version": "1.0.0"}).encode(),
                           "package/index.js": b"module.exports = 'tunnelled';\n"}.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return out.getvalue()


class ToolWorld:
    """The namespace (the sites' names on 127.0.0.1, the test CA in its system store), the sites on :443 inside, a
    fake LLM vendor on 127.0.0.1:VENDOR_PORT inside, and namespaced Rotators."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ca = CloudCA(workdir / "ca")
        self.system_bundle = workdir / "ca-certificates.crt"  # the machine's roots and the test CA
        self.system_bundle.write_bytes(Path(SYSTEM_BUNDLE).read_bytes() + self.ca.ca_file.read_bytes())
        self.net = CloudNet(workdir / "net", SITES, mounts=((self.system_bundle, SYSTEM_BUNDLE),))
        self.sites = ToolSites(workdir / "sites")
        self.pool: NamespacedPool | None = None
        self.vendor: FakeVendor | None = None

    def start(self) -> ToolWorld:
        try:
            self.net.start()
            self.sites.serve(self.net, self.ca)
            self.vendor = FakeVendor(sock=self.net.listen(VENDOR_PORT)).start()
            self.pool = NamespacedPool(self.workdir / "rotator", self.net)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def repo_url(self) -> str:
        return f"https://{GITHUB}/scope/{PACKAGE}.git"

    def rotator(self, config: dict, args: tuple[str, ...] = ()) -> Rotator:
        """A fresh `mitmdump -s addons/rotator.py` inside (stopped by `stop`)."""
        assert self.pool is not None, "the world is not started"
        return Rotator(self.pool.fresh(config, None, args, ADDON))

    def combined_bundle(self, proxy: Rotator) -> Path:
        """The system's roots with mitmproxy's CA added (what an LLM client trusts)."""
        bundle = self.workdir / f"combined-{proxy.port}.pem"
        bundle.write_bytes(self.system_bundle.read_bytes() + proxy.ca_cert.read_bytes())
        return bundle

    def run(self, argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
        return self.net.run(argv, env=env, cwd=cwd, timeout=timeout)

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.vendor is not None:
            self.vendor.stop()
        self.sites.stop()
        self.net.stop()


def tool_env(via: str, world: ToolWorld, proxy: Rotator, home: Path) -> dict[str, str]:
    """A tool's environment when the user pointed it at Rotator `via`: "shell" (HTTPS_PROXY exported, and nothing
    else) or "wrapper" (nothing of the proxy: scripts/with-rotator adds it, see `command`), its own trust untouched.
    npm's way to trust a CA is its own (Node reads no system store); pip's is its `cert` setting (its bundled roots
    are certifi's): both name the namespace's system bundle, never mitmproxy's CA."""
    if via not in VIAS:
        raise ValueError(f"no way of pointing a tool at Rotator named {via!r}")
    home.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "LANG": "C.UTF-8",
           "NODE_EXTRA_CA_CERTS": SYSTEM_BUNDLE, "PIP_CERT": SYSTEM_BUNDLE,
           "npm_config_cache": str(home / "npm-cache"), "npm_config_update_notifier": "false",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}
    return env | {"HTTPS_PROXY": proxy.url} if via == "shell" else env


def command(via: str, argv: list[str], proxy: Rotator) -> list[str]:
    """`argv` as the user runs it `via` the shell (as it is) or the wrapper (after scripts/with-rotator)."""
    return [*wrapper_args(proxy), *argv] if via == "wrapper" else argv
