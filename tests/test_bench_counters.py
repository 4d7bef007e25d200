"""scripts/bench's instruction counts (bench_lib/counters.py): the work a process did, read from the CPU's counter,
where the machine lets one process count another's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import counters  # noqa: E402 - bench_lib lives in scripts/, put on the path just above
from bench_lib.counters import Instructions  # noqa: E402

# A child that adds numbers in rounds when told to over its stdin (one line a round), and sleeps otherwise.
CHILD = "import sys\nfor line in sys.stdin:\n    sum(range(int(line)))\n    print(1, flush=True)\n"


def counted(child: subprocess.Popen, counter: Instructions, n: int) -> int:
    before = counter.read()
    assert before is not None
    child.stdin.write(f"{n}\n")
    child.stdin.flush()
    child.stdout.readline()
    after = counter.read()
    assert after is not None
    return after - before


def test_a_process_s_instructions_grow_with_the_work_it_is_given_and_not_while_it_waits():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        counted_at_all = Instructions([child.pid])
        if counted_at_all.read() is None:
            pytest.skip("this machine gives no CPU instruction counter to a process (perf_event_open(2))")
        with counted_at_all as counter:
            counted(child, counter, 1)  # (the child's start-up behind it)
            small, big = counted(child, counter, 100_000), counted(child, counter, 2_000_000)
            idle_before = counter.read()
            time.sleep(0.2)
            idle = counter.read() - idle_before
        # Twenty times the additions: many times the instructions (each round also reads and writes a line).
        assert big > 8 * small > 0
        assert idle < small  # (asleep in read(): nothing counted)
    finally:
        child.kill()
        child.wait()


def test_a_count_that_shared_the_cpu_s_counters_with_more_than_it_has_is_not_taken_for_the_whole():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    crowd: list[int] = []
    try:
        with Instructions([child.pid]) as alone:
            if alone.read() is None:
                pytest.skip("this machine gives no CPU instruction counter to a process (perf_event_open(2))")
            counted(child, alone, 1)
            baseline = sorted(counted(child, alone, 1_000_000) for _ in range(3))[1]
        # Twenty counters more on the same process: where the CPU has fewer, the kernel takes turns among them.
        crowd = [counters._open(child.pid, counters._EXCLUDE_HV | counters._EXCLUDE_KERNEL) for _ in range(20)]
        with Instructions([child.pid]) as shared:
            before = shared.read()
            child.stdin.write("1000000\n")
            child.stdin.flush()
            child.stdout.readline()
            after = shared.read()
        # Either it counted the whole time (a CPU with counters enough) and reads what the work takes, or it says
        # it cannot tell; never a part of the count taken for the whole.
        if before is not None and after is not None:
            assert 0.7 < (after - before) / baseline < 1.4
        else:
            assert after is None
    finally:
        for fd in crowd:
            os.close(fd)
        child.kill()
        child.wait()


def test_a_process_that_is_gone_is_not_counted_and_raises_nothing():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with Instructions([child.pid]) as counter:
        assert counter.read() is None
