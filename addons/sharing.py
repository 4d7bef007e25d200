"""`state.redis` from mitmproxy: the key pools' decisions and the conversation store shared by every worker.

On each config (re)load the engine's new pools are given the shared state (rewrite/state/redis/shared.py); when
the process stops, the usage counts not yet written go to Redis. Without `state.redis`, nothing changes: each pool
decides alone (addons/pools.py keeps its state).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from rewrite.engine import Engine
from rewrite.state.redis.shared import SharedState

logger = logging.getLogger("rotator")


def where(url: str) -> str:
    """The server a URL names, without its password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


class Sharing:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.shared: SharedState | None = None
        self.url: str | None = None

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" not in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            return
        url = self.engine.config.state.redis
        if url != self.url:
            self._close()
            self.url = url
            self.shared = SharedState.from_url(url) if url else None
            self.engine.conversation.share(url, self.shared)
            if url:
                logger.info("rotator: key pools and conversation state are shared through Redis at %s", where(url))
            if self.shared is not None:
                self.shared.start()  # (a config reloaded at run time: no `running` follows)
        for provider in self.engine.router.providers:
            if provider.pool is not None:
                provider.pool.shared = self.shared.pool(provider.pool) if self.shared is not None else None

    def running(self) -> None:
        # From the start, not from this worker's first request: its status page and `rotator.pools` show what the
        # other workers did even before it serves anything.
        if self.shared is not None:
            self.shared.start()

    def done(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.shared is not None:
            self.shared.close_sync()
            self.shared = None
