"""The conversation store (rewrite/state/kv.py's `Store`: the field cache, Responses continuity) in Redis, so that a
conversation begun on one worker continues on another.

Its callers are synchronous, so this is redis-py's blocking client: one loopback round trip per get or put, with
the same short timeouts and breaker as the pools' decisions. While Redis does not answer, entries go to, and are
read from, a bounded store in this process. Entries expire with their TTL (`SET PX`); a value larger than
`max_bytes` is not kept, and the total is bounded by the server's `maxmemory` (with `volatile-lru`, only such
entries are evicted: docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis

from rewrite.state.kv import MemoryStore
from rewrite.state.redis.connection import ERRORS, Breaker
from rewrite.state.redis.names import KV

T = TypeVar("T")


class RedisStore:
    def __init__(self, client: redis.Redis, local: MemoryStore, breaker: Breaker | None = None) -> None:
        self.client = client
        self.local = local  # while Redis does not answer
        self.breaker = breaker or Breaker()

    def _call(self, fn: Callable[[], T]) -> T | None:
        if self.breaker.open:
            return None
        try:
            result = fn()
        except ERRORS as e:
            self.breaker.failed(e)
            return None
        self.breaker.worked()
        return result

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda: self.client.get(KV + key))
        return value if isinstance(value, bytes) else self.local.get(key)

    def put(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0 or len(key) + len(value) > self.local.max_bytes:
            self.delete(key)
            return
        if self._call(lambda: self.client.set(KV + key, value, px=max(1, int(ttl * 1000)))) is None:
            self.local.put(key, value, ttl)

    def delete(self, key: str) -> None:
        self.local.delete(key)
        self._call(lambda: self.client.delete(KV + key))
