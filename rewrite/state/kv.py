"""Where conversation state lives between turns (the field cache, Responses continuity): a small key-value store.

The interface is what a shared backend (SQLite, Redis) offers as well: bytes under string keys, each with its own
time to live. `MemoryStore` is the one Rotator uses today: in this process, bounded in entries, in bytes and in age,
the least recently used entry going first when a bound is reached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

# How often (seconds) expired entries are swept out even if nobody asks for them.
SWEEP_INTERVAL = 60.0


class Store(Protocol):
    def get(self, key: str, named: bool = False) -> bytes | None:
        """The value, or None if it was never put, has expired or was evicted. `named`: a client named the entry
        (a previous response's id), so it most likely exists: a shared store looks where a lookup it expects to
        miss would not."""

    def put(self, key: str, value: bytes, ttl: float) -> None:
        """Keep `value` under `key` for `ttl` seconds (replacing what was there)."""

    def delete(self, key: str) -> None: ...


class MemoryStore:
    """An in-process `Store`: at most `max_entries` entries and `max_bytes` bytes (keys and values), each kept
    until its TTL ends. `clock` is injectable for tests (monotonic seconds)."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # key -> (value, expires), LRU first
        self.bytes = 0
        self._next_sweep = clock() + SWEEP_INTERVAL
        self.on_evict: Callable[[str], None] | None = None  # told of each entry a bound pushed out before its TTL

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, named: bool = False) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if self._clock() >= expires:
            self.delete(key)
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self.delete(key)
        size = len(key) + len(value)
        if ttl <= 0 or size > self.max_bytes or self.max_entries <= 0:
            return  # it could never fit: keeping it would only evict everything else
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        self._entries[key] = (value, now + ttl)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            evicted = next(iter(self._entries))
            self.delete(evicted)
            if self.on_evict is not None:
                self.on_evict(evicted)

    def delete(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(key) + len(entry[0])

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL
        for key in [k for k, (_, expires) in self._entries.items() if now >= expires]:
            self.delete(key)
