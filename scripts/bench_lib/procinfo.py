"""CPU time and memory of the process under test, read from /proc (Linux)."""

from __future__ import annotations

import os
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of the processes (all their threads), in seconds, to the nanosecond (0 for a process that is gone).

    Read from each process's CPU-time clock (clock_getcpuclockid(3)): /proc's utime and stime come in 10 ms ticks,
    too coarse for a short stream's CPU per event. Falls back to the ticks where the clock cannot be read."""
    total = 0.0
    for pid in pids:
        try:
            total += time.clock_gettime_ns(_process_cpu_clock(pid)) / 1e9
        except OSError:
            total += sum(cpu_split([pid]))
    return total


def _process_cpu_clock(pid: int) -> int:
    # The clock id glibc's clock_getcpuclockid() computes: ~pid << 3 | CPUCLOCK_SCHED (2), process-wide.
    return (~pid << 3) | 2


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """(utime, stime) of the processes, in seconds: stime is the kernel's share (socket calls, loopback TCP)."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])  # fields 14 and 15 of stat(5), counted after "(comm)"
        system += int(fields[12])
    return user / TICK, system / TICK


def minor_faults(pids: list[int]) -> int:
    """Minor page faults of the processes so far (stat(5)'s minflt): pages the kernel gave them fresh."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                total += int(f.read().rsplit(b")", 1)[1].split()[7])  # field 10, counted after "(comm)"
        except (OSError, IndexError, ValueError):
            continue
    return total


def memory_kib(pids: list[int]) -> tuple[int, int]:
    """(VmRSS, VmHWM) summed over the processes, in KiB."""
    rss = hwm = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith(b"VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
    return rss, hwm


def descendants(pid: int) -> list[int]:
    """pid and all its descendants (a gateway may run workers as child processes)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all CPUs, from /proc/stat), in seconds."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK
