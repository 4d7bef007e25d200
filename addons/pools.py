"""The key pools from mitmproxy: the `rotator.pools` command, and the pools' state kept across restarts.

Each time the config is (re)loaded the engine builds new pools; this addon hands them what the store keeps
(rests, rotation positions, usage counters; never a key's "out": a reload is what brings a refused key back).
Changes are written in batches by a periodic task, off the event loop, and once more in `done()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

from mitmproxy import command, exceptions

from addons.config import starting_up
from rewrite.engine import Engine
from rewrite.pool import KeyPool, name_keys
from rewrite.pool.logins import login_table
from rewrite.pool.persistence import export_state, import_state
from rewrite.pool.report import table
from rewrite.state.records import Batch, MemoryStore, StateError, StateStore, open_store, resolve

logger = logging.getLogger("rotator")

FLUSH_INTERVAL = 2.0  # seconds between batched writes of what changed


def scope(provider: str) -> str:
    return f"pool:{provider}"


class Pools:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store: StateStore | None = None
        self.path: Path | None = None
        self._pools: dict[str, KeyPool] = {}  # by provider: the pools last handed their state
        self._flusher: asyncio.Task | None = None
        self._write_failed = False

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            self._adopt()

    def running(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_every(FLUSH_INTERVAL))

    def done(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self.store is not None:
            self._write(self._changes(everything=True))
            self.store.close()
            self.store = None

    @command.command("rotator.pools")
    def pools(self, fmt: str = "table") -> str:
        """Each key pool: keys masked, their state (ready, resting until when and why, out), requests in flight,
        and requests, tokens and cost in the last hour and in all; then each subscription login seen, if any (masked,
        never pooled): its plan windows, used share, reset and whether it is exhausted. fmt: table or json."""
        providers = self.engine.router.providers
        described = [p.pool.describe() for p in providers if p.pool is not None]
        logins = [{"provider": p.name, "logins": seen} for p in providers
                  if p.logins is not None and (seen := p.logins.describe())]  # (a login provider never used: noise)
        if fmt == "json":
            return json.dumps(described + logins, indent=2)
        return "\n\n".join([table(described), *map(login_table, logins)])

    # -- the store ---------------------------------------------------------------------------------------------

    def _adopt(self) -> None:
        """Give the engine's new pools the state of the old ones (a reload) or of the store (a start)."""
        path = resolve(self.engine.config.state.path)
        store = self.store if self.store is not None and path == self.path else self._open(path)
        for pool in self._pools.values():  # (the old pools: what they carry over is named as the store names keys)
            name_keys(pool, store.secret)
        self._write(self._changes(everything=True))
        self._pools = {p.name: p.pool for p in self.engine.router.providers if p.pool is not None}
        for name, pool in self._pools.items():
            name_keys(pool, store.secret)
            try:
                import_state(pool, store.load(scope(name)))
            except StateError as e:
                logger.warning("rotator: state.path: %s; the %s pool starts afresh", e, name)

    def _open(self, path: Path | None) -> StateStore:
        """Close the store in use and open the one at `path` (in memory for None)."""
        if self.store is not None:
            self.store.close()
        try:
            store = self.store = open_store(path)
            self.path = path
        except StateError as e:
            logger.error("rotator_config: state.path: %s", e)
            if starting_up():
                sys.exit(1)  # before the proxy listens, like any config error
            self.store, self.path = MemoryStore(), None
            raise exceptions.OptionsError(f"rotator_config: state.path: {e}") from None
        if path is not None:
            logger.info("rotator: key pool state is kept in %s", path)
        return store

    def _changes(self, everything: bool = False) -> Batch:
        return {scope(name): export_state(pool) for name, pool in self._pools.items() if everything or pool.dirty}

    def _write(self, batch: Batch) -> None:
        if not batch or self.store is None:
            return
        try:
            self.store.save(batch)
            self._write_failed = False
        except StateError as e:
            if not self._write_failed:  # once per run of failures, not once per flush
                logger.warning("rotator: state.path: %s; the pools keep running on what they hold", e)
            self._write_failed = True

    async def _flush_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            batch = self._changes()
            if batch:
                with contextlib.suppress(RuntimeError):  # (the interpreter is shutting down)
                    await asyncio.to_thread(self._write, batch)
