"""Waiting for the first of a few futures, for the engine's per-request paths.

`asyncio.wait` builds sets and a waiter per call and reports which futures finished; the engine only needs to know
when one did, or that a deadline passed, a few times for every request.
"""

from __future__ import annotations

import asyncio


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
