"""One pool's usage counters in Redis: counted here, written in batches that are applied once, and read back so
that each worker shows what all of them did.

Per key, two hashes: `use:<fp>` (each of rewrite/pool/key_state.py's counters in all: requests, tokens, cost,
unpriced, the prompt cache's; and `<model>|<counter>` per model) and `use:<fp>:hour` (`<minute>|<counter>`, minutes
older than an hour dropped by the write that adds a new one). A counter whose name ends in "cost" counts dollars.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import redis

from rewrite.pool.key_state import BUCKET, NAMES, WINDOW
from rewrite.state.redis import scripts
from rewrite.state.redis.link import pairs
from rewrite.state.redis.names import PoolKeys, PoolNames

if TYPE_CHECKING:
    from rewrite.state.redis.link import RedisLink

HOUR_TTL = WINDOW + 2 * BUCKET  # seconds the hour's hash outlives its last write
BATCH_MARK = 24 * 3600 * 1000  # ms a batch's mark is kept, so that a batch sent again is not counted twice

Count = tuple[int, str, int | None]  # (key index, field, minute: None for the totals)
FOLD_AT = 4096  # counts added before they are spread over their counters anyway (a bound while Redis is away)


class UsageBatches:
    def __init__(self, names: PoolNames) -> None:
        self.names = names
        # What requests added since, as they added it: spread over the counters (three a field) once a batch, not at
        # each request, where it was cold work. The counters add up in the order the requests came, as before.
        self._added: list[tuple[int, str, float, dict[str, float]]] = []  # (key index, model, wall, amounts)
        self._counts: dict[Count, float] = {}  # spread over their counters, not yet in a batch
        self._sending: tuple[str, dict[Count, float]] | None = None  # a batch sent, not yet known to be applied

    def __bool__(self) -> bool:
        return bool(self._added or self._counts or self._sending)

    def add(self, index: int, model: str, wall: float, amounts: dict[str, float]) -> None:
        """(`amounts` is kept as it is: the caller's own.)"""
        self._added.append((index, model, wall, amounts))
        if len(self._added) >= FOLD_AT:
            self._spread()

    def _spread(self) -> None:
        counts = self._counts
        for index, model, wall, amounts in self._added:
            minute = int(wall // BUCKET) * BUCKET
            for field, amount in amounts.items():
                if amount:
                    for count in ((index, field, None), (index, f"{model}|{field}", None), (index, field, minute)):
                        counts[count] = counts.get(count, 0) + amount
        self._added = []

    def batch(self, fps: list[str], wall: float) -> tuple[list[str], list[Any]] | None:
        """The USAGE script's keys and arguments (rewrite/state/redis/scripts.py); None when there is nothing to
        count. The same batch, under the same id, until `sent`."""
        self._spread()
        if self._sending is None:
            if not self._counts:
                return None
            self._sending, self._counts = (os.urandom(8).hex(), self._counts), {}
        batch_id, counts = self._sending
        keys, where = [self.names.batch(batch_id)], {}
        args: list[Any] = [BATCH_MARK, int(wall // BUCKET) * BUCKET - WINDOW]
        for (index, field, minute), amount in counts.items():
            name = self.names.usage(fps[index], hour=minute is not None)
            if name not in where:
                where[name] = len(keys)
                keys.append(name)
            args += [where[name], field if minute is None else f"{minute}|{field}",
                     repr(amount) if field.endswith("cost") else int(amount), HOUR_TTL if minute is not None else 0]
        return keys, args

    def sent(self) -> None:
        self._sending = None

    def snapshot(self, index: int, total: dict[bytes, bytes], hour: dict[bytes, bytes]) -> dict:
        """A key's usage as rewrite/pool/key_state.py's `KeyCounters.restore` takes it: what Redis holds, and what this
        worker counted that Redis does not hold yet."""
        totals: dict[str, float] = {k.decode(): float(v) for k, v in total.items()}
        minutes: dict[str, float] = {k.decode(): float(v) for k, v in hour.items()}
        self._spread()
        for counts in (self._counts, self._sending[1] if self._sending else {}):
            for (i, field, minute), amount in counts.items():
                if i == index:
                    target, name = (totals, field) if minute is None else (minutes, f"{minute}|{field}")
                    target[name] = target.get(name, 0) + amount
        by_model: dict[str, dict[str, float]] = {}
        for name, value in totals.items():
            model, _, field = name.rpartition("|")
            if model:
                by_model.setdefault(model, {})[field] = value
        by_minute: dict[int, dict[str, float]] = {}
        for name, value in minutes.items():
            stamp, _, field = name.partition("|")
            if stamp.isdigit():
                by_minute.setdefault(int(stamp), {})[field] = value
        return {"total": {f: totals.get(f, 0) for f in NAMES}, "by_model": by_model,
                "minutes": [[m, c] for m, c in sorted(by_minute.items())]}


class SharedUsage:
    """One pool's counts: added as they come, written about once a second (`flush`), read back (`observe`)."""

    def __init__(self, shared: RedisLink, keys: PoolKeys) -> None:
        self.shared, self.keys = shared, keys
        self.batches = UsageBatches(keys.names)
        # per fingerprint: (the view, its `changes` once restored, the two hashes it was restored from)
        self._restored: dict[str, tuple[Any, ...]] = {}

    def add(self, index: int, model: str, wall: float, amounts: dict[str, float]) -> None:
        """Add to the key's counters (rewrite/pool/key_state.py's), in all, for `model` and for this minute;
        written with the next batch."""
        self.batches.add(index, model, wall, amounts)
        if not self.shared.started:
            self.shared.start()

    async def flush(self) -> None:
        """Send the counts in one script call; a batch that did not go is sent again as it was, under its id."""
        batch = self.batches.batch(await self.keys.fingerprints(), time.time())
        if batch is not None:
            await self.shared.script(scripts.USAGE, *batch)
            self.batches.sent()

    def flush_sync(self, client: redis.Redis) -> None:
        """The same with a blocking client, when the process stops (and its event loop with it)."""
        batch = self.batches.batch(self.keys.fps, time.time()) if self.keys.fps else None
        if batch is not None and not self.shared.breaker.open:
            client.eval(scripts.USAGE, len(batch[0]), *batch[0], *batch[1])
            self.batches.sent()

    async def observe(self) -> None:
        """Every worker's counts, into the pool's own view (the status page, `rotator.pools`, least-used)."""
        fps, names = await self.keys.fingerprints(), self.keys.names
        replies = await self.shared.read(
            *[("HGETALL", names.usage(fp, hour=hour)) for fp in fps for hour in (False, True)])
        restored = self._restored
        for index, (fp, state) in enumerate(zip(fps, self.keys.states)):
            usage, total, hour = state.usage, replies[2 * index], replies[2 * index + 1]
            # (a view is what Redis holds plus what this worker counted since: when neither moved, it is the view it
            # was; turning every key's counts back into it each second was most of an idle worker's round)
            last = restored.get(fp)
            if last is not None and last[0] is usage and last[1] == usage.changes and last[2:] == (total, hour):
                continue
            usage.restore(self.batches.snapshot(index, dict(pairs(total)), dict(pairs(hour))))
            restored[fp] = usage, usage.changes, total, hour
