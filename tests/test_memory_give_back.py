"""addons/memory.py: memory is given back once the proxy goes idle after load, and at most once every SPACING seconds
(a proxy whose traffic pauses every few seconds, an agent's turns, would otherwise fault the same pages in again on
every turn); a give-back put off so is made at the first idle moment after SPACING."""

from __future__ import annotations

import asyncio
import time

from addons import memory
from rewrite.waiting import Quiet

MiB = 1 << 20
AFTER, SPACING = 0.01, 1.0  # seconds (the addon's own: 2 and 30)


class Proxy:
    """What the addon sees of the process: its resident set, glibc's trim, whether requests are in flight."""

    def __init__(self) -> None:
        self.rss = 100 * MiB
        self.trims: list[float] = []
        self.busy = False
        self.quiet = Quiet(lambda: self.busy)

    def trim(self, pad: int) -> int:
        self.trims.append(time.monotonic())
        self.rss = 100 * MiB
        return 1

    async def load_then_idle(self, growth: int) -> None:
        """A spell of requests that grew the process, then their end (the engine's `settled`)."""
        self.busy, self.rss = True, self.rss + growth
        await asyncio.sleep(0)
        self.busy = False
        self.quiet.settled()
        await asyncio.sleep(AFTER * 5)


async def test_memory_is_given_back_at_most_once_a_spacing_then_at_the_first_idle_moment(monkeypatch):
    proxy = Proxy()
    monkeypatch.setattr(memory, "resident", lambda: proxy.rss)
    monkeypatch.setattr(memory, "SPACING", SPACING)
    addon = memory.GiveBackWhenIdle(proxy)  # type: ignore[arg-type]  # (the engine's `quiet` is all it uses)
    addon._trim, addon.after = proxy.trim, AFTER
    addon.running()

    await proxy.load_then_idle(50 * MiB)
    assert len(proxy.trims) == 1  # idle after load: given back
    await proxy.load_then_idle(20 * MiB)
    await proxy.load_then_idle(0)
    assert len(proxy.trims) == 1  # regrown within SPACING: kept (the next turn would fault it in again)
    await asyncio.sleep(SPACING * 2)
    assert len(proxy.trims) == 2 and proxy.trims[1] - proxy.trims[0] >= SPACING * 0.9  # then given back, idle
    await proxy.load_then_idle(4 * MiB)
    await asyncio.sleep(SPACING * 1.5)
    assert len(proxy.trims) == 2  # (less than GROWTH: nothing worth a collection)
    addon.done()
