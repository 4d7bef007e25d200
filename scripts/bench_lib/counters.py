"""Instructions the process under test ran, read from the CPU's own counter (perf_event_open(2)), where the machine
lets a process count another's.

Why beside its CPU time: on a shared machine the CPU time of the same work moves with what the neighbours do (the
same requests read 20 % apart from one job to the next, measured), the instructions it takes by well under 1 %. A
difference of a few hundred microseconds a request (the Redis pick's goal) is lost in the first and plain in the
second; the instructions are the work the code asked for, the time is that work at the machine's speed of the
moment. Counted in each thread the process has when counting starts (mitmproxy's work runs on its event loop's).
"""

from __future__ import annotations

import ctypes
import os
import platform

_SYSCALL = {"x86_64": 298, "aarch64": 241}.get(platform.machine())
_HARDWARE, _INSTRUCTIONS = 0, 1  # PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS
_EXCLUDE_KERNEL, _EXCLUDE_HV = 1 << 5, 1 << 6  # perf_event_attr's flag bits
_CLOEXEC = 8  # PERF_FLAG_FD_CLOEXEC
_TIMES = 1 | 2  # read_format: PERF_FORMAT_TOTAL_TIME_ENABLED, PERF_FORMAT_TOTAL_TIME_RUNNING


class _Attr(ctypes.Structure):  # perf_event_attr as of its first size (PERF_ATTR_SIZE_VER0, 64 bytes)
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
                ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64), ("wakeup_events", ctypes.c_uint32),
                ("bp_type", ctypes.c_uint32), ("config1", ctypes.c_uint64)]


def _open(tid: int, flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    attr = _Attr(type=_HARDWARE, size=ctypes.sizeof(_Attr), config=_INSTRUCTIONS, flags=flags, read_format=_TIMES)
    fd = libc.syscall(_SYSCALL, ctypes.byref(attr), tid, -1, -1, _CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return fd


class Instructions:
    """The instructions of `pids` (every thread each has now) since this was made: `read()`; None where they cannot
    be counted (no counter in this machine or VM, not allowed: kernel.perf_event_paranoid, or not counted the whole
    time: more counters asked for than the CPU has). `kernel` says whether the kernel's share is in (where allowed:
    the socket calls a request makes); else user space only."""

    def __init__(self, pids: list[int]) -> None:
        self.fds: list[int] = []
        self.kernel = True
        if _SYSCALL is None:
            return
        tids = [int(t) for pid in pids for t in _tasks(pid)]
        try:
            for tid in tids:
                self.fds.append(self._open(tid))
        except OSError:
            self.close()

    def _open(self, tid: int) -> int:
        if self.kernel:
            try:
                return _open(tid, _EXCLUDE_HV)
            except PermissionError:
                self.kernel = False
        return _open(tid, _EXCLUDE_HV | _EXCLUDE_KERNEL)

    def read(self) -> int | None:
        if not self.fds:
            return None
        try:
            values = [_counted(os.read(fd, 24)) for fd in self.fds]
        except OSError:
            return None
        return None if None in values else sum(values)  # type: ignore[arg-type]

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def __enter__(self) -> Instructions:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _counted(read: bytes) -> int | None:
    """A counter's value; None when it did not count the whole time it was on: a CPU has a few counters, and where
    more are asked for (another perf user, a VM's share of them) the kernel takes turns among them, unevenly
    (measured on this machine kind: a counter opened after 20 others on the same process counted nothing for its
    first 66 ms and a fifth of the time after), so that scaling it up would be a guess."""
    value, enabled, running = (int.from_bytes(read[i : i + 8], "little") for i in (0, 8, 16))
    return value if running == enabled else None


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
