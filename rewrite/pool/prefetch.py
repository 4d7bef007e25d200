"""The first attempt's shared pick, started as soon as the request is known to be an LLM call (the addon's request
hook), while the request still goes its way to the engine: the round trip to Redis overlaps that work instead of
being waited for at the pick. It halved the time to the first byte the pick adds (measured: +0.33 -> +0.15 ms); the
pick's CPU stays what it was (docs/benchmark.md, "Where a Redis pick's time goes").

It is used only by the attempt it was made for (the same pool, the same model, the first pick); any other, or a
request that ends before its first attempt, gives its lease back."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rewrite.pool.decisions import Decisions, Pick

# The model member of a JSON body: SDKs put it at the start or the end, after the messages. A guess only: the
# attempt uses the pick only if its model is the one guessed.
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_LOOK = 4096  # bytes looked at, at each end of the body


def model_in_body(raw: bytes | None) -> str | None:
    if not raw:
        return None
    found = _MODEL.search(raw, 0, _LOOK) or (_MODEL.search(raw, len(raw) - _LOOK) if len(raw) > _LOOK else None)
    return found[1].decode(errors="replace") if found else None


class Prefetch:
    def __init__(self, pool: Decisions, model: str, pick: asyncio.Future[Pick | None]) -> None:
        self.pool, self.model, self.pick = pool, model, pick  # (`pool`: the decisions that made it)
        self._taken = False

    def take(self, pool: Decisions, model: str) -> asyncio.Future[Pick | None] | None:
        """The pick, when `pool` made it for `model`; else None (and its lease is given back)."""
        if self._taken:
            return None
        if pool is not self.pool or model != self.model:
            self.drop()
            return None
        self._taken = True
        return self.pick

    def drop(self) -> None:
        """Not used: its lease goes back now, or once the pick is in (a capped key's slot is then free before a
        pick made after this)."""
        if not self._taken:
            self._taken = True
            if self.pick.done():
                _give_back(self.pick)
            else:
                self.pick.add_done_callback(_give_back)


def _give_back(pick: asyncio.Future[Pick | None]) -> None:
    if not pick.cancelled() and pick.exception() is None and (made := pick.result()) is not None:
        made.drop()
