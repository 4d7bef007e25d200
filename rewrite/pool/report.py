"""What a pool says about itself: the `rotator.pools` command's JSON and table (the status page and `/metrics` show
the same; the log's summary line is rewrite/pool/state_line.py's).

Keys appear masked only.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rewrite.pool.key_state import Counts
from rewrite.pool.state_line import active_rests, state_text

if TYPE_CHECKING:
    from rewrite.pool.keypool import KeyPool


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds")


def describe(pool: KeyPool, now: float | None = None, wall: float | None = None) -> dict:
    """The pool as JSON for `rotator.pools` and the status page: each key masked, its state, leases, live
    conversations (bound to it), and counters in the last hour and in all; at `now` and `wall`, else the pool's
    clocks' time."""
    now = pool.clock() if now is None else now
    wall = pool.wall() if wall is None else wall
    keys = []
    for s in pool.states:
        keys.append({
            "key": s.masked,
            "state": s.state(now),
            "resting": [{**r, "until": _iso(r["until"]), "seconds": max(0, round(r["until"] - wall)),
                         **({"recheck": _iso(r["recheck"]), "recheck_in": max(0, round(r["recheck"] - wall))}
                            if "recheck" in r else {})}
                        for r in active_rests(s, now, wall)],
            "out": s.out,
            "in_flight": s.in_flight,
            "conversations": pool.decisions.books.live(s),
            "max_concurrent": s.max_concurrent,
            "weight": s.weight,
            "tier": s.tier,
            "last_hour": vars(hour := s.usage.hour(wall)),
            "total": vars(s.usage.total),
            "cache_read_share": {"last_hour": _share(hour), "total": _share(s.usage.total)},
            "models": {m: vars(c) for m, c in s.usage.by_model.items()},
            "windows": (shown := pool.quotas.describe(s.windows, wall)),
            "text": state_text(s, now, wall),
            "windows_text": windows_text(shown),
        })
    counts = Counter(k["state"] for k in keys)
    return {"provider": pool.name, "strategy": pool.strategy.name, "ready": counts["ready"],
            "resting": counts["resting"], "out": counts["out"], "keys": keys}


def windows_text(windows: list[dict]) -> str:
    """A key's quota windows in words: "gpt-4o requests 12 of 60 left, resets 2026-11-25T14:03:30Z (in 25 s)"."""
    return "; ".join(windows_words(windows))


def windows_words(windows: list) -> list[str]:
    """Each window in words: as a pool keeps it (`Quotas.describe`: its quota group or cap, unit, what is left of
    its limit, kept back, reset) or as an answer reported it (`Window.as_json`, a saved flow's too): "gpt-4o requests
    12 of 60 left (2000 kept back), resets 2026-11-25T14:03:30Z (in 25 s)", a plan's "five_hour 12% used, resets …"."""
    parts = []
    for w in windows:
        if not isinstance(w, dict):
            continue
        left, limit, used = w.get("remaining"), w.get("limit"), w.get("used")
        part = f"{w['window']} {w['unit']}" if "window" in w else str(w.get("name"))
        if isinstance(left, (int, float)) and (limit is not None or not isinstance(used, (int, float))):
            part += f" {left:g}" + (f" of {limit:g}" if isinstance(limit, (int, float)) else "") + " left"
        elif isinstance(used, (int, float)):
            part += f" {used:.0%} used"
        part += f" ({w['kept_back']:g} kept back)" if w.get("kept_back") else ""
        part += f", {w['status']}" if w.get("status") not in (None, "allowed") else ""
        if w.get("resets_at"):
            part += f", resets {w['resets_at']}" + (f" (in {w['resets_in']} s)" if "resets_in" in w else "")
        parts.append(part)
    return parts


def _share(counts: Counts) -> float | None:
    share = counts.cache_share()
    return None if share is None else round(share, 4)


def _cost(c: dict) -> str:
    text = f"${c['cost']:.4f}"
    return text + f" +{c['unpriced']} unpriced" if c["unpriced"] else text


def cache_cells(key: dict) -> tuple[str, str]:
    """A described key's prompt-cache share ("62% / 55%": of its input read from the cache, in the last hour and in
    all; "-" before any input) and what its cold prefixes cost ("$0.0120 / $0.3400": its cache writes above reads)."""
    share = key["cache_read_share"]
    shares = " / ".join("-" if share[p] is None else f"{share[p]:.0%}" for p in ("last_hour", "total"))
    return shares, f"${key['last_hour']['cold_cost']:.4f} / ${key['total']['cold_cost']:.4f}"


COLUMNS = ("key", "state", "in flight", "conversations", "requests 1h / all", "tokens 1h / all", "cost 1h / all",
           "cache read 1h / all", "cold prefixes 1h / all")


def table(pools: list[dict]) -> str:
    """Text for mitmweb's command bar and the console: one block per provider."""
    if not pools:
        return "rotator: no key pools configured"
    blocks = []
    for p in pools:
        rows = [COLUMNS]
        for k in p["keys"]:
            hour, total = k["last_hour"], k["total"]
            cap = f"/{k['max_concurrent']}" if k["max_concurrent"] is not None else ""
            rows.append((k["key"], k["text"], f"{k['in_flight']}{cap}", str(k.get("conversations", 0)),
                         f"{hour['requests']} / {total['requests']}",
                         f"{hour['tokens']} / {total['tokens']}", f"{_cost(hour)} / {_cost(total)}",
                         *cache_cells(k)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        lines = [f"{p['provider']} ({p['strategy']}): {p['ready']} ready, {p['resting']} resting, {p['out']} out"]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines += [f"  {k['key']} windows: {k['windows_text']}" for k in p["keys"] if k.get("windows_text")]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
