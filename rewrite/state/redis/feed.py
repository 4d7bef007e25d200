"""The conversation store's feed: every write of an entry (rewrite/state/redis/kv.py) is published on one channel,
and each worker listens to it on a connection of its own and puts what it hears into its local store, so that reads
stay in the worker (no round trip on the event loop).

A write is one script call on the pools' pipe, sent without waiting: SET PX (or DEL) and PUBLISH of the entry, so
that a worker that hears of it finds it in Redis too. A message is the writer's id, the store's name, the TTL in ms
(0: deleted), the key's length, then the key and the value: `<worker> <store> <ms> <key length> <key><value>`.

While the connection is up and subscribed, every write made since is heard (a pub/sub connection delivers in order;
one Redis cannot drop messages of a subscriber that keeps up). `epoch` counts the subscriptions: what a worker
learned was absent from Redis holds only while the same one lasts. Once subscribed, the names of the entries Redis
holds then are read (SCAN, in the background): a key that is neither among them nor heard of since is absent, with
no read of Redis. A connection that fails, or that stays silent past a PING, is dropped and made again (a new
epoch); writes made meanwhile are read from Redis when asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from rewrite.state.redis.connection import ERRORS, TIMEOUT
from rewrite.state.redis.names import KV, KV_FEED

logger = logging.getLogger("rotator")

PING_EVERY = 5.0  # seconds between PINGs on a quiet subscription; silent for 3 of them: the connection is dropped
RECONNECT_AFTER = 1.0  # seconds between two attempts to subscribe
MAX_PRESENT = 500_000  # entry names read at a subscription; past that, a local miss always reads Redis

# KEYS[1]: the entry; ARGV[1]: its value, ARGV[2]: its TTL in ms (0: delete it), ARGV[3]: the channel,
# ARGV[4]: the message's head (the value follows it).
WRITE = """
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ARGV[1])
return 1
"""


def head(worker: str, store: str, ms: int, key: str) -> bytes:
    encoded = key.encode()
    return b"%s %s %d %d %s" % (worker.encode(), store.encode(), ms, len(encoded), encoded)


def parse(message: bytes) -> tuple[str, str, int, str, bytes] | None:
    """(worker, store, ms, key, value), or None for a message of another shape."""
    try:
        worker, store, ms, length, rest = message.split(b" ", 4)
        size = int(length)
        return worker.decode(), store.decode(), int(ms), rest[:size].decode(), rest[size:]
    except ValueError:
        return None


class Feed:
    """This worker's subscription. `listeners[store]` is called with (key, value, ms) for each entry another worker
    wrote to `store` (ms 0: deleted)."""

    def __init__(self, url: str, timeout: float = TIMEOUT, ping_every: float = PING_EVERY) -> None:
        self.url = url
        self.timeout = timeout
        self.ping_every = ping_every
        self.worker = os.urandom(6).hex()  # (a worker's own writes are in its store already)
        self.listeners: dict[str, Callable[[str, bytes, int], None]] = {}
        self.epoch = 0  # the current subscription's number; 0 before the first
        self.listening = False  # subscribed now: every write from here on is heard
        self.present: set[str] = set()  # the entries Redis held at the subscription (`scanned`'s)
        self.scanned = 0  # the subscription whose entries `present` holds in full; 0: none
        self._task: asyncio.Task | None = None
        self._scan: asyncio.Task | None = None

    def start(self) -> None:
        """Listen from now on, in the background (once there is an event loop)."""
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # (no running loop: the next start from one listens)
                self._task = asyncio.get_running_loop().create_task(self._listen())

    def stop(self) -> None:
        self.listening = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def aclose(self) -> None:
        task, self._task = self._task, None
        self.listening = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def current(self) -> int | None:
        """The subscription now in force, None while not listening."""
        return self.epoch if self.listening else None

    def absent(self, key: str) -> bool:
        """Redis held no `key` when this subscription began, and no write of it was heard since: it holds none now
        (unless this worker's own store let go of it: kv.py asks that)."""
        return self.listening and self.scanned == self.epoch and key not in self.present

    async def _listen(self) -> None:
        while True:
            try:
                await self._subscribed()
            except ERRORS as e:
                logger.debug("rotator: state.redis: the conversation store's feed was cut (%s)", type(e).__name__)
            finally:
                self.listening = False
            await asyncio.sleep(RECONNECT_AFTER)

    async def _subscribed(self) -> None:
        # Its own client: a subscribed connection waits for messages without a socket timeout (a PING watches it).
        client = redis.asyncio.Redis.from_url(self.url, socket_connect_timeout=self.timeout, socket_timeout=None,
                                              retry=Retry(NoBackoff(), 0), health_check_interval=0)
        pubsub = client.pubsub()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(pubsub.subscribe(KV_FEED), self.timeout)
            heard = pinged = loop.time()
            while True:
                message = await pubsub.get_message(timeout=self.ping_every)
                now = loop.time()
                if message is not None:
                    heard = now
                    self._take(message)
                    if message.get("type") == "subscribe":
                        self._scan = loop.create_task(self._read_present(client, self.epoch))
                elif now - heard > 3 * self.ping_every:
                    raise TimeoutError("the subscription went silent")
                if now - pinged >= self.ping_every:
                    pinged = now
                    await pubsub.ping()
        finally:
            if self._scan is not None:
                self._scan.cancel()
            with contextlib.suppress(*ERRORS):
                await pubsub.aclose()
            with contextlib.suppress(*ERRORS):
                await client.aclose()

    async def _read_present(self, client: redis.asyncio.Redis, epoch: int) -> None:
        """The names of the entries Redis holds now (SCAN: one that stays is listed; one written meanwhile is heard)."""
        present: set[str] = set()
        cursor: int | None = None
        try:
            while cursor != 0:
                cursor, names = await asyncio.wait_for(client.scan(cursor or 0, match=KV + "*", count=1000),
                                                       self.timeout * 4)
                present.update((n.decode() if isinstance(n, bytes) else n)[len(KV):] for n in names)
                if len(present) > MAX_PRESENT:
                    return
        except ERRORS as e:
            logger.debug("rotator: state.redis: the conversation store's entries were not listed (%s)",
                         type(e).__name__)
            return
        if epoch == self.epoch and self.listening:
            self.present, self.scanned = present, epoch

    def _take(self, message: dict[str, Any]) -> None:
        if message.get("type") == "subscribe":
            self.epoch += 1
            self.listening = True
            return
        if message.get("type") != "message" or not isinstance(message.get("data"), bytes):
            return
        entry = parse(message["data"])
        if entry is None:
            return
        worker, store, ms, key, value = entry
        listener = self.listeners.get(store)
        if worker != self.worker and listener is not None:
            listener(key, value, ms)
