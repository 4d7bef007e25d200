"""The suite's turns between xdist workers (tests/support/alone.py): a test marked `alone` runs while no other does,
without being starved by the others. Each `Turns` is a worker's (its own open files: flock treats them as another
process's)."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

from tests.support.alone import Turns


def gate_held(directory: Path) -> bool:
    with open(directory / "gate") as gate:
        try:
            fcntl.flock(gate, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def test_other_tests_share_the_room(tmp_path):
    a, b = Turns(tmp_path), Turns(tmp_path)
    entered = threading.Event()

    def second():
        with b.turn(alone=False):
            entered.set()

    with a.turn(alone=False):
        thread = threading.Thread(target=second)
        thread.start()
        assert entered.wait(5), "a second shared turn waited for the first"
    thread.join(5)


def test_an_alone_test_waits_for_the_tests_under_way_and_the_next_ones_wait_for_it(tmp_path):
    under_way, alone, next_one = Turns(tmp_path), Turns(tmp_path), Turns(tmp_path)
    log: list[str] = []

    def run_alone():
        with alone.turn(alone=True):
            log.append("alone in")
            time.sleep(0.05)
            log.append("alone out")

    def run_next():
        with next_one.turn(alone=False):
            log.append("next in")

    with under_way.turn(alone=False):
        first = threading.Thread(target=run_alone)
        first.start()
        deadline = time.monotonic() + 5
        while not gate_held(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert gate_held(tmp_path)  # the alone test is waiting for the room, and says so
        then = threading.Thread(target=run_next)
        then.start()
        time.sleep(0.1)
        assert log == []  # neither ran while a test was under way; the next one did not slip in before
        log.append("under way out")
    first.join(5)
    then.join(5)
    assert log == ["under way out", "alone in", "alone out", "next in"]
    for turns in (under_way, alone, next_one):
        turns.close()
