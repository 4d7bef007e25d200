"""What scripts/cluster starts and how: the programs it needs, the CA made once, the loopback Redis, the HAProxy
config, and one child process with its log."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "addons" / "rotator.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
SBIN = "/usr/sbin:/sbin"  # where Debian puts haproxy and redis-server, off a normal user's PATH
CHECK_INTERVAL_MS = 1000  # HAProxy's health check of each worker: a dead one is out of rotation within ~2 s
# Between HAProxy and a worker, a stream may be quiet for as long as Rotator's own idle timeout allows.
TUNNEL_TIMEOUT = "1h"


class ClusterError(Exception):
    """Something scripts/cluster cannot do; the message is one line."""


def program(name: str, package: str) -> str:
    """The path of `name`: installed with apt-get from Debian's `package` when missing and run as root."""
    search = f"{os.environ.get('PATH', '')}:{SBIN}"
    found = shutil.which(name, path=search)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"rotator: installing {package} (apt-get)", file=sys.stderr, flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, **quiet)
        found = shutil.which(name, path=search)
    if found is None:
        raise ClusterError(f"scripts/cluster needs {name}: install it with `sudo apt-get install {package}` "
                           f"(or your system's {package} package)")
    return found


def make_ca(confdir: Path) -> Path:
    """mitmproxy's CA in `confdir`, made now if it is not there: workers started together on an empty confdir
    would each make their own, and clients would trust only one of them."""
    from mitmproxy.certs import CertStore

    confdir = confdir.expanduser()
    confdir.mkdir(parents=True, exist_ok=True)
    CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / "mitmproxy-ca-cert.pem"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens(pid: int, port: int, host: str = "127.0.0.1") -> bool:
    """Whether process `pid` itself listens on `port`: a connection alone could reach another program that took the port
    between free_port() and the child's bind. (Where /proc is missing, a connection is all there is to go on.)"""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return listening(port, host)
    sockets = set()
    for table in tables:
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    sockets.add(f"socket:[{fields[9]}]")
    return bool(sockets) and holds(pid, sockets)


def holds(pid: int, sockets: set[str]) -> bool:
    """Whether process `pid` has one of `sockets` ("socket:[inode]") open. (Its other descriptors open and close
    meanwhile: one that closed as it was read is passed over, not taken for the answer.)"""
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in sockets:
                    return True
    return False


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.5)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_command(binary: str, path: Path, data: Path) -> list[str]:
    """A Redis on a Unix socket at `path` only (no TCP port: only this user reaches it), whose data lives in `data`
    as an append-only file, so rests survive a restart; only cache entries (they have a TTL) are evicted under memory
    pressure, never the pools' state."""
    return [binary, "--port", "0", "--unixsocket", str(path), "--unixsocketperm", "700", "--dir", str(data),
            "--appendonly", "yes", "--save", "", "--daemonize", "no", "--maxmemory-policy", "volatile-lru",
            "--logfile", ""]


def haproxy_config(host: str, port: int, workers: list[int]) -> str:
    """HAProxy in TCP mode on the user's address, each client connection to the worker with the fewest."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    servers = "".join(f"    server worker-{n} 127.0.0.1:{p}\n" for n, p in enumerate(workers, 1))
    return (
        "# Written by scripts/cluster at each start.\n"
        # (no maxconn: HAProxy sizes it from the file descriptor limit it is given)
        "defaults\n"
        "    mode tcp\n"
        "    timeout connect 5s\n"
        f"    timeout client {TUNNEL_TIMEOUT}\n"
        f"    timeout server {TUNNEL_TIMEOUT}\n"
        "    timeout check 2s\n"
        # A worker that died since its last health check refuses the connection: try another one.
        "    option redispatch\n"
        "    retries 2\n"
        "frontend rotator\n"
        f"    bind {bind}\n"
        "    default_backend workers\n"
        "backend workers\n"
        "    balance leastconn\n"
        f"    default-server check inter {CHECK_INTERVAL_MS}ms fall 2 rise 1\n"
        f"{servers}"
    )


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def _dies_with_launcher() -> None:
    """(In the child.) Killed when scripts/cluster ends, however it ends, so nothing it started is left behind."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One process scripts/cluster started, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None):
        self.name, self.argv, self.log = name, argv, log
        self.began = time.monotonic()
        self.since = log.stat().st_size if log.exists() else 0  # where this run's output begins in the log
        with log.open("ab") as out:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True, preexec_fn=_dies_with_launcher)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def output(self) -> str:
        """What this run of the child printed (a restart appends to the same log)."""
        with contextlib.suppress(OSError), self.log.open("rb") as f:
            f.seek(self.since)
            return f.read().decode(errors="replace")
        return ""

    def tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def terminate(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def wait_until(ready, children: list[Child], timeout: float) -> None:
    """Wait for `ready()`; a child that exits meanwhile, or the time running out, is a ClusterError."""
    deadline = time.monotonic() + timeout
    while not ready():
        for child in children:
            if child.exit_code() is not None:
                raise ClusterError(f"{child.name} exited with code {child.exit_code()} while starting "
                                   f"(log: {child.log}):\n{child.tail()}")
        if time.monotonic() > deadline:
            raise ClusterError(f"{', '.join(c.name for c in children)} not ready after {timeout:g} s "
                               f"(logs in {children[0].log.parent})")
        time.sleep(0.05)
