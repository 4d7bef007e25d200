"""One pool's leases in Redis: a key's slot taken by each pick (`SharedLease`), renewed while its attempt lives
(rewrite/state/redis/link.py's `Renewer`, one per process), given back once: a capped key's at once (another worker
may be waiting for it), any other with this worker's next pick, or within a second (the flusher). A lease not
renewed (its worker died) expires by itself within the lease time.
"""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from rewrite.state.redis import scripts
from rewrite.state.redis.connection import Unavailable
from rewrite.state.redis.names import PoolKeys

if TYPE_CHECKING:
    from rewrite.state.redis.link import RedisLink


class SharedLeases:
    def __init__(self, shared: RedisLink, keys: PoolKeys) -> None:
        self.shared, self.keys = shared, keys
        self.given_back: list[str] = []  # leases of uncapped keys given back since the last pick: "i:lease id"
        self._prefix, self._count = os.urandom(6).hex() + ".", itertools.count(1)

    def lease_id(self) -> str:
        """An id no other worker's lease has: a random part of this pool's and a count."""
        return f"{self._prefix}{next(self._count)}"

    def give_back(self, index: int, lease_id: str) -> None:
        """A lease ends. A capped key's slot is freed at once (another worker may be waiting for it); any other
        key's lease is given back with this worker's next pick, or within a second (the flusher)."""
        if self.keys.states[index].max_concurrent:
            # Sent now, not from a task: a request of this worker waiting for the slot picks as soon as it is woken,
            # and its pick must reach Redis after the slot was freed.
            if not self.shared.breaker.open:  # (else the lease expires by itself)
                zrem = self.shared.zrem(self.keys.names.leases(self.keys.fps[index]), lease_id)
                self.shared.background(self._settle(zrem))
        else:
            self.given_back.append(f"{index + 1}:{lease_id}")
            if not self.shared.started:
                self.shared.start()

    async def flush_given_back(self) -> None:
        """The leases given back since the last pick, when no pick took them along (while the breaker is open,
        none is written: they expire by themselves)."""
        given_back, self.given_back = self.given_back, []
        for index, lease_id in (item.split(":", 1) for item in given_back):
            if self.shared.breaker.open:
                return
            fps = await self.keys.fingerprints()
            await self._settle(self.shared.zrem(self.keys.names.leases(fps[int(index) - 1]), lease_id))

    async def _settle(self, zrem: Awaitable[Any]) -> None:
        try:
            await self.shared.call(lambda: zrem)
        except Unavailable:
            if inspect.iscoroutine(zrem):  # (the breaker opened meanwhile: never awaited, the lease expires)
                zrem.close()

    async def renew(self, index: int, lease_id: str) -> None:
        fps = await self.keys.fingerprints()
        await self.shared.script(scripts.RENEW, [self.keys.names.leases(fps[index])],
                                 [lease_id, int(self.shared.lease_seconds * 1000)])


class SharedLease:
    """A key's slot taken by the pick: renewed while the attempt lives (from `hold`: a pick never used expires
    within the lease time), given back once."""

    def __init__(self, leases: SharedLeases, index: int, lease_id: str) -> None:
        self.leases, self.index, self.lease_id = leases, index, lease_id
        self._released = False

    def hold(self) -> None:
        """The attempt begins: renew the lease until it is released (one renewer for all of a process's)."""
        if not self._released:
            self.leases.shared.renewer.hold(self)

    async def renew(self) -> None:
        await self.leases.renew(self.index, self.lease_id)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self.leases.shared.renewer.held.pop(self, None)
        self.leases.give_back(self.index, self.lease_id)
