"""The key pools' state kept across config reloads and restarts (`state.path`, rewrite/state/records.py stores it).

Each time the config is (re)loaded the engine builds new pools; `PoolKeeping.adopt` hands them what the store keeps
(rests, rotation positions, usage counters; never a key's "out": a reload is what brings a refused key back).
Changes are written in batches by a task, off the event loop, from `start` (a while after the first change since
the last write; nothing wakes while nothing changes), and once more in `close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rewrite.pool import KeyPool, name_keys
from rewrite.pool.persistence import export_state, import_state
from rewrite.state.records import Batch, MemoryRecords, StateError, StateStore, open_store, resolve

logger = logging.getLogger("rotator")

FLUSH_INTERVAL = 2.0  # seconds between batched writes of what changed


def scope(provider: str) -> str:
    return f"pool:{provider}"


class KeptBeside(Protocol):
    """Something besides the pools kept in the store under a scope of its own (the clients' book)."""

    dirty: bool
    on_change: Callable[[], None] | None

    def export(self) -> dict[str, object]: ...

    def restore(self, records: dict[str, object]) -> None: ...


class PoolKeeping:
    """The store of the pools' state, the pools it keeps, and the task that writes what they changed."""

    def __init__(self, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.store: StateStore | None = None  # None until the first `adopt`, and after `close`
        self.path: Path | None = None
        self.flush_interval = flush_interval
        self._pools: dict[str, KeyPool] = {}  # by provider: the pools last handed their state
        self._others: dict[str, KeptBeside] = {}  # by scope
        self._flusher: asyncio.Task | None = None
        self._changed = asyncio.Event()  # set by a kept pool's first change since its last write
        self._write_failed = False

    def adopt(self, setting: str | None, pools: dict[str, KeyPool]) -> None:
        """Give `pools` (by provider: the engine's new ones) the state of the pools they replace (a reload) or of
        the store (a start), and keep theirs from now on, in the store `setting` (`state.path`) names. StateError
        (one line, naming the file) when that store cannot be opened: `pools` are then not adopted, and the pools
        they replace are written to the store the next `adopt` opens."""
        path = resolve(setting)
        store = self.store if self.store is not None and path == self.path else self._open(path)
        for pool in self._pools.values():  # (the old pools: what they carry over is named as the store names keys)
            name_keys(pool, store.secret)
        self._write(self._changes(everything=True))
        for pool in self._pools.values():
            pool.on_change = None
        self._pools = dict(pools)
        for name, pool in self._pools.items():
            name_keys(pool, store.secret)
            try:
                import_state(pool, store.load(scope(name)))
            except StateError as e:
                logger.warning("rotator: state.path: %s; the %s pool starts afresh", e, name)
            pool.on_change = self._changed.set
            if pool.dirty:
                self._changed.set()

    def keep(self, name: str, kept: KeptBeside) -> None:
        """Keep `kept` in the store too, under the scope `name`, written with the pools' changes; what the store
        holds is restored into it the first time (after the first `adopt`)."""
        if name in self._others or self.store is None:
            return
        self._others[name] = kept
        try:
            kept.restore(self.store.load(name))
        except StateError as e:
            logger.warning("rotator: state.path: %s; %s start afresh", e, name)
        kept.on_change = self._changed.set

    def start(self) -> None:
        """Write what changed, `flush_interval` after its first change (the changes of that while in one write), off
        the event loop (from within a running one); while nothing changes, nothing wakes."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_every())

    def close(self) -> None:
        """Stop the writes, write everything once more and close the store."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self.store is not None:
            self._write(self._changes(everything=True))
            self.store.close()
            self.store = None

    def _open(self, path: Path | None) -> StateStore:
        """Close the store in use and open the one at `path` (in memory for None)."""
        if self.store is not None:
            self.store.close()
        try:
            store = self.store = open_store(path)
            self.path = path
        except StateError:
            self.store, self.path = MemoryRecords(), None
            raise
        if path is not None:
            logger.info("rotator: key pool state is kept in %s", path)
        return store

    def _changes(self, everything: bool = False) -> Batch:
        batch = {scope(name): export_state(pool) for name, pool in self._pools.items() if everything or pool.dirty}
        batch.update({name: kept.export() for name, kept in self._others.items() if everything or kept.dirty})
        return batch

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

    async def _flush_every(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(self.flush_interval)
            self._changed.clear()  # (before the pools' `dirty` is: a change after this sets it again)
            batch = self._changes()
            if batch:
                with contextlib.suppress(RuntimeError):  # (the interpreter is shutting down)
                    await asyncio.to_thread(self._write, batch)
