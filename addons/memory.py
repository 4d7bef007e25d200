"""Memory handed back to the system once the proxy goes idle after load.

Under load the heap grows (Python's objects, glibc's malloc arenas for bodies, TLS and parsing); when the load ends,
what was freed stays with the process: a 5-minute soak left the proxy at 150 MB for good, 109 MB of it idle, and one
full collection then glibc's `malloc_trim(0)` gave 26 MB back. So that is done once the proxy is idle after load:
when no LLM request has been in flight for `rotator_give_back_after` seconds (the engine's `quiet`), and the process
grew by at least `GROWTH` since it last gave memory back; and at most once every `SPACING` seconds: what is given
back is faulted in again by the next requests that need it (given back after every pause, in scripts/bench's agent
phases at 1 MiB: 15-20 MiB each time, up to 15 % more CPU per request), so a proxy whose traffic comes and goes
gives back what it grew by once per `SPACING`, at the first idle moment after it.

No cost while busy (no code of this addon runs per request), and no wake-up while idle: the engine's one timer is set
when the last request in flight ends, and none is left once memory was given back, until traffic comes again. Where
the C library has no `malloc_trim` (musl, macOS) or there is no /proc, nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import time
from collections.abc import Callable

from mitmproxy import ctx

from addons.config import refuse
from rewrite.surface import Engine

logger = logging.getLogger("rotator")

GROWTH = 8 * 2**20  # bytes the process must have grown by since it last gave back (less is not worth a collection)
SPACING = 30.0  # seconds at least between two give-backs
MIB = 2**20


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # (the process's own C library)
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def resident() -> int | None:
    """The process's resident set in bytes (/proc/self/statm), or None where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class GiveBackWhenIdle:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.after = 2.0
        self._started = False
        self._trim = _malloc_trim()
        self._floor: int | None = None  # the resident set when memory was last given back (or at start-up)
        self._given_at = -SPACING  # (time.monotonic) when it last gave back
        self._later: asyncio.TimerHandle | None = None  # a give-back put off until SPACING has passed

    def load(self, loader) -> None:
        loader.add_option(
            "rotator_give_back_after", str, f"{self.after:g}",
            "Seconds without a request in flight, after traffic that grew the proxy's memory, before Rotator hands "
            "what it no longer uses back to the system (one garbage collection and glibc's malloc_trim). 0: never.",
        )

    def configure(self, updated: set[str]) -> None:
        if "rotator_give_back_after" in updated:
            given = ctx.options.rotator_give_back_after
            try:
                after = float(given)
            except ValueError:
                after = -1.0
            if not 0 <= after < float("inf"):
                refuse(f"rotator_give_back_after: {given!r} is not a number of seconds (0 or more)", self._started)
                return
            self.after = after
            self._engage()

    def running(self) -> None:
        self._started = True
        self._floor = resident()
        self._engage()

    def done(self) -> None:
        self.engine.quiet.close()
        self._put_off(None)

    def _engage(self) -> None:
        quiet = self.engine.quiet
        quiet.after, quiet.then = (self.after, self._give_back) if self._trim is not None else (0.0, None)

    def _give_back(self) -> None:
        self._put_off(None)
        before = resident()
        if before is None or self._trim is None:
            return
        if self._floor is not None and before - self._floor < GROWTH:
            self._floor = min(self._floor, before)
            return
        if (wait := self._given_at + SPACING - time.monotonic()) > 0:
            self._put_off(wait)
            return
        gc.collect()
        self._trim(0)
        self._given_at = time.monotonic()
        self._floor = after = resident() or before
        logger.info("rotator: idle after load: %d MiB of memory given back to the system (resident %d -> %d MiB)",
                    (before - after) // MIB, before // MIB, after // MIB)

    def _put_off(self, wait: float | None) -> None:
        """Give back after `wait` seconds if the proxy is idle then (else at the end of the spell of work, as
        always); None: not later."""
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if wait is not None:
            self._later = asyncio.get_running_loop().call_later(wait, self._give_back_if_idle)

    def _give_back_if_idle(self) -> None:
        self._later = None
        if not self.engine.quiet.busy():
            self._give_back()
