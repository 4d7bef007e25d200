"""One pool's conversation bindings in Redis (rewrite/pool/affinity.py; the Lua is bind_scripts.py): read by every
pick (the request's ids go with its arguments), bound and unbound at once on the pipe (as rests are: a pick sent
after them sees them), each key's live conversations read about once a second for the status page. A write Redis did
not take is not replayed: the pool's own bindings (`LocalDecisions.bindings`, which every bind and unbind also
changes) hold it while Redis does not answer, and the conversation's next turn binds it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewrite.state.redis.bind_scripts import BIND, UNBIND
from rewrite.state.redis.names import PoolKeys
from rewrite.state.redis.writes import write_soon

if TYPE_CHECKING:
    from rewrite.pool.affinity import Affinity
    from rewrite.state.redis.link import RedisLink

NO_AFFINITY = ["-1"]


def affinity_args(affinity: Affinity | None, patient: bool) -> list[str]:
    """The pick's arguments for the request's conversation (bind_scripts.PICK_AFFINITY_HEAD)."""
    if affinity is None:
        return NO_AFFINITY
    holder = affinity.holder + 1 if affinity.holder is not None else 0
    return [f"{len(affinity.lookup)}|{int(affinity.hard)}|{int(patient)}|{affinity.depth}|{holder}|"
            f"{affinity.session or ''}", *affinity.lookup]


class SharedBindings:
    def __init__(self, shared: RedisLink, keys: PoolKeys) -> None:
        self.shared, self.keys = shared, keys
        self.observed: list[int] | None = None  # each key's live conversations, as every worker bound them

    def bind(self, index: int, affinity: Affinity, conversation: str, extra: tuple[str, ...], wall: float) -> None:
        until = int((wall + affinity.ttl) * 1000)
        ids = (*affinity.bind, *extra)
        write_soon(self.shared, BIND, lambda fps: (
            [self.keys.names.bindings, self.keys.names.bound, *map(self.keys.names.live, fps)],
            [int(wall * 1000), index + 1, fps[index], until, affinity.depth, conversation, *ids]), self.keys)

    def unbind(self, index: int, affinity: Affinity) -> None:
        ids = (*affinity.lookup, *affinity.bind)
        write_soon(self.shared, UNBIND, lambda fps: (
            [self.keys.names.bindings, self.keys.names.bound, self.keys.names.live(fps[index])],
            [fps[index], affinity.name, *ids]), self.keys)

    async def observe(self, wall: float) -> None:
        """Each key's live conversations, as every worker bound them."""
        fps, names = await self.keys.fingerprints(), self.keys.names
        since = f"({int(wall * 1000)}"
        self.observed = [int(n) for n in await self.shared.read(*[("ZCOUNT", names.live(fp), since, "+inf")
                                                                   for fp in fps])]

    def live(self, index: int) -> int | None:
        return self.observed[index] if self.observed is not None and index < len(self.observed) else None
