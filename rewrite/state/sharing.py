"""`state.redis`: the key pools' decisions and the conversation store shared by every worker through one Redis.

One link to Redis per process (rewrite/state/redis/shared.py `SharedState`), made when `state.redis` names a server
(again when it names another): each pool the engine builds is given its shared decisions, and the conversation store
is told of the link. From `start` it writes its batched counts and listens to the other workers; at `close`, the
usage counts not yet written go to Redis. Without `state.redis`, nothing changes: each pool decides alone
(rewrite/state/kept.py keeps its state).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

from rewrite.pool import KeyPool
from rewrite.state.redis.shared import SharedState

logger = logging.getLogger("rotator")


def where(url: str) -> str:
    """The server a URL names, without its password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        db = parse_qs(parts.query).get("db", ["0"])[-1]
        return f"unix://{parts.path}?db={db}"
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


class RedisSharing:
    def __init__(self, linked: Callable[[str | None, SharedState | None], None]) -> None:
        self._linked = linked  # told of each new link (the plug-ins' `share`: the conversation store's)
        self.state: SharedState | None = None
        self.url: str | None = None

    def use(self, url: str | None, pools: Iterable[KeyPool]) -> None:
        """Share through the Redis at `url` (None: share nothing), and give `pools`, the engine's, their decisions
        through it (a pool a reload replaces goes on writing what it counted)."""
        if url != self.url:
            self.close()
            self.url = url
            self.state = SharedState.from_url(url) if url else None
            self._linked(url, self.state)
            if url:
                logger.info("rotator: key pools and conversation state are shared through Redis at %s", where(url))
            if self.state is not None:
                self.state.start()  # (a config reloaded at run time: no `start` follows)
        for pool in pools:
            pool.shared = self.state.pool(pool) if self.state is not None else None

    def start(self) -> None:
        """From the start, not from this worker's first request: its status page and `rotator.pools` show what the
        other workers did even before it serves anything."""
        if self.state is not None:
            self.state.start()

    def close(self) -> None:
        if self.state is not None:
            self.state.close_sync()
            self.state = None
