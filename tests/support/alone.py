"""Turns between pytest-xdist workers: a test marked `alone` (a latency bound) runs while no other test does.

The README's `scripts/test` runs the suite on four workers; a bound on a stream's latency measured while three other
tests load two cores fails now and then for reasons of its own. Every test takes a shared turn, an `alone` one the
whole room: two lock files, so that an `alone` test waiting for the room is not starved by the others' turns
(`gate`, held exclusively while it waits, stops new shared turns; the ones under way end, then it runs).

    with Turns(directory).turn(alone=item.get_closest_marker("alone") is not None):
        ...  # the test's set-up, call and tear-down
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


class Turns:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._gate = open(directory / "gate", "a+")  # noqa: SIM115  (held for the process's life)
        self._room = open(directory / "room", "a+")  # noqa: SIM115

    @contextlib.contextmanager
    def turn(self, alone: bool) -> Iterator[None]:
        if alone:
            fcntl.flock(self._gate, fcntl.LOCK_EX)
            fcntl.flock(self._room, fcntl.LOCK_EX)
        else:
            fcntl.flock(self._gate, fcntl.LOCK_SH)  # (waits while an `alone` test waits or runs)
            fcntl.flock(self._room, fcntl.LOCK_SH)
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._room, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(self._gate, fcntl.LOCK_UN)

    def close(self) -> None:
        self._gate.close()
        self._room.close()
