"""An event loop on virtual time, for the engine's unit tests (`@pytest.mark.virtual_time`, tests/conftest.py).

The engine's clocks read `loop.time()` and wait on the loop's timers (rewrite/exchange/clock.py), so on this loop a
first-token timeout of 30 s fires at exactly 30 s of loop time, and in a few milliseconds of real time:

- `time()` is virtual: it starts at `START` and stands still while code runs (a test's durations are exact);
- when the loop would sleep until its next timer, it jumps there instead, if doing so is safe: nothing ready, the
  selector reports nothing within a zero timeout, no file descriptor is registered but the loop's own wake-up pipe
  (a socket, a pipe, a server), and no work is running outside the loop that will wake it (an executor job: a DNS
  look-up, `asyncio.to_thread`; the default executor's shutdown);
- otherwise it waits for real, and its time moves on by the real time waited. A test whose upstream is a real socket
  (tests/support/local_upstream.py: the `each_transport` fixture's "lean" variant, whose server listens from the
  start) therefore runs on real time with the same loop: a timeout can never fire while a real answer is on its way.

Not for a test whose loop is woken by a thread of its own that this loop does not know of (`call_soon_threadsafe`,
`run_coroutine_threadsafe` from a server thread): such a test stays on the ordinary loop.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
import time
from collections.abc import Coroutine
from concurrent.futures import Executor
from typing import Any

START = 1000.0  # the loop's time when it is made (exact in binary, as are the sums the tests make of it)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._now = START
        self.jumped = 0.0  # seconds of loop time skipped over, not waited (0: the test ran on real time)
        self._outside = 0  # executor jobs and shutdowns under way: each will wake the loop through its pipe
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self._now

    def run_in_executor(self, executor: Executor | None, func: Any, *args: Any) -> asyncio.Future:
        future = super().run_in_executor(executor, func, *args)
        self._outside += 1
        future.add_done_callback(self._back)
        return future

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        self._outside += 1
        try:
            await super().shutdown_default_executor(timeout)
        finally:
            self._outside -= 1

    def _back(self, _future: asyncio.Future) -> None:
        self._outside -= 1

    def _may_jump(self, selector: selectors.BaseSelector) -> bool:
        own = self._ssock.fileno()  # type: ignore[attr-defined]  (the self-pipe every selector loop has)
        return not self._outside and all(fd == own for fd in selector.get_map())

    def _next_timer(self) -> float | None:
        scheduled = self._scheduled  # type: ignore[attr-defined]  (cancelled heads are gone by now: _run_once)
        return scheduled[0]._when if scheduled else None


class _Selector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]  (an alias of the platform's best)
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self.loop = loop

    def select(self, timeout: float | None = None) -> list:
        loop = self.loop
        if timeout is not None and timeout <= 0:
            return super().select(0)
        events = super().select(0)
        if events:
            return events
        if timeout is not None and loop._may_jump(self):
            when = loop._next_timer()
            target = when if when is not None and when > loop._now else loop._now + timeout
            loop.jumped += target - loop._now
            loop._now = target
            return []
        # Real I/O may come (or nothing is scheduled at all): wait for it as any loop would, on real time.
        began = time.monotonic()
        events = super().select(timeout)
        loop._now += time.monotonic() - began
        return events


def loop_time() -> float:
    """The running loop's time; outside a loop an error (a pool made on virtual time read after its loop ended)."""
    return asyncio.get_running_loop().time()


def pools_on_loop_time(monkeypatch: Any) -> None:
    """Key pools made from a config during the test read the running loop's time, as the engine's clocks do (outside
    the tests both are time.monotonic: asyncio's clock, and the pools' default one)."""
    import rewrite.providers

    monkeypatch.setattr(rewrite.providers, "KeyPool", functools.partial(rewrite.providers.KeyPool, clock=loop_time))


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on virtual time, for a synchronous test (mark it `virtual_time` too, for its pools)."""
    return asyncio.run(coro, loop_factory=VirtualTimeLoop)
