import asyncio

import pytest

from rewrite.waiting import first_done

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)


async def test_the_first_future_done_ends_the_wait_and_the_others_are_left_alone():
    loop = asyncio.get_running_loop()
    a, b = loop.create_future(), loop.create_future()
    loop.call_later(1, a.set_result, 1)
    t0 = loop.time()
    assert await first_done(a, b, timeout=5) is True
    assert loop.time() - t0 == 1  # when `a` was done, not at the timeout
    assert not b.done() and not b.cancelled()
    assert not a._callbacks and not b._callbacks  # nothing left behind on them


async def test_a_timeout_ends_the_wait_with_none_done():
    loop = asyncio.get_running_loop()
    a = loop.create_future()
    t0 = loop.time()
    assert await first_done(a, timeout=30) is False
    assert loop.time() - t0 == 30 and not a.done()


async def test_a_future_already_done_ends_it_at_once_and_cancelling_the_wait_cancels_nothing():
    loop = asyncio.get_running_loop()
    done, pending = loop.create_future(), loop.create_future()
    done.set_result(None)
    assert await first_done(pending, done) is True
    waiting = asyncio.ensure_future(first_done(pending))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert not pending.cancelled() and not pending._callbacks
