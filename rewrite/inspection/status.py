"""The status page (`http://rotator.status/` through the proxy): providers, their keys (masked) and states, recent
errors per key, each key's quota windows and prompt-cache share, requests in flight, and usage and cost since start.

Pure: `page` gathers one dict, the page's public shape (what `?format=json` returns); `render_text` and
`render_json` turn it into a body (`render_html`, the page a browser draws: rewrite/inspection/status_page.py). Each
pool comes as rewrite/pool/report.py `describe`s it (what the `rotator.pools` command returns); the finished flows'
`Tally` (rewrite/accounting/metrics.py) adds what the pools do not keep: each key's recent errors, every provider's
requests, usage, cost and hedges (sent, and won by the second attempt) since start (providers without a pool too),
and the last hour's requests and repairs per minute. Keys appear masked only.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

from rewrite.accounting.metrics import ProviderSpent, Tally
from rewrite.inspection.clients import client_table
from rewrite.pool.report import table as pool_table


@dataclass(frozen=True)
class Flight:
    """A request in flight, as the page shows it."""

    id: str
    provider: str
    key: str | None  # masked; None before its first attempt, or without a pool
    protocol: str | None
    started: float  # epoch seconds


def page(providers: list[dict], flights: list[Flight], tally: Tally, now: float, clients: list | None = None,
         budgets: list | None = None) -> dict:
    """The page's data. `providers`: [{"name", "family", "pool", "logins", "signers"}], "pool" being the pool as
    `describe`d, or None for a provider without a pool; "logins" a login provider's logins (rewrite/pool/logins.py),
    else None; "signers" the credentials clients of a provider that signs its requests signed with themselves (per
    access key id and region: rewrite/pool/signers.py), else None. `clients`: who spent what, with `clients`
    configured (rewrite/accounting/client_book.py `describe`); `budgets`: each configured client's budget and limits
    and their use (rewrite/accounting/client_rules.py `client_budgets`). A provider's "configured": whether the
    config names it (absent: not known)."""
    out = []
    for p in providers:
        pool = p["pool"]
        if pool is not None:
            pool = {**pool, "keys": [_with_errors(p["name"], k, tally) for k in pool["keys"]]}
        shown = {"name": p["name"], "family": p["family"],
                 **({"configured": p["configured"]} if "configured" in p else {}),
                 "in_flight": sum(1 for f in flights if f.provider == p["name"]),
                 **_spent([tally.spent.get(p["name"], ProviderSpent())]), "pool": pool}
        if p.get("logins") is not None:
            shown["logins"] = p["logins"]
        if p.get("signers"):
            shown["signers"] = p["signers"]
        out.append(shown)
    data = {
        "started": iso(tally.started), "uptime_seconds": round(now - tally.started),
        "in_flight": len(flights), **_spent(list(tally.spent.values())),
        "providers": out,
        "requests_in_flight": [
            {"id": f.id, "provider": f.provider, "key": f.key, "protocol": f.protocol,
             "seconds": round(max(0.0, now - f.started), 1)}
            for f in sorted(flights, key=lambda f: f.started)
        ],
    }
    data["last_hour"] = tally.last_hour.describe(now)
    if clients is not None:
        data["clients"] = clients
    if budgets is not None:
        data["client_budgets"] = budgets
    return data


def _with_errors(provider: str, key: dict, tally: Tally) -> dict:
    errors = tally.errors.get((provider, key["key"]), ())
    return {**key, "error_count": tally.error_counts[(provider, key["key"])],
            "errors": [{**e, "at": iso(e["at"])} for e in errors]}


def _spent(spent: list[ProviderSpent]) -> dict:
    """Requests since start, their usage, and their cost ({"usd", "unpriced_requests"}; None without usage)."""
    usage: Counter = Counter()
    for s in spent:
        usage.update(s.usage)
    cost = {"usd": round(sum(s.cost for s in spent), 6), "unpriced_requests": sum(s.unpriced for s in spent),
            "covered_by_plan": sum(s.covered for s in spent)}
    hedges = {"fired": sum(s.hedges for s in spent), "won": sum(s.hedges_won for s in spent)}
    return {"requests": sum(s.requests for s in spent), "usage": dict(usage), "cost": cost if usage else None,
            "hedges": hedges}


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# -- renderers ---------------------------------------------------------------------------------------------------

def render_json(data: dict) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n"


def render_text(data: dict) -> bytes:
    lines = [f"Rotator status, up {duration(data['uptime_seconds'])} (since {data['started']})",
             f"since start: requests {data['requests']} · {spent(data)} · in flight {data['in_flight']}", ""]
    for p in data["providers"]:
        lines.append(f"{p['name']} ({p['family']}): requests {p['requests']} · {spent(p)} · "
                     f"in flight {p['in_flight']}")
        if "logins" in p:
            seen = [f"    {login['login']}: {login['text']}" for login in p["logins"]] or ["    none seen yet"]
            lines += ["  subscription logins (each client's own, never pooled):", *seen, ""]
            continue
        if p["pool"] is None:
            lines += ["  no pool: each client's own key goes upstream", *_signers_text(p), ""]
            continue
        lines += ["  " + line for line in pool_table([p["pool"]]).splitlines()]
        errors = [f"    {k['key']} {e['at']} {e['kind']}: {e['reason']}"
                  for k in p["pool"]["keys"] for e in k["errors"]]
        lines += ["  recent errors:", *errors, ""] if errors else [""]
    lines.append("in flight:" if data["requests_in_flight"] else "in flight: none")
    rows = [(f["id"][:8], f["provider"], f["key"] or "-", f["protocol"] or "-", f"{f['seconds']:g} s")
            for f in data["requests_in_flight"]]
    lines += ["  " + line for line in table([("flow", "provider", "key", "protocol", "for"), *rows])] if rows else []
    if "clients" in data:
        lines += ["", *client_table(data["clients"]).splitlines()]
    return ("\n".join(lines) + "\n").encode()


SIGNERS = "signed by the clients themselves (per access key id and region):"


def _signers_text(provider: dict) -> list[str]:
    signers = provider.get("signers") or []
    return [f"  {SIGNERS}", *(f"    {x['signer']}: {x['text']}" for x in signers)] if signers else []


def spent(counts: dict) -> str:
    usage = counts.get("usage") or {}
    hedges = counts.get("hedges") or {}
    hedged = f" · hedges {hedges['fired']} ({hedges['won']} won)" if hedges.get("fired") else ""
    if not usage:
        return "usage: none reported" + hedged
    text = "usage: " + ", ".join(f"{name} {n}" for name, n in usage.items())
    cost = counts["cost"]
    text += f" · cost ${cost['usd']:.6f}".rstrip("0").rstrip(".")
    if cost["unpriced_requests"]:
        text += f" (+{cost['unpriced_requests']} requests of unknown price)"
    if cost.get("covered_by_plan"):
        text += f" (+{cost['covered_by_plan']} requests covered by a plan)"
    return text + hedged


def duration(seconds: int) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
