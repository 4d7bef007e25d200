"""The names of Rotator's Redis keys. One pool's keys share the hash tag `{pool}` (a Redis Cluster keeps them on one
shard); pooled keys appear only as fingerprints keyed with the secret every worker reads from SECRET."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rewrite.pool.key_state import KeyState, fingerprint

PREFIX = "rot:"
SECRET = PREFIX + "secret"  # the fingerprints' HMAC secret: made once by the first worker (SET NX), then read
KV = PREFIX + "kv:"  # the conversation store's entries (rewrite/state/redis/kv.py)
KV_FEED = PREFIX + "kv-feed"  # the channel its writes are published on (rewrite/state/redis/feed.py)
CLIENTS = PREFIX + "clients"  # HASH: who spent what, every client's (rewrite/state/redis/client_scripts.py)
CLIENTS_FLYING = PREFIX + "clients:flying"  # ZSET: each client's requests in flight -> expiry ms


class PoolNames:
    def __init__(self, pool: str) -> None:
        self.base = f"{PREFIX}{{{pool}}}:"
        self.rests = self.base + "rest"  # ZSET: fp (every model) or fp|model -> until, ms on the server's clock
        self.turn = self.base + "turn"  # HASH: the strategies' positions
        self.lru = self.base + "lru"  # ZSET: fp -> the pick sequence number when it was last picked
        self.windows = self.base + "window"  # HASH: fp|window|unit -> a quota window (window_scripts.py)
        self.bindings = self.base + "bind"  # HASH: conversation id -> fp|until ms|depth|name (bind_scripts.py)
        self.bound = self.base + "bound"  # ZSET: conversation id -> until ms (the bindings' expiries)
        self.rechecks = self.base + "recheck"  # HASH: a rests' member -> next ms|wait ms|since ms|why (scripts.py)

    def why(self, member: str) -> str:
        return f"{self.base}why:{member}"

    def leases(self, fp: str) -> str:
        return f"{self.base}lease:{fp}"  # ZSET: lease id -> expiry, ms

    def live(self, fp: str) -> str:
        return f"{self.base}live:{fp}"  # ZSET: conversation name -> until ms (the key's live conversations)

    def usage(self, fp: str, hour: bool = False) -> str:
        """HASH: the key's counters in all (and per model), or those of the last hour's minutes."""
        return f"{self.base}use:{fp}:hour" if hour else f"{self.base}use:{fp}"

    def batch(self, batch_id: str) -> str:
        return f"{self.base}done:{batch_id}"


class PoolKeys:
    """A pool's keys as its Redis keys name them: by index (config order) and by fingerprint under the secret every
    worker reads (`fingerprints`, once)."""

    def __init__(self, name: str, states: list[KeyState], secret: Callable[[], Awaitable[bytes]]) -> None:
        self.names = PoolNames(name)
        self.states = states
        self.index = {id(s): i for i, s in enumerate(states)}
        self.fps: list[str] = []  # (filled in place, once known)
        self._secret = secret

    async def fingerprints(self) -> list[str]:
        if not self.fps:
            secret = await self._secret()
            self.fps[:] = [fingerprint(s.secret, secret) for s in self.states]
        return self.fps
