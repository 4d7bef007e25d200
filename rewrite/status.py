"""The status page (`http://rotator.status/` through the proxy): providers, their keys (masked) and states, recent
errors per key, requests in flight, and usage and cost since start.

Pure: `page` gathers one dict, the page's public shape (what `?format=json` returns); `render_text`,
`render_html` and `render_json` turn it into a body. `Tally` keeps the counts of finished requests that the
pools do not keep themselves. Keys only ever appear here in their masked form.
"""

from __future__ import annotations

import html
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field

RECENT_ERRORS = 5  # per key
# Notes of a flow (rewrite/exchange.py) that say an attempt on a key went wrong.
ERROR_KINDS = frozenset({"retry", "failed", "cut", "repaired"})
READY, RESTING, OUT = "ready", "resting", "out"


@dataclass
class KeyCounts:
    requests: int = 0  # finished requests this key served (its last attempt)
    error_count: int = 0
    errors: deque = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    usage: Counter = field(default_factory=Counter)
    cost: float = 0.0
    unpriced: int = 0  # requests with usage but no known cost


class Tally:
    """Counts of finished requests per provider and masked key, since start, from what each flow recorded."""

    def __init__(self, clock=time.time) -> None:
        self.started = clock()
        self._clock = clock
        self.keys: dict[tuple[str, str | None], KeyCounts] = {}

    def record(self, rotator: dict) -> None:
        """One finished flow's `flow.metadata["rotator"]`."""
        provider = rotator.get("provider")
        if not isinstance(provider, str) or "refused" in rotator:
            return
        key = rotator.get("key") if isinstance(rotator.get("key"), str) else None
        now = self._clock()
        served = self._counts(provider, key)
        served.requests += 1
        for note in rotator.get("events") or ():
            if not isinstance(note, dict) or note.get("kind") not in ERROR_KINDS:
                continue
            noted = note.get("key") if note.get("kind") == "retry" else key
            if not isinstance(noted, str):
                continue  # no key was used (every key resting): not a key's error
            counts = self._counts(provider, noted)
            counts.error_count += 1
            counts.errors.append({"at": now, "kind": note["kind"], "reason": str(note.get("reason") or
                                                                               note.get("detail") or "")[:200]})
        usage = rotator.get("usage")
        if isinstance(usage, dict):
            served.usage.update({k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)})
            cost = rotator.get("cost")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                served.cost += cost
            else:
                served.unpriced += 1

    def _counts(self, provider: str, key: str | None) -> KeyCounts:
        counts = self.keys.get((provider, key))
        if counts is None:
            counts = self.keys[(provider, key)] = KeyCounts()
        return counts


@dataclass(frozen=True)
class Flight:
    """A request in flight, as the page shows it."""

    id: str
    provider: str
    key: str | None  # masked; None before its first attempt, or without a pool
    protocol: str | None
    started: float  # epoch seconds


def page(providers: list[dict], flights: list[Flight], tally: Tally, now: float) -> dict:
    """The page's data. `providers`: [{"name", "family", "keys": [pool key states] or None without a pool}], each
    key state {"key" (masked), "state", "seconds" (until it is back, when not ready), "why"}."""
    out = []
    for p in providers:
        flying = [f for f in flights if f.provider == p["name"]]
        keys = [_key(p["name"], k, flying, tally, now) for k in p["keys"] or ()]
        own = tally.keys.get((p["name"], None))
        out.append({
            "name": p["name"], "family": p["family"], "pool": p["keys"] is not None,
            "in_flight": len(flying), **_totals([c for (name, _), c in tally.keys.items() if name == p["name"]]),
            "keys": keys, **({"client_keys": _counts(own)} if own is not None else {}),
        })
    return {
        "started": iso(tally.started), "uptime_seconds": round(now - tally.started),
        "in_flight": len(flights), **_totals(list(tally.keys.values())),
        "providers": out,
        "requests_in_flight": [
            {"id": f.id, "provider": f.provider, "key": f.key, "protocol": f.protocol,
             "seconds": round(max(0.0, now - f.started), 1)}
            for f in sorted(flights, key=lambda f: f.started)
        ],
    }


def _key(provider: str, state: dict, flying: list[Flight], tally: Tally, now: float) -> dict:
    seconds = state.get("seconds")
    out = {"key": state["key"], "state": state["state"], "why": state.get("why"),
           "until": iso(now + seconds) if seconds else None, "seconds_left": round(seconds) if seconds else None,
           "in_flight": sum(1 for f in flying if f.key == state["key"])}
    counts = tally.keys.get((provider, state["key"]))
    return {**out, **_counts(counts or KeyCounts())}


def _counts(c: KeyCounts) -> dict:
    return {"requests": c.requests, "error_count": c.error_count,
            "errors": [{**e, "at": iso(e["at"])} for e in c.errors],
            "usage": dict(c.usage), "cost": _cost(c.cost, c.unpriced, bool(c.usage))}


def _totals(counts: list[KeyCounts]) -> dict:
    usage: Counter = Counter()
    for c in counts:
        usage.update(c.usage)
    return {"requests": sum(c.requests for c in counts), "usage": dict(usage),
            "cost": _cost(sum(c.cost for c in counts), sum(c.unpriced for c in counts), bool(usage))}


def _cost(known: float, unpriced: int, any_usage: bool) -> dict | None:
    """The cost in USD of the requests with a known price, and how many had none (costed as unknown, not zero)."""
    if not any_usage:
        return None
    return {"usd": round(known, 6), "unpriced_requests": unpriced}


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# -- renderers ---------------------------------------------------------------------------------------------------

def render_json(data: dict) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n"


def render_text(data: dict) -> bytes:
    lines = [f"Rotator status, up {duration(data['uptime_seconds'])} (since {data['started']})",
             f"requests {data['requests']} · in flight {data['in_flight']} · {spent(data)}", ""]
    for p in data["providers"]:
        lines.append(f"{p['name']} ({p['family']}): requests {p['requests']} · in flight {p['in_flight']} · "
                     f"{spent(p)}")
        if not p["pool"]:
            lines += ["  no pool: each client's own key goes upstream", ""]
            continue
        rows = [("key", "state", "in flight", "requests", "errors", "usage")]
        rows += [(k["key"], state_text(k), str(k["in_flight"]), str(k["requests"]), str(k["error_count"]),
                  usage_text(k) or "-") for k in p["keys"]]
        lines += ["  " + line for line in table(rows)]
        for k in p["keys"]:
            lines += [f"    {k['key']} {e['at']} {e['kind']}: {e['reason']}" for e in k["errors"]]
        lines.append("")
    lines.append("in flight:" if data["requests_in_flight"] else "in flight: none")
    rows = [(f["id"][:8], f["provider"], f["key"] or "-", f["protocol"] or "-", f"{f['seconds']:g} s")
            for f in data["requests_in_flight"]]
    lines += ["  " + line for line in table([("flow", "provider", "key", "protocol", "for"), *rows])] if rows else []
    return ("\n".join(lines) + "\n").encode()


def render_html(data: dict) -> bytes:
    e = html.escape
    parts = ["<!doctype html><meta charset=utf-8><title>Rotator status</title>",
             "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>",
             f"<h1>Rotator status</h1><p>up {e(duration(data['uptime_seconds']))} (since {e(data['started'])}) · "
             f"requests {data['requests']} · in flight {data['in_flight']} · {e(spent(data))}</p>"]
    for p in data["providers"]:
        parts.append(f"<h2>{e(p['name'])} ({e(p['family'])})</h2><p>requests {p['requests']} · in flight "
                     f"{p['in_flight']} · {e(spent(p))}</p>")
        if not p["pool"]:
            parts.append("<p>no pool: each client's own key goes upstream</p>")
            continue
        parts.append("<table><tr><th>key<th>state<th>in flight<th>requests<th>errors<th>usage<th>recent errors")
        for k in p["keys"]:
            recent = "<br>".join(e(f"{x['at']} {x['kind']}: {x['reason']}") for x in k["errors"])
            cells = [k["key"], state_text(k), k["in_flight"], k["requests"], k["error_count"], usage_text(k) or "-"]
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}" for c in cells) + f"<td>{recent}")
        parts.append("</table>")
    parts.append("<h2>In flight</h2><table><tr><th>flow<th>provider<th>key<th>protocol<th>for")
    for f in data["requests_in_flight"]:
        cells = [f["id"][:8], f["provider"], f["key"] or "-", f["protocol"] or "-", f"{f['seconds']:g} s"]
        parts.append("<tr>" + "".join(f"<td>{e(str(c))}" for c in cells))
    parts.append("</table>")
    return "\n".join(parts).encode() + b"\n"


def state_text(key: dict) -> str:
    if key["state"] == READY:
        return READY
    when = f" until {key['until']} ({key['seconds_left']} s)" if key["until"] else ""
    why = f": {key['why']}" if key.get("why") else ""
    return f"{key['state']}{when}{why}"


def spent(counts: dict) -> str:
    return "usage: " + (usage_text(counts) or "none reported")


def usage_text(counts: dict) -> str:
    usage = counts.get("usage") or {}
    if not usage:
        return ""
    text = ", ".join(f"{name} {n}" for name, n in usage.items())
    cost = counts.get("cost")
    if cost:
        text += f" · cost ${cost['usd']:.6f}".rstrip("0").rstrip(".")
        if cost["unpriced_requests"]:
            text += f" (+{cost['unpriced_requests']} requests of unknown price)"
    return text


def duration(seconds: int) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
