"""Time in the tests. The machine has 2 cores shared with other work, so a test neither sleeps for something to
happen nor bounds a duration tightly:

- code that reads a clock takes `clock=` (KeyPool, the Redis breaker, the client guesses): unit tests give it a
  `FakeClock` and move it on, exactly;
- the engine's clocks are the event loop's (deadlines, heartbeats, retry waits): its unit tests run on virtual time
  (`@pytest.mark.virtual_time`, tests/support/virtual_time.py), with the timeouts users configure, and assert
  durations exactly (tests/test_watchdog.py); a test whose upstream is a real socket stays on real time there;
- a test that waits for something to happen waits on it (`wait_until`, `eventually`: a condition polled up to a
  generous deadline that only a broken behaviour reaches);
- an end-to-end duration is bounded below by what the configured timeouts imply, and above only with `MARGIN` on
  top of them (or marked `alone`: a latency bound measured while no other test runs, tests/support/alone.py);
- `QUIET` is the one wait for something that must NOT happen (a retry, a request that got through): absence is
  only seen by letting time pass, so those few sleeps stay, each with its reason.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

MARGIN = 4.0  # seconds of slack on top of a configured timeout: a loaded machine, TLS set-up, SDK start-up
QUIET = 0.2  # seconds left for something that must not happen to show (a retry, a request that got through)
PATIENCE = 10.0  # seconds a condition is waited for before the test fails: reached only when the behaviour broke
POLL = 0.02  # seconds between two looks at a condition


class FakeClock:
    """A monotonic clock the test moves: `clock()` reads it, `clock.now = ...` or `clock.advance(s)` moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until[T](condition: Callable[[], T], timeout: float = PATIENCE, what: str = "") -> T:
    """The condition's first true value, polled (the process or thread it watches makes it true)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what or condition}"
        time.sleep(POLL)
    return value


async def eventually[T](condition: Callable[[], T | Awaitable[T]], timeout: float = PATIENCE, what: str = "") -> T:
    """The same inside the event loop (the condition may be a coroutine function: a look at Redis): the background
    work it watches runs while this waits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        assert loop.time() < deadline, f"not within {timeout} s: {what or condition}"
        await asyncio.sleep(POLL)
