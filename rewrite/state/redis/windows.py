"""One pool's quota windows in Redis (rewrite/pool/windows.py; the Lua is window_scripts.py): what an answer used,
and the vendor's figures, written at once on the pipe (as rests are: a pick sent after them sees them); the windows
every worker counted read about once a second into the pool's own view (the status page, `rotator.pools`, and the
decisions made alone while Redis does not answer). A write Redis did not take is not replayed: the vendor's next
answer says again what is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewrite.pool.windows import Check, Need, WindowTally, field_of
from rewrite.state.redis.link import pairs
from rewrite.state.redis.names import PoolKeys
from rewrite.state.redis.window_scripts import WINDOW
from rewrite.state.redis.writes import write_soon

if TYPE_CHECKING:
    from rewrite.pool.key_state import KeyState
    from rewrite.state.redis.link import RedisLink


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def passed_of(text: bytes | str, states: list[KeyState]) -> tuple[tuple[str, float], ...]:
    """The pick script's keys passed over for a window ("i:ms,..."): (key, seconds until its reset) each."""
    out = []
    for pair in _text(text).split(","):
        index, _, ms = pair.partition(":")
        if index.isdigit() and ms.isdigit() and 0 < int(index) <= len(states):
            out.append((states[int(index) - 1].secret, int(ms) / 1000))
    return tuple(out)


def check_args(need: Need) -> list[str]:
    """The pick's arguments for the request's checks (window_scripts.PICK_WINDOWS): its vendor windows' in one
    string, then one a cap's check."""
    caps = [f"{c.unit}|{c.amount!r}|{c.limit!r}|{int(c.reset * 1000)}|{c.window}" for c in need.caps]
    return [f"*|{need.tokens!r}|0|0|{need.group}", *caps] if need.group else caps


class SharedWindows:
    def __init__(self, shared: RedisLink, keys: PoolKeys) -> None:
        self.shared, self.keys = shared, keys

    def spend(self, index: int, checks: tuple[Check, ...], amounts: dict[str, float], wall: float) -> None:
        changes = [(field_of(c.window, c.unit), ["add", repr(amounts[c.unit]), repr(c.limit), int(c.reset * 1000), "0"])
                   for c in checks if amounts.get(c.unit)]
        self._write(index, changes, wall)

    def report(self, index: int, window: str, unit: str, tally: WindowTally, wall: float) -> None:
        self._write(index, [(field_of(window, unit), ["set", *tally.encoded().split("|")])], wall)

    def _write(self, index: int, changes: list[tuple[str, list]], wall: float) -> None:
        """Written at once when connected (a pick sent after this sees it); else in the background, and lost if
        Redis does not answer (the pool's own view holds it meanwhile)."""
        if changes:
            write_soon(self.shared, WINDOW,
                       lambda fps: ([self.keys.names.windows], self._args(fps, index, changes, wall)), self.keys)

    @staticmethod
    def _args(fps: list[str], index: int, changes: list[tuple[str, list]], wall: float) -> list[str | int | float]:
        args: list[str | int | float] = [int(wall * 1000)]
        for name, change in changes:
            args += [f"{fps[index]}|{name}", *change]
        return args

    async def observe(self) -> None:
        """Every worker's windows, into the pool's own view."""
        fps, name = await self.keys.fingerprints(), self.keys.names.windows
        [listed] = await self.shared.read(("HGETALL", name))
        by_fp: dict[str, dict[str, WindowTally]] = {fp: {} for fp in fps}
        for raw_field, raw_value in pairs(listed):
            fp, _, rest = _text(raw_field).partition("|")
            tally = WindowTally.decoded(_text(raw_value))
            if fp in by_fp and tally is not None:
                by_fp[fp][rest] = tally
        for fp, state in zip(fps, self.keys.states):
            state.windows = by_fp[fp]

