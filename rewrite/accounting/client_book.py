"""Who spent what: each client's requests, tokens and cost, by provider and model, in the calendar minute, hour, day,
week and month under way (UTC) and in all; kept in the state file with the pools' state (rewrite/state/kept.py:
`export` and `restore`, written in its batches).

A request is counted when it was answered (`add`: its usage, priced as Rotator prices answers, or covered by a
login's plan). A client's own sums over its providers and models are kept beside its rows, so a budget or limit
check (`spent`) reads one figure.

With `state.redis` every worker counts into one figure per client (rewrite/state/redis/clients.py, `shared`): each
worker's book is then what Redis holds, read about once a second (`adopt`), with what this worker counted since.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rewrite.pool.caps import period_end

PERIODS = ("minute", "hour", "day", "week", "month")
SHOWN = ("hour", "day", "month")  # on the status page and in `rotator.clients`, with the total
FIGURES = ("requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost",
           "covered", "unpriced")
REQUESTS, INPUT, OUTPUT, CACHE_READ, CACHE_WRITE, COST, COVERED, UNPRICED = range(len(FIGURES))
SCOPE = "clients"  # the state file's records: one per client
SEP = "\x1f"  # between a row's provider and model in a record

Figures = list[float]


def blank() -> Figures:
    return [0.0] * len(FIGURES)


class ClientSpent:
    """One row's (or one client's) figures: in all, and in each period under way as (its end, figures)."""

    __slots__ = ("total", "periods")

    def __init__(self) -> None:
        self.total = blank()
        self.periods: dict[str, tuple[float, Figures]] = {}

    def add(self, figures: Figures, ends: dict[str, float]) -> None:
        for i, v in enumerate(figures):
            self.total[i] += v
        for per, end in ends.items():
            held = self.periods.get(per)
            if held is None or held[0] != end:
                held = self.periods[per] = (end, blank())
            for i, v in enumerate(figures):
                held[1][i] += v

    def within(self, per: str | None, end: float) -> Figures:
        """The figures of the period ending at `end` (in all for None)."""
        if per is None:
            return self.total
        held = self.periods.get(per)
        return held[1] if held is not None and held[0] == end else blank()

    def export(self) -> dict:
        return {"total": list(self.total), **{per: [end, list(f)] for per, (end, f) in self.periods.items()}}

    @classmethod
    def restored(cls, record: dict) -> ClientSpent:
        spent = cls()
        spent.total = _figures(record.get("total"))
        for per in PERIODS:
            held = record.get(per)
            if isinstance(held, list) and len(held) == 2 and isinstance(held[0], (int, float)):
                spent.periods[per] = (float(held[0]), _figures(held[1]))
        return spent


class ClientBook:
    """Every client's spending; `dirty` since the last `export`, `on_change` told of the first change after it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.rows: dict[str, dict[tuple[str, str], ClientSpent]] = {}  # client -> (provider, model) -> its figures
        self.sums: dict[str, ClientSpent] = {}  # client -> its figures over every row
        self.dirty = False
        self.on_change: Callable[[], None] | None = None
        self.shared: Any = None  # with state.redis: where every worker counts (rewrite/state/redis/clients.py)
        self._ends: dict[str, float] = {}
        self._ends_until = 0.0  # (the period ends are worked out again when the first of them passes)

    def ends(self, now: float) -> dict[str, float]:
        """When each period under way at `now` ends."""
        if now >= self._ends_until or now < self._ends_until - 31 * 86400:
            self._ends = {per: period_end(per, now) for per in PERIODS}
            self._ends_until = min(self._ends.values())
        return self._ends

    def add(self, client: str, provider: str, model: str, figures: Figures) -> None:
        ends = self.ends(self.clock())
        rows = self.rows.setdefault(client, {})
        row = rows.get((provider, model))
        if row is None:
            row = rows[(provider, model)] = ClientSpent()
        row.add(figures, ends)
        sums = self.sums.get(client)
        if sums is None:
            sums = self.sums[client] = ClientSpent()
        sums.add(figures, ends)
        if not self.dirty:
            self.dirty = True
            if self.on_change is not None:
                self.on_change()

    def spent(self, client: str, unit: str, per: str | None, now: float) -> float:
        """What `client` spent of `unit` (dollars, requests, tokens: input and output) in the period `per` under way
        at `now` (None: in all)."""
        sums = self.sums.get(client)
        if sums is None:
            return 0.0
        f = sums.within(per, self.ends(now)[per] if per else 0.0)
        if unit == "dollars":
            return f[COST]
        if unit == "requests":
            return f[REQUESTS]
        return f[INPUT] + f[OUTPUT]

    def describe(self) -> list[dict]:
        """Each client's rows, by provider and model: its figures this hour, day and month (UTC) and in all."""
        ends = self.ends(self.clock())
        out = []
        for client, rows in sorted(self.rows.items()):
            for (provider, model), row in sorted(rows.items()):
                shown = {per: _named(row.within(per, ends[per])) for per in SHOWN}
                out.append({"client": client, "provider": provider, "model": model, **shown,
                            "total": _named(row.total)})
        return out

    def export(self) -> dict[str, object]:
        """The state file's records (scope SCOPE), one per client; no longer dirty."""
        self.dirty = False
        return {client: {f"{p}{SEP}{m}": row.export() for (p, m), row in rows.items()}
                for client, rows in self.rows.items()}

    def adopt(self, rows: dict[str, dict[tuple[str, str], ClientSpent]], sums: dict[str, ClientSpent]) -> None:
        """Every client's figures as every worker counted them (Redis's, when they changed), in place of this
        book's."""
        self.rows, self.sums = rows, sums
        if not self.dirty:
            self.dirty = True
            if self.on_change is not None:
                self.on_change()

    def restore(self, records: dict[str, object]) -> None:
        """What the state file kept, under what this run counted already (none, at a start)."""
        for client, rows in records.items():
            if not isinstance(rows, dict) or client in self.rows:
                continue
            for name, record in rows.items():
                provider, _, model = str(name).partition(SEP)
                if isinstance(record, dict):
                    row = ClientSpent.restored(record)
                    self.rows.setdefault(client, {})[(provider, model)] = row
                    _sum_into(self.sums.setdefault(client, ClientSpent()), row)


def _sum_into(sums: ClientSpent, row: ClientSpent) -> None:
    for i, v in enumerate(row.total):
        sums.total[i] += v
    for per, (end, figures) in row.periods.items():
        held = sums.periods.get(per)
        if held is None or held[0] < end:
            held = sums.periods[per] = (end, blank())
        if held[0] == end:
            for i, v in enumerate(figures):
                held[1][i] += v


def _figures(value: object) -> Figures:
    if isinstance(value, list) and len(value) == len(FIGURES) and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    return blank()


def _named(f: Figures) -> dict:
    named: dict = {name: int(f[i]) for i, name in enumerate(FIGURES) if name != "cost"}
    named["cost"] = round(f[COST], 6)
    return named


def book_of(plugin: object) -> ClientBook | None:
    """The book a plug-in keeps (the clients plug-in's: rewrite/plugins/clients.py), if it keeps one."""
    book = getattr(plugin, "book", None)
    return book if isinstance(book, ClientBook) else None
