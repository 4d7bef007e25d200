"""The virtual-time loop the engine's unit tests run on (tests/support/virtual_time.py): it jumps over waits only when
nothing real can happen meanwhile, and waits for real otherwise."""

import asyncio
import socket
import threading
import time

import pytest

from tests.support.virtual_time import START, VirtualTimeLoop

pytestmark = pytest.mark.virtual_time


async def test_a_wait_with_nothing_else_to_do_takes_its_exact_loop_time_and_no_real_time():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop) and loop.time() == START
    began = time.monotonic()
    await asyncio.sleep(30)
    assert loop.time() == START + 30
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), 3600)
    assert loop.time() == START + 3630 and loop.jumped == 3630
    assert time.monotonic() - began < 30  # (any machine: a jump, not a wait)


async def test_timers_fire_in_order_at_their_own_times():
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []
    for name, delay in [("c", 15.0), ("a", 0.5), ("b", 2.25)]:
        loop.call_later(delay, lambda n=name: fired.append((n, loop.time() - START)))
    await asyncio.sleep(20)
    assert fired == [("a", 0.5), ("b", 2.25), ("c", 15.0)]


async def test_a_registered_socket_keeps_the_loop_on_real_time():
    """A peer's answer may be on its way through a socket: a timeout must not fire before it could arrive."""
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    slow_peer = threading.Timer(0.05, peer.sendall, (b"answer",))  # (a peer slow for real, unknown to the loop)
    reader, writer = await asyncio.open_connection(sock=ours)
    slow_peer.start()
    try:
        assert await asyncio.wait_for(reader.readexactly(6), 0.04 + 5) == b"answer"  # (a jump would time out)
    finally:
        slow_peer.join()
        writer.close()
        peer.close()
    assert loop.jumped == 0 and loop.time() > START  # (waited for real: only the time spent waiting counts)


async def test_work_in_an_executor_is_waited_for_not_jumped_over():
    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(asyncio.to_thread(lambda: time.sleep(0.05) or "done"), 5) == "done"
    assert loop.jumped == 0 and loop.time() > START  # (waited for real: only the time spent waiting counts)
