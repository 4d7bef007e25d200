"""A key's quota windows: what is left of each until its reset, and whether the next request fits.

Two sources, one shape (`WindowTally`, kept per key in `KeyState.windows` by "window|unit"):
- the vendor's: each answer's rate-limit windows (protocols/windows.py: requests, tokens, input and output tokens
  left, the limit, the reset), by the model's quota group (the window id is the group: a group's window is counted
  once, whichever of its models is asked); the vendor's figures replace what was counted, and a `share` cap keeps
  part of the limit back (`reserve`);
- the config's caps (rewrite/pool/caps.py): requests, tokens and dollars counted in a calendar period (the window
  id is the cap's).

Between the vendor's answers Rotator counts what it sends: a key picked has the request counted in its windows (one
request, and in the vendor's windows the tokens its body suggests, until the vendor's answer says what is left), and
a cap counts the tokens and dollars of each answer's usage. A request's `Need` lists the windows that count it
(`Check`s) and what it is expected to spend of each. A key whose window has been used and has less left
than that is passed over until the window's reset (a window untouched takes any request: one larger than the
whole window could never be sent otherwise). Times are epoch seconds on the wall clock: a vendor's reset is a time
of day, a cap's period a calendar one. A pool with no cap, whose answers have reported no window yet and which shares
no worker's windows, has none to check: its requests' `Need` is empty (`KeyPool.need`), and nothing here runs.

Both implementations of the pool's decisions make the same checks: rewrite/pool/local.py with the functions here,
rewrite/state/redis/window_scripts.py in the pick script.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from protocols.windows import NO_GROUPS, UNITS, QuotaGroups, Window, iso
from rewrite.pool.caps import DOLLARS, CapConfig, PoolCap, period_end

EPSILON = 1e-9  # a window with nothing left takes no request, even one that is expected to spend nothing of it
REQUESTS = UNITS[0]


class Check(NamedTuple):
    """One window that counts a request, and what the request is expected to spend of it."""

    window: str  # the model's quota group (a vendor's window), or a cap's id
    unit: str  # requests, tokens, input_tokens, output_tokens, dollars
    amount: float  # 1 request, the estimated tokens; 0 where it is not known before the answer
    limit: float = 0.0  # a cap's amount (0: a vendor's window, whose limit its answers report)
    reset: float = 0.0  # a cap's current period's end, epoch seconds


# What a request is expected to spend of each unit of its vendor's windows: (unit, a request's, each token's). The
# pick script makes its checks from these too (rewrite/state/redis/window_scripts.py).
VENDOR_SPEND = tuple((u, float(u == REQUESTS), float(u in ("tokens", "input_tokens"))) for u in UNITS)


def vendor_checks(group: str, tokens: float) -> tuple[Check, ...]:
    """A request's checks in its model's quota group's vendor windows ("": none)."""
    return tuple([Check(group, u, one + each * tokens) for u, one, each in VENDOR_SPEND]) if group else ()


@dataclass(slots=True)
class Need:
    """What the next attempt is expected to spend of its key's windows: those of its model's quota group (`group`;
    "" for none), a request of `tokens` tokens (estimated), and the caps that count it (`caps`). Its `checks` are
    made only where they are read (a shared pick sends the group and the tokens: the script makes its own), and
    from then on read as a plain attribute (no call where a pool without windows asks). Made at every request: not
    frozen, which would double what it costs to make."""

    group: str = ""
    tokens: float = 0.0
    caps: tuple[Check, ...] = ()
    client: object = None  # a client's budget and limits, for a shared pick (rewrite/accounting/client_rules.py)
    checks: tuple[Check, ...] = field(init=False, repr=False, compare=False)  # one check a window that counts it

    def __getattr__(self, name: str) -> tuple[Check, ...]:
        if name != "checks":  # (only an attribute not set comes here)
            raise AttributeError(name)
        self.checks = vendor_checks(self.group, self.tokens) + self.caps
        return self.checks


NO_NEED = Need()
NO_NEED.checks = ()  # (set here: read at every request of a pool without windows)


@dataclass
class WindowTally:
    """One window of one key: what is left of it until its reset."""

    left: float
    limit: float  # 0: not known (the vendor did not say)
    reset: float  # epoch seconds; past it, the window is whole again (a cap's, or the vendor's word is stale)
    reserve: float = 0.0  # kept back: a share cap's part of the vendor's limit

    def short(self, amount: float) -> bool:
        """Less is left than `amount`, in a window that has been used."""
        untouched = self.limit > 0 and self.left >= self.limit
        return not untouched and self.left - self.reserve < max(amount, EPSILON)

    def room(self) -> float | None:
        """The share of the usable window left (0..1); None when its limit is not known."""
        usable = self.limit - self.reserve
        return max(0.0, min(1.0, (self.left - self.reserve) / usable)) if usable > 0 else None

    def encoded(self) -> str:
        return f"{self.left!r}|{self.limit!r}|{int(self.reset * 1000)}|{self.reserve!r}"

    @classmethod
    def decoded(cls, text: str) -> WindowTally | None:
        parts = text.split("|")
        try:
            left, limit, reset_ms, reserve = (float(p) for p in parts)
        except ValueError:
            return None
        return cls(left, limit, reset_ms / 1000, reserve) if len(parts) == 4 else None


def field_of(window: str, unit: str) -> str:
    return f"{window}|{unit}"


# -- one key's tallies (KeyState.windows), as the pick script has them too ----------------------------------------


def live(tallies: Mapping[str, WindowTally], check: Check, wall: float) -> WindowTally | None:
    t = tallies.get(field_of(check.window, check.unit))
    return t if t is not None and t.reset > wall else None


def wait(tallies: Mapping[str, WindowTally], need: Need, wall: float) -> float:
    """Seconds until the key's windows take a request of `need` (0: now)."""
    ends = [t.reset - wall for c in need.checks if (t := live(tallies, c, wall)) is not None and t.short(c.amount)]
    return max(ends, default=0.0)


def headroom(tallies: Mapping[str, WindowTally], need: Need, wall: float) -> float:
    """The share of the key's tightest window that `need`'s request counts in still left, 0..1 (1: none is known
    to be used): for placing a new conversation on the key with the most room."""
    rooms = [r for c in need.checks if (t := live(tallies, c, wall)) is not None and (r := t.room()) is not None]
    return min(rooms, default=1.0)


def picked(tallies: dict[str, WindowTally], checks: Iterable[Check], wall: float) -> None:
    """A request sent on the key, counted in its windows: in the vendor's, what it is expected to spend (the
    vendor's answer then says what is left); in a cap's, the request (its usage is counted when it is known)."""
    for c in checks:
        if c.limit == 0 or c.unit == REQUESTS:
            spend(tallies, (c,), {c.unit: c.amount}, wall)


def spend(tallies: dict[str, WindowTally], checks: Iterable[Check], amounts: Mapping[str, float], wall: float) -> None:
    """Count `amounts` (by unit) in each window of `checks`: a cap's under way (a new period starts whole), a
    vendor's while its word holds."""
    for c in checks:
        amount = amounts.get(c.unit)
        if not amount:
            continue
        key = field_of(c.window, c.unit)
        t = tallies.get(key)
        if t is not None and t.reset > wall:
            t.left -= amount
        elif c.limit > 0:
            tallies[key] = WindowTally(c.limit - amount, c.limit, c.reset)


class Windowed(Protocol):
    """What keeps one key's tallies (rewrite/pool/key_state.py's `KeyState`)."""

    @property
    def windows(self) -> dict[str, WindowTally]: ...


def passed_over[K: Windowed](states: list[K], quotas: Quotas, model: str, tokens: float, wall: float
                             ) -> list[tuple[K, str, str, float]]:
    """The keys a request at `model` of `tokens` tokens is passed over for, as their windows say: (key, the window
    in words, its unit, its reset), the window that resets last for each."""
    checks = quotas.checks(model, wall, tokens) if any(s.windows for s in states) else ()
    out = []
    for s in states:
        short = [(t.reset, c) for c in checks if (t := live(s.windows, c, wall)) is not None and t.short(c.amount)]
        if short:
            reset, c = max(short, key=lambda found: found[0])
            out.append((s, quotas.label(c.window), c.unit, reset))
    return out


# -- a pool's groups and caps --------------------------------------------------------------------------------------


@dataclass
class Quotas:
    """A pool's quota groups (the vendor's, with the config's over them) and caps (its `windows:`)."""

    groups: QuotaGroups = NO_GROUPS
    caps: list[PoolCap] = field(default_factory=list)
    # The model's quota group (the model itself when it shares its quota with none; "" for none): what a rate limit
    # for it rests, and the id of its vendor's windows. (Its groups' own `group`.)
    scope: Callable[[str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.scope = self.groups.group

    @classmethod
    def of(cls, groups: QuotaGroups, named: Mapping[str, list[str]], caps: Iterable[CapConfig]) -> Quotas:
        return cls(groups.overridden(named) if named else groups, [PoolCap.of(c) for c in caps])

    def checks(self, model: str, wall: float, tokens: float = 0.0, caps_only: bool = False) -> tuple[Check, ...]:
        """The windows that count a request at `model`, and what one of `tokens` (estimated) spends of each (the
        caps' alone: what an answer's usage is counted in)."""
        group = self.scope(model)
        caps = self._caps_of(model, group, wall, tokens)
        return caps if caps_only else vendor_checks(group, tokens) + caps

    def need(self, model: str, tokens: float, wall: float) -> Need:
        group = self.scope(model)
        return Need(group, tokens, self._caps_of(model, group, wall, tokens))

    def _caps_of(self, model: str, group: str, wall: float, tokens: float) -> tuple[Check, ...]:
        if not self.caps:
            return ()
        expected = {u: one + each * tokens for u, one, each in VENDOR_SPEND}
        out: list[Check] = []
        for cap in self.caps:
            if cap.per is not None and cap.covers(model, group):
                end = period_end(cap.per, wall)
                out += [Check(cap.id, u, expected.get(u, 0.0), a, end) for u, a in cap.amounts]
        return tuple(out)

    def reported(self, model: str, windows: Iterable[Window]) -> list[tuple[str, str, WindowTally]]:
        """An answer's rate-limit windows (those that count a unit and name a reset) as (window id, unit, tally),
        with what a share cap keeps back."""
        out = []
        for w in windows:
            if w.unit not in UNITS or w.remaining is None or w.resets_at is None:
                continue
            group = self.scope(w.model or model)
            limit = w.limit or 0.0
            share = min((s for cap in self.caps if cap.covers(w.model or model, group)
                         for u, s in cap.shares if u == w.unit), default=1.0)
            out.append((group, w.unit, WindowTally(w.remaining, limit, w.resets_at, (1 - share) * limit)))
        return out

    def label(self, window: str) -> str:
        """A window id in words: a quota group's name, or a cap's "(cap) per day"."""
        cap = next((c for c in self.caps if c.id == window), None)
        return window if cap is None else f"(cap) {cap.label}"

    def describe(self, tallies: Mapping[str, WindowTally], wall: float) -> list[dict]:
        """A key's windows under way, for `rotator.pools`, the status page and the metrics."""
        out = []
        for key, t in sorted(tallies.items()):
            if t.reset <= wall:
                continue
            window, _, unit = key.rpartition("|")
            shown: dict = {"window": self.label(window), "unit": unit,
                           "remaining": round(t.left, 6) if unit == DOLLARS else math.floor(t.left),
                           "limit": t.limit or None, "resets_at": iso(t.reset),
                           "resets_in": max(0, math.ceil(t.reset - wall)), "source": "cap" if window.startswith("#")
                           else "vendor"}
            if t.reserve:
                shown["kept_back"] = math.ceil(t.reserve)
            out.append(shown)
        return out
