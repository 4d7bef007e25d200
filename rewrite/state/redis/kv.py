"""The conversation store (rewrite/state/kv.py's `Store`: the field cache, Responses continuity) in Redis, so that a
conversation begun on one worker continues on another, without the event loop waiting on Redis in the steady state.

- A write (put, delete) goes to the worker's own bounded store at once, and to Redis on the pools' pipe without
  waiting for the reply: one script call does SET PX (or DEL) and PUBLISHes the entry (rewrite/state/redis/feed.py).
  A failure feeds the pools' breaker; while it is open, only the worker's store is written.
- Every worker listens to that channel and puts each entry another one wrote into its own store, with its TTL. So a
  read is local.
- A read that misses locally (an entry written before this worker listened, or while its subscription was down, or
  evicted from its bounded store) reads Redis with redis-py's blocking client: one loopback round trip, the event
  loop waiting meanwhile (the callers are synchronous), with the same short timeouts and breaker as the pools'
  decisions. That is the rare fallback, counted (`blocking_reads`, `/metrics`'
  rotator_conversation_store_blocking_reads_total); what it found is kept locally for its remaining TTL, and a key
  it found absent is not asked for again while the same subscription lasts (a later write would be heard). A key
  that was not in Redis when the subscription began (the feed lists them) and was not heard of since is absent
  without a read: a turn that has nothing stored (most of the field cache's lookups) costs no round trip. Except
  an entry a client named (a Responses `previous_response_id`): another worker may have written it a moment ago,
  its message not heard yet, and the client has just been answered with it; a local miss of one is read.
- Without a running event loop (no pipe to write on: tests, tools), writes use the blocking client as well.

Entries expire with their TTL; a value larger than the local store's `max_bytes` is not kept, and the total in
Redis is bounded by the server's `maxmemory` (with `volatile-lru`, only such entries are evicted: docs/scaling.md).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from rewrite.state.kv import MemoryStore
from rewrite.state.redis.connection import ERRORS, Breaker
from rewrite.state.redis.feed import WRITE, head
from rewrite.state.redis.names import KV, KV_FEED
from rewrite.state.redis.writes import write_soon

if TYPE_CHECKING:
    from rewrite.state.redis.link import RedisLink

T = TypeVar("T")

ABSENT_ENTRIES = 10_000  # keys remembered as absent from Redis (each saves a blocking read when asked again)
EVICTED_ENTRIES = 100_000  # keys the local store let go of before their TTL (read from Redis if asked for); past
# that many, every local miss reads Redis


class RedisStore:
    def __init__(self, client: redis.Redis, local: MemoryStore, breaker: Breaker | None = None,
                 shared: RedisLink | None = None, name: str = "kv") -> None:
        self.client = client  # the blocking client: reads that miss locally (and writes without an event loop)
        self.local = local
        self.shared = shared  # the pools' link to Redis: its pipe, breaker and feed
        self.breaker = shared.breaker if shared is not None else breaker or Breaker()
        self.name = name  # (the feed's messages name their store)
        self.feed = shared.feed if shared is not None else None
        self.blocking_reads = 0
        self._absent: OrderedDict[str, int] = OrderedDict()  # key -> the subscription under which Redis lacked it
        self._evicted: set[str] | None = set()  # None: too many to follow
        if self.feed is not None:
            self.feed.listeners[name] = self.heard
            local.on_evict = self._lost

    def get(self, key: str, named: bool = False) -> bytes | None:
        value = self.local.get(key)
        if value is not None:
            return value
        epoch = self.feed.current() if self.feed is not None else None
        # (what the feed says is absent may be another worker's write of a moment ago, not heard yet: a client that
        # names the entry has just been answered with it, so a named one is read)
        if not named:
            if epoch is not None and self._absent.get(key) == epoch:
                return None  # absent when read under this subscription, and no write heard since
            feed, evicted = self.feed, self._evicted
            if feed is not None and evicted is not None and key not in evicted and feed.absent(key):
                return None  # not in Redis when this subscription began, and not written since
        found = self._call(lambda: self._read(key))
        if found is None:
            return None
        value, ms = found
        if not isinstance(value, bytes):
            if epoch is not None:
                self._absent[key] = epoch
                self._absent.move_to_end(key)
                if len(self._absent) > ABSENT_ENTRIES:
                    self._absent.popitem(last=False)
            return None
        if isinstance(ms, int) and ms > 0:
            self.local.put(key, value, ms / 1000)
        return value

    def put(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0 or len(key) + len(value) > self.local.max_bytes:
            self.delete(key)
            return
        self.local.put(key, value, ttl)
        self._write(key, value, max(1, int(ttl * 1000)))

    def delete(self, key: str) -> None:
        self.local.delete(key)
        self._write(key, b"", 0)

    def heard(self, key: str, value: bytes, ms: int) -> None:
        """Another worker's write, from the feed."""
        self._absent.pop(key, None)
        self._kept(key, ms)
        if ms > 0:
            self.local.put(key, value, ms / 1000)
        else:
            self.local.delete(key)

    def _kept(self, key: str, ms: int) -> None:
        """`key` written (ms > 0) or deleted: this worker's store holds what Redis holds."""
        if self._evicted is not None:
            self._evicted.discard(key)
        if ms <= 0 and self.feed is not None:
            self.feed.present.discard(key)

    def _lost(self, key: str) -> None:
        if self._evicted is not None:
            self._evicted.add(key)
            if len(self._evicted) > EVICTED_ENTRIES:
                self._evicted = None

    def _read(self, key: str) -> list[Any]:
        """The blocking fallback: the entry and its TTL left (ms), in one round trip."""
        self.blocking_reads += 1
        pipe = self.client.pipeline(transaction=False)
        pipe.get(KV + key)
        pipe.pttl(KV + key)
        return pipe.execute()

    def _write(self, key: str, value: bytes, ms: int) -> None:
        self._absent.pop(key, None)
        self._kept(key, ms)
        if self.breaker.open:
            return  # (this worker's store only, until Redis is tried again)
        worker = self.feed.worker if self.feed is not None else "-"
        args: list[Any] = [value, ms, KV_FEED, head(worker, self.name, ms, key)]
        shared = self.shared
        if shared is None or not _on_loop():
            self._call(lambda: self.client.eval(WRITE, 1, KV + key, *args))
        else:
            write_soon(shared, WRITE, lambda _: ([KV + key], args))

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


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
