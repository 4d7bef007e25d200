"""A pool's conversation bindings as this process alone keeps them (rewrite/pool/affinity.py says what they are):
id -> `Binding` (the key by its index in the pool, until when on the wall clock), and per key its live
conversations, name -> until. Expired ones are dropped lazily: a binding when the dict has grown past a bound, a
key's live conversation when the key is bound again.

Persisted with the pool (rewrite/pool/persistence.py): each binding's key by its fingerprint id, never its index
or secret.
"""

from __future__ import annotations

import math

from rewrite.pool.affinity import COMPACTED, Affinity, Binding

PURGE_AT = 4096  # bindings kept before the expired ones are looked for (then twice as many as are live)


class Bindings:
    def __init__(self, keys: int) -> None:
        self.ids: dict[str, Binding] = {}
        self.conversations: list[dict[str, float]] = [{} for _ in range(keys)]  # per key: name -> until (wall)
        self._purge_at = PURGE_AT

    def lookup(self, affinity: Affinity, wall: float) -> tuple[Binding, bool] | None:
        """The binding of the first id looked up that is live and names a key of the pool, and whether the request
        is a compaction (found by its session only, its history far shorter than the bound turn's); the request's
        pin holder in its place when it names another key (under that binding's name)."""
        found = None
        for i in affinity.lookup:
            b = self.ids.get(i)
            if b is not None and b.until > wall and 0 <= b.key < len(self.conversations):
                found = b, i == affinity.session and affinity.depth < COMPACTED * b.depth
                break
        holder = affinity.holder
        if holder is None or not 0 <= holder < len(self.conversations) or (found and found[0].key == holder):
            return found
        return Binding(holder, math.inf, found[0].name if found else affinity.name, affinity.depth), False

    def bind(self, index: int, affinity: Affinity, conversation: str, extra: tuple[str, ...], wall: float) -> None:
        until = wall + affinity.ttl
        binding = Binding(index, until, conversation, affinity.depth)
        for i in (*affinity.bind, *extra):
            self.ids[i] = binding
        for n, live in enumerate(self.conversations):
            if n != index:
                live.pop(conversation, None)
        live = self.conversations[index]
        for name in [n for n, u in live.items() if u <= wall]:
            del live[name]
        live[conversation] = until
        if len(self.ids) > self._purge_at:
            self.ids = {i: b for i, b in self.ids.items() if b.until > wall}
            self._purge_at = max(PURGE_AT, 2 * len(self.ids))

    def unbind(self, index: int, affinity: Affinity) -> None:
        names = {affinity.name}
        for i in (*affinity.lookup, *affinity.bind):
            b = self.ids.get(i)
            if b is not None and b.key == index:
                del self.ids[i]
                names.add(b.name)
        for name in names:
            self.conversations[index].pop(name, None)

    def live(self, index: int, wall: float) -> int:
        return sum(1 for u in self.conversations[index].values() if u > wall)

    # -- persistence -------------------------------------------------------------------------------------------

    def export(self, ids: list[str], wall: float) -> dict[str, object]:
        """The live bindings and conversations, keys by fingerprint id (`ids`, in config order)."""
        return {"ids": {i: [ids[b.key], b.until, b.name, b.depth] for i, b in self.ids.items() if b.until > wall},
                "live": {ids[n]: {c: u for c, u in live.items() if u > wall}
                         for n, live in enumerate(self.conversations) if live}}

    def restore(self, record: object, ids: list[str], wall: float) -> None:
        """Continue from `export`; what does not parse, is past, or names a key no longer configured is ignored."""
        if not isinstance(record, dict):
            return
        index = {fp: n for n, fp in enumerate(ids)}
        kept = record.get("ids")
        for i, b in (kept.items() if isinstance(kept, dict) else ()):
            if (isinstance(b, list) and len(b) == 4 and b[0] in index and _time(b[1]) > wall
                    and isinstance(b[2], str) and isinstance(b[3], int)):
                self.ids[str(i)] = Binding(index[b[0]], float(b[1]), b[2], b[3])
        live = record.get("live")
        for fp, names in (live.items() if isinstance(live, dict) else ()):
            if fp in index and isinstance(names, dict):
                self.conversations[index[fp]].update({str(c): float(u) for c, u in names.items() if _time(u) > wall})


def _time(value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else -math.inf  # type: ignore[arg-type]
