"""Waiting for the first of a few futures, for the engine's per-request paths; and for the engine to be quiet.

`asyncio.wait` builds sets and a waiter per call and reports which futures finished; the engine only needs to know
when one did, or that a deadline passed, a few times for every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def first_done(*futures: asyncio.Future, timeout: float | None = None) -> bool:
    """Wait until one of `futures` is done (True) or `timeout` seconds have passed (False). Cancelling the wait
    cancels none of them."""
    if any(f.done() for f in futures):
        return True
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def release(_=None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    for f in futures:
        f.add_done_callback(release)
    timer = loop.call_later(timeout, release) if timeout is not None else None
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for f in futures:
            f.remove_done_callback(release)
    return any(f.done() for f in futures)


class Quiet:
    """Calls `then` once nothing has been in flight for `after` seconds (`busy()` says whether something is), after
    each spell of work: `settled()` is told when the last thing in flight ends. No timer is left while it stays quiet,
    so an idle process is never woken; `after` 0 (or no `then`): never."""

    def __init__(self, busy: Callable[[], bool]) -> None:
        self.busy = busy
        self.after = 0.0
        self.then: Callable[[], None] | None = None
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def settled(self) -> None:
        if self.after <= 0 or self.then is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (no loop: nothing to wait on)
            return
        self._since = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(self.after, self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self.busy() or self.then is None:  # (busy again: the next end sets the timer anew)
            return
        loop = asyncio.get_running_loop()
        wait = self._since + self.after - loop.time()
        if wait > 0.01:  # (work came and went meanwhile)
            self._timer = loop.call_later(wait, self._check)
            return
        self.then()
