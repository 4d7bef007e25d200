"""The usage windows a vendor's answer reports, as one typed result (`Window`): a subscription plan's (Anthropic's
5-hour and 7-day utilisation, Copilot's premium requests) and, read the same way, an API key's rate limits
(`x-ratelimit-remaining-*` / `-reset-*`, `anthropic-ratelimit-*-remaining` / `-reset`, a Gemini quota error's
`QuotaFailure`), each with the unit it counts (`Window.unit`: requests, tokens, input or output tokens), which the
key pools weigh (rewrite/pool/windows.py).

Each vendor family carries a `WindowReader` (none by default: protocols/families/), and a login provider adds its
dialects (protocols/logins/): a dialect is a pure function `(answer, windows read so far) -> windows`, as the error
reader's are (protocols/vendor_errors.py). Read from every answer, a success as well as an error. The reader also
knows which of its vendor's models share one quota (`QuotaGroups`): a quota group's windows are one window.

Pure functions of (status, headers, body, now). Every value is vendor-written: one that does not parse, is negative
or is not finite is left out, never an error.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from protocols.vendor_errors import lowered


class WindowStatus(StrEnum):
    """What the vendor says of a window (None on a `Window`: it says nothing but the figures)."""

    ALLOWED = "allowed"
    WARNING = "warning"  # served, close to the limit
    EXHAUSTED = "exhausted"  # refused until the window resets


@dataclass(frozen=True, slots=True)
class Window:
    """One limit over a window of time, as an answer reported it."""

    name: str  # the vendor's name for it: five_hour, seven_day, premium_interactions, requests, tokens, ...
    used: float | None = None  # the share used, 0..1
    remaining: float | None = None  # units left (requests, tokens, premium requests)
    limit: float | None = None  # units the window holds
    resets_at: float | None = None  # epoch seconds
    status: WindowStatus | None = None
    binding: bool = False  # the window the vendor names as the one that limits now (Anthropic's representative claim)
    # What its figures count (one of UNITS); None: a plan's share, or what only its name says.
    unit: str | None = None
    model: str | None = None  # the model the vendor says it is for (Gemini's quota dimensions); None: the request's
    # It holds for the request's model alone, which its reader does not know (a plan's per-model limit): `for_model`
    # names it in `model`.
    asked: bool = False

    @property
    def share(self) -> float | None:
        """The share used: as reported, else from what remains of the limit."""
        if self.used is not None:
            return self.used
        if self.remaining is not None and self.limit:
            return max(0.0, min(1.0, 1 - self.remaining / self.limit))
        return None

    def exhausted(self, now: float) -> bool:
        """Refused now: the vendor said so, and its reset (if named) is still to come."""
        return self.status is WindowStatus.EXHAUSTED and (self.resets_at is None or self.resets_at > now)

    def as_json(self) -> dict:
        """For flows, the status page and `rotator.pools`: the figures, the reset as an ISO time."""
        out: dict = {"name": self.name}
        share = self.share
        for name, value in (("used", None if share is None else round(share, 4)), ("remaining", self.remaining),
                            ("limit", self.limit), ("status", self.status)):
            if value is not None:
                out[name] = str(value) if name == "status" else value
        if self.resets_at is not None:
            out["resets_at"] = iso(self.resets_at)
        if self.binding:
            out["binding"] = True
        if self.unit is not None and self.unit != self.name:
            out["unit"] = self.unit
        if self.model is not None:
            out["model"] = self.model
        return out


UNITS = ("requests", "tokens", "input_tokens", "output_tokens")  # what a key's rate-limit windows count
GROUPS_KEPT = 4096  # models whose quota group one QuotaGroups remembers


@dataclass(frozen=True)
class QuotaGroups:
    """Which models share one quota at a vendor (its rate limits and quota errors count them together): named
    groups of globs, first match wins, and dated snapshots (`dated`, the date's pattern at the end of a name) that
    share their alias's. A model in no group is its own."""

    named: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dated: re.Pattern[str] | None = None
    # Each model's group, once its globs were matched (asked several times a request); by model, bounded.
    _groups: dict[str, str] = field(default_factory=dict, init=False, compare=False, hash=False, repr=False)

    def group(self, model: str) -> str:
        """The model's group ("" for no model: its rests are the whole key's)."""
        found = self._groups.get(model)
        if found is None:
            found = _group_of(self, model) if model else model
            if len(self._groups) < GROUPS_KEPT:  # (model names come from clients)
                self._groups[model] = found
        return found

    def overridden(self, named: Mapping[str, Iterable[str]]) -> QuotaGroups:
        """These groups with `named` (a config's) matched first."""
        return dataclasses.replace(self, named=(*((n, tuple(g)) for n, g in named.items()), *self.named))


NO_GROUPS = QuotaGroups()


def _group_of(groups: QuotaGroups, model: str) -> str:
    for name, globs in groups.named:
        if any(fnmatch.fnmatchcase(model, g) for g in globs):
            return name
    if groups.dated is not None and (m := groups.dated.search(model)) is not None and m.start() > 0:
        return model[:m.start()]
    return model


@dataclass(frozen=True, slots=True)
class WindowAnswer:
    """An answer as a window dialect reads it."""

    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    now: float  # seconds since the epoch


WindowDialect = Callable[[WindowAnswer, tuple[Window, ...]], tuple[Window, ...]]


@dataclass(frozen=True)
class WindowReader:
    """A protocol's (or a login's) reader of the windows an answer reports: `dialects` in order; and which of its
    vendor's models share one quota (`groups`)."""

    dialects: tuple[WindowDialect, ...] = ()
    groups: QuotaGroups = NO_GROUPS
    # The prefixes (lower case) of the headers its dialects read windows from: an answer with no body and none of
    # them reports nothing (a success's head, most answers), so it is not read. None: any header may (a dialect
    # added without saying).
    heads: tuple[str, ...] | None = None

    def __bool__(self) -> bool:
        return bool(self.dialects)

    def read(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, now: float) -> tuple[Window, ...]:
        if not self.dialects:
            return ()
        if not body and self.heads is not None:
            headers = list(headers)
            if not any(n.lower().startswith(self.heads) for n, _ in headers):
                return ()
        answer = WindowAnswer(status, lowered(headers), body, now)
        windows: tuple[Window, ...] = ()
        for dialect in self.dialects:
            windows = dialect(answer, windows)
        return windows

    def with_dialects(self, *dialects: WindowDialect) -> WindowReader:
        """This reader with `dialects` read after its own (a vendor's variant of the protocol: any header may say
        its windows)."""
        return dataclasses.replace(self, dialects=(*self.dialects, *dialects), heads=None)


NO_WINDOWS = WindowReader()

# A login's plan look-up (a side call its client makes to read its plan, `Login.lookup`): what its answer reports,
# the plan's windows and facts shown beside them (Codex's reset credits), from (path, status, body, now).
Lookup = tuple[tuple[Window, ...], dict]
NOTHING_LOOKED_UP: Lookup = ((), {})


def looked_up(status: int, body: bytes) -> dict | None:
    """A look-up's answer as a JSON object; None for an error or anything else."""
    if status != 200 or body[:1] not in (b"{", b"["):
        return None
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return answer if isinstance(answer, dict) else {"items": answer} if isinstance(answer, list) else None


def for_model(windows: tuple[Window, ...], model: str) -> tuple[Window, ...]:
    """An answer's windows, those that hold for the request's model alone (`asked`) named its (`model`)."""
    if not model or not any(w.asked and w.model is None for w in windows):
        return windows
    return tuple(dataclasses.replace(w, model=model) if w.asked and w.model is None else w for w in windows)


def exhausted_until(windows: Iterable[Window], now: float) -> float | None:
    """When the last window refused now resets (inf: one names no reset); None when none is refused."""
    ends = [w.resets_at if w.resets_at is not None else math.inf for w in windows if w.exhausted(now)]
    return max(ends) if ends else None


def limit_headers(answer: WindowAnswer, header: Callable[[str, str], str], units: Mapping[str, str],
                  reset: Callable[[str | None, float], float | None]) -> tuple[Window, ...]:
    """A key's rate limits as a vendor's headers say them, one window a unit: `header(unit, part)` names the header
    of a unit as the vendor writes it (`units`: the vendor's spelling -> one of UNITS) and a part (limit,
    remaining, reset); `reset` reads the reset's value as an epoch time."""
    h, found = answer.headers, []
    for spelled, unit in units.items():
        said = h.get(header(spelled, "limit")), h.get(header(spelled, "remaining"))
        if any(unknown(v) for v in said):  # (Azure's Responses says -1: it does not know; no window)
            continue
        limit, remaining = number(said[0]), number(said[1])
        if limit is None and remaining is None:
            continue
        resets_at = reset(h.get(header(spelled, "reset")), answer.now)
        if resets_at is not None and not answer.now <= resets_at <= answer.now + MAX_RESET:
            resets_at = None
        found.append(Window(unit, remaining=remaining, limit=limit, resets_at=resets_at, unit=unit))
    return tuple(found)


MAX_RESET = 31 * 86400.0  # no rate-limit window is longer than a month: a later reset is a vendor's mistake


def merged(old: Iterable[Window], new: Iterable[Window]) -> tuple[Window, ...]:
    """`old` with the windows `new` reports in their place (by name), the others kept."""
    by_name = {w.name: w for w in old}
    by_name.update((w.name, w) for w in new)
    return tuple(by_name.values())


# -- values as vendors write them -----------------------------------------------------------------------------------


def number(text: str | None) -> float | None:
    """A finite, non-negative number (`0.42`, `300`); None for anything else."""
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def unknown(text: str | None) -> bool:
    """A figure a vendor writes as a negative number (`-1`): it says it does not know."""
    try:
        return float((text or "").strip()) < 0
    except ValueError:
        return False


def share(text: str | None) -> float | None:
    """A share used, 0..1 (a vendor's `1.02` is 1)."""
    value = number(text)
    return None if value is None else min(value, 1.0)


def epoch(text: str | None) -> float | None:
    """A time written as Unix seconds (`1767225600`) or RFC 3339 (`2026-01-01T00:00:00Z`)."""
    value = number(text)
    if value is not None:
        return value if value < LAST_TIME else None
    try:
        when = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


LAST_TIME = 253402300800.0  # 10000-01-01: a later "time" is a vendor's mistake


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
