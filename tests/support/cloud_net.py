"""A private mount and network namespace where the clouds' real hostnames are 127.0.0.1.

A holder process (`unshare --mount --net`) brings `lo` up, bind-mounts a hosts file of the test's over /etc/hosts
(and any other files the test gives, `mounts`; privately: the machine's own stay as they are), and waits; every later process joins it with
`nsenter --target PID --mount --net`. The pytest process stays outside, yet serves inside: `listen(443)` makes the
listening socket from a thread that entered the namespace's network (a socket belongs to the namespace it was made
in), so the fake platform runs in the test's own process and the test reads its records directly.

    net = CloudNet(tmp_path, hostnames=("res-a.openai.azure.com", ...)).start()
    server_socket = net.listen(443)                            # 127.0.0.1:443 inside
    net.run([python, "-c", "..."], env=..., timeout=30)        # a process inside: the names resolve to 127.0.0.1
    net.stop()

It needs root (or CAP_SYS_ADMIN) and util-linux's unshare and nsenter; `unavailable()` says why not, for a skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.support.harness import REPO, dies_with_test_run, holds

CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")

# Run by the holder, inside the new namespaces: lo up, the hosts file over /etc/hosts (and each further SOURCE TARGET
# pair over its target), "ready", then wait for EOF.
_HOLDER = r"""
import ctypes, fcntl, socket, struct, sys
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP, MS_BIND = 0x8913, 0x8914, 0x1, 4096
with socket.socket() as s:
    flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
libc = ctypes.CDLL(None, use_errno=True)
for source, target in [(sys.argv[1], "/etc/hosts"), *zip(sys.argv[2::2], sys.argv[3::2])]:
    if libc.mount(source.encode(), target.encode(), None, MS_BIND, None) != 0:
        raise OSError(ctypes.get_errno(), f"bind-mounting {source} over {target}")
print("ready", flush=True)
sys.stdin.read()
"""


class NamespaceUnavailable(RuntimeError):
    pass


def unavailable() -> str | None:
    """Why a private namespace cannot be made here (for a skip), or None."""
    if sys.platform != "linux":
        return "private network namespaces need Linux"
    if os.geteuid() != 0:
        return "a private mount and network namespace (unshare -m -n) needs root"
    missing = [tool for tool in ("unshare", "nsenter") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} (util-linux) not installed"
    return None


class CloudNet:
    """One private mount + network namespace, kept alive by a holder process until `stop()`."""

    def __init__(self, workdir: Path, hostnames: tuple[str, ...], mounts: tuple[tuple[Path, str], ...] = ()) -> None:
        self.workdir = workdir
        self.hostnames = hostnames
        self.mounts = mounts  # (a file of the test's, the file it stands in for inside): e.g. the system's CA bundle
        self.hosts_file = workdir / "hosts"
        self.holder: subprocess.Popen | None = None
        self.holder_error: str | None = None  # what the holder wrote to stderr, once it ended

    @property
    def pid(self) -> int:
        if self.holder is None:
            raise RuntimeError("the namespace is not started")
        return self.holder.pid

    def start(self, timeout: float = 10.0) -> CloudNet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost", *(f"127.0.0.1 {name}" for name in self.hostnames)]
        self.hosts_file.write_text("\n".join(lines) + "\n")
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "--", sys.executable, "-c", _HOLDER,
             str(self.hosts_file), *(str(part) for mount in self.mounts for part in mount)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=dies_with_test_run())
        assert self.holder.stdout is not None
        ready, _, _ = select.select([self.holder.stdout], [], [], timeout)
        line = self.holder.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.stop()
            raise NamespaceUnavailable(f"the namespace holder did not start: {line.strip()!r} "
                                       f"{(self.holder_error or '').strip()[-1000:]}")
        return self

    def stop(self) -> None:
        holder, self.holder = self.holder, None
        if holder is None:
            return
        with contextlib.suppress(OSError):
            if holder.stdin is not None:
                holder.stdin.close()
        try:
            holder.wait(5)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(5)
        if holder.stderr is not None:
            self.holder_error = holder.stderr.read()
            holder.stderr.close()
        if holder.stdout is not None:
            holder.stdout.close()

    # --- inside, from this process

    def inside(self, fn: Callable[[], T]) -> T:
        """`fn()` run by a thread that joined the namespace's network (sockets it makes stay in it)."""
        result: list[Any] = []

        def run() -> None:
            fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
            try:
                if _LIBC.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns into the namespace's network: {errno.errorcode.get(code, code)}")
                result.append(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                result.append(e)
            finally:
                os.close(fd)

        thread = threading.Thread(target=run, name="cloud-net")
        thread.start()
        thread.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def listen(self, port: int, host: str = "127.0.0.1") -> socket.socket:
        """A listening TCP socket on host:port inside the namespace."""

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
            return sock

        return self.inside(make)

    def listens(self, pid: int, port: int) -> bool:
        """Whether process `pid` (inside) listens on `port` (read from its own /proc/PID/net/tcp)."""
        inodes = set()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
        return bool(inodes) and holds(pid, inodes)

    # --- processes inside

    def command(self, argv: list[str], cwd: Path | str = REPO) -> list[str]:
        """`argv` as a command that runs it inside the namespace, in `cwd`. (The directory is entered inside:
        nsenter's own --wd opens it outside, and the process's cwd would read "(unreachable)/…", which Codex refuses.)"""
        return ["nsenter", f"--target={self.pid}", "--mount", "--net", "--", "env", f"--chdir={cwd}", *argv]

    def run(self, argv: list[str], env: dict[str, str], cwd: Path | str = REPO, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run `argv` inside to its end; its output as text."""
        return subprocess.run(self.command(argv, cwd), env=env, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, preexec_fn=dies_with_test_run())
