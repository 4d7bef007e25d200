"""The status page as a user opens it: Debian's headless Chromium, its proxy set to a real `mitmdump -s
addons/rotator.py`, loads `http://rotator.status/` after traffic from the official SDKs against the fake vendor (a key
taken out, one resting, one serving with half its requests window used, a plan login, a client near its budget), and
the page it draws shows every key, window, login and client with the figures the JSON holds, its bars labelled with
them for screen readers; it logs no console error and requests nothing but the status host.

With ROTATOR_SCREENSHOTS=DIR the test also saves the light and dark screenshots docs/inspecting.md shows.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import anthropic
import httpx
import pytest

from rewrite.inspection.status_page import render_html
from tests.support import login_dialects as ld
from tests.support.browser import CHROMIUM, chromium, run
from tests.support.clients import MODELS, PROMPT, call, make_client
from tests.support.fake_vendor import Fault
from tests.support.harness import POOL_KEYS

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]

LOGIN_TOKEN = "sk-ant-oat01-status-page-login-token"
CLIENTS = [{"name": "team-a", "key": "rk-team-a-status-page-0001", "budget": {"dollars": 1.25, "per": "day"},
            "limits": [{"per": "hour", "requests": 20}]},
           {"name": "team-b", "key": "rk-team-b-status-page-0002", "budget": {"dollars": 50, "per": "month"}}]
PRICES = {"*": {"input": 1_000_000 / 12, "output": 1}}  # an answer of 12 input tokens: $1 and its output's bit
HALF_USED = {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "30",
             "x-ratelimit-reset-requests": "10m0s"}
# Chromium's network traffic annotations (their ids' hashes, in its net log) of what a page loads: its navigation
# and its subresources and fetches. Chromium's own calls (updates, time, accounts, dictionaries) have others.
PAGE_LOADS = {"63171670", "101845102"}  # navigation_url_loader, blink_resource_loader


def usd(x: float) -> str:
    """Dollars as the page writes them."""
    return f"${x:.{0 if x >= 100 else 2 if x >= 1 else 4}f}" if x else "$0"


def fig(x: float, unit: str) -> str:
    return usd(x) if unit == "dollars" else f"{x:,g} {unit}"


def drawn(proxy, tmp_path: Path, url: str, *args: str) -> tuple[str, str, list[str]]:
    """The DOM Chromium draws for `url` through the proxy (after one refresh from the JSON), its console's lines,
    and every URL it (not Chromium's own services) requested."""
    netlog = tmp_path / f"netlog-{len(list(tmp_path.glob('netlog-*')))}.json"
    done = run("--dump-dom", f"--proxy-server={proxy.url}", "--enable-logging=stderr", "--v=0",
                   "--disable-background-networking", "--disable-component-update", "--no-first-run",
                   f"--log-net-log={netlog}", *args, url=url, budget_ms=7000)
    urls = [url for annotation, url in re.findall(r'"traffic_annotation":(\d+),"url":"([^"]+)"', netlog.read_text())
            if annotation in PAGE_LOADS]
    drawn_only = re.sub(r"<script\b.*?</script>", "", done.stdout, flags=re.S)  # (what it drew, not its code)
    (tmp_path / "dom.html").write_text(done.stdout)
    return html.unescape(drawn_only), done.stderr, urls


def test_the_page_draws_every_key_window_login_and_client_with_the_jsons_figures(fake_vendor, rotator, monkeypatch,
                                                                                  tmp_path):
    out_key, resting_key, serving_key = POOL_KEYS["openai"]
    fake_vendor.always(Fault.status(401), key=out_key)
    fake_vendor.always(Fault.status(429, headers={"retry-after": "600"}), key=resting_key)
    fake_vendor.always(Fault.with_headers(HALF_USED), key=serving_key)
    fake_vendor.always(Fault.with_headers(ld.windows(ld.CLAUDE_LOGIN, used=0.5, weekly=0.3)), key=LOGIN_TOKEN)
    proxy = rotator(fresh=True, clients=CLIENTS, prices=PRICES,
                    providers={"claude_login": {"base_url": fake_vendor.url}})
    team_a = CLIENTS[0]["key"]
    monkeypatch.setenv("HTTPS_PROXY", f"http://team-a:{team_a}@127.0.0.1:{proxy.port}")
    monkeypatch.delenv("ANTHROPIC_API_KEY")

    assert call("chat", make_client("chat", max_retries=0), stream=True).text  # out, resting, then served
    login = anthropic.Anthropic(auth_token=LOGIN_TOKEN, max_retries=0)
    assert login.messages.create(model=MODELS["anthropic"], max_tokens=64,
                                 messages=[{"role": "user", "content": PROMPT}]).content
    status = httpx.get("http://rotator.status/", params={"format": "json", "key": team_a}, proxy=proxy.url,
                       trust_env=False, timeout=10)
    data = status.json()
    openai = next(p for p in data["providers"] if p["name"] == "openai")
    states = {k["key"]: k["state"] for k in openai["pool"]["keys"]}
    assert sorted(states.values()) == ["out", "ready", "resting"]
    assert data["last_hour"]["totals"] | {"requests": 2, "retried": 1} == data["last_hour"]["totals"]
    [budget, limit] = next(c for c in data["client_budgets"] if c["client"] == "team-a")["rules"]
    assert 1 <= budget["used"] < 1.25 and limit["used"] == 2  # nearly spent

    dom, console_log, urls = drawn(proxy, tmp_path, f"http://rotator.status/?key={team_a}")
    assert "<main id=\"page\">" in dom and "not refreshed" not in dom, dom[-3000:]
    console = [line for line in console_log.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert urls and all(u.startswith("http://rotator.status/") for u in urls), sorted(set(urls))
    assert any("format=json" in u for u in urls)  # the page refreshed itself from the JSON

    # every configured pool, every key with its state; the built-in vendors nobody used on one line
    for p in data["providers"]:
        if p.get("pool") and p.get("configured"):
            assert f'data-pool="{p["name"]}"' in dom
            for k in p["pool"]["keys"]:
                assert f'<tr data-key="{k["key"]}" data-state="{k["state"]}">' in dom
    unused = re.search(r'<p class="dim" id="unused">Not configured and unused: ([^<]*)</p>', dom)
    assert unused and {"azure", "bedrock"} <= set(unused.group(1).split(", ")) and "openai" not in unused.group(1)
    rows = dict(re.findall(r'<tr data-key="([^"]+)" data-state="[a-z]+">(.*?)(?=<tr|</table>)', dom))
    keys = {k["key"]: k for k in openai["pool"]["keys"]}
    out, = (k for k in keys.values() if k["state"] == "out")
    assert 'class="chip out">out</span>' in rows[out["key"]] and out["out"] in rows[out["key"]]
    resting, = (k for k in keys.values() if k["state"] == "resting")
    assert 'class="chip resting">resting</span>' in rows[resting["key"]]
    assert resting["resting"][0]["why"] in rows[resting["key"]]
    serving, = (k for k in keys.values() if k["state"] == "ready")
    window, = (w for w in serving["windows"] if w["unit"] == "requests")
    used = window["limit"] - window["remaining"]
    assert used == 30 and window["limit"] == 60
    label = f'{window["window"]} (requests): {fig(used, "requests")} used of {fig(60, "requests")}'
    assert re.search(rf'<meter min="0" max="60" value="30" [^>]*aria-label="{re.escape(label)}, resets in ',
                     rows[serving["key"]]), rows[serving["key"]]

    # the login, its plan windows as bars
    [seen] = next(p for p in data["providers"] if p["name"] == "claude_login")["logins"]
    row = re.search(rf'<tr data-login="{re.escape(seen["login"])}">(.*?)(?=<tr|</table>)', dom)
    assert row, dom[-3000:]
    for w in seen["windows"]:
        assert f'value="{w["used"]}"' in row.group(1)
        assert f'aria-label="{w["name"]}: {round(w["used"] * 100)}% used · resets in ' in row.group(1)
    assert {w["name"]: w["used"] for w in seen["windows"]} == {"five_hour": 0.5, "seven_day": 0.3}

    # each client: its budget and limits as bars, its requests this hour
    for c in data["client_budgets"]:
        row = re.search(rf'<tr data-client="{c["client"]}">(.*?)(?=<tr|</table>)', dom)
        assert row, dom[-3000:]
        cells = re.findall(r"<td>(.*?)</td>", row.group(1))
        assert cells[2] == f'{c["hour"]["requests"]:,}'
        for r in c["rules"]:
            per = f"per {r['per']}" if r["per"] else "in all"
            label = f'{r["kind"]} {per}: {fig(r["used"], r["unit"])} of {fig(r["amount"], r["unit"])}'
            assert f'aria-label="{label}' in row.group(1), (label, row.group(1))
    # the last hour at a glance
    for name, total in data["last_hour"]["totals"].items():
        assert re.search(rf'data-glance="{name}"><span class="dim">[^<]*</span><b>{total:,}</b><svg', dom), name

    shots = os.environ.get("ROTATOR_SCREENSHOTS")
    for scheme, flag in (("light", "--force-light-mode"), ("dark", "--force-dark-mode")):
        path = Path(shots or tmp_path).resolve() / f"status-page-{scheme}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        chromium("--window-size=1280,1500", f"--proxy-server={proxy.url}", flag, f"--screenshot={path}",
                 url=f"http://rotator.status/?key={team_a}", budget_ms=1000)
        assert path.stat().st_size > 10_000
    assert team_a not in json.dumps(data) and not any(k in dom for k in POOL_KEYS["openai"]) and LOGIN_TOKEN not in dom


def test_what_the_proxy_test_does_not_reach_is_drawn_too_without_a_console_error(tmp_path):
    """The page's rarer parts, from data as `page` shapes it: a signing provider's signers, a plan login exhausted with
    reset credits, a configured login provider with none seen, a window with a share kept back and one without a
    limit, a dollar cap, a client over its budget, a request in flight, upstream text that is markup."""
    windows = [{"window": "(cap) per day", "unit": "dollars", "remaining": 3.75, "limit": 5, "resets_in": 4000},
               {"window": "claude", "unit": "tokens", "remaining": 1000, "limit": 400000, "resets_in": 30,
                "kept_back": 40000},
               {"window": "flash", "unit": "requests", "remaining": 5, "limit": None, "resets_in": 30}]
    key = {"key": "sk-…abcd", "state": "resting", "out": None, "in_flight": 2, "max_concurrent": 4,
           "resting": [{"why": "rate limited", "seconds": 30, "recheck_in": 600, "model": None}],
           "last_hour": {"requests": 3, "cost": 0.5}, "total": {"requests": 9, "cost": 1.5},
           "cache_read_share": {"last_hour": 0.5, "total": None}, "windows": windows, "error_count": 1,
           "errors": [{"at": "2026-11-29T10:00:00Z", "kind": "retry", "reason": "status 500: <b>down</b>"}]}
    provider = {"in_flight": 0, "requests": 0, "cost": None, "hedges": {"fired": 0, "won": 0}, "pool": None,
                "configured": True}
    login = {"login": "ey…abc", "requests": 1, "tokens": 5, "exhausted": [{"model": None, "until": None,
                                                                          "why": "usage limit"}],
             "windows": [{"name": "primary", "used": 1.0, "resets_at": "2026-11-29T12:00:00Z"},
                         {"name": "weekly", "status": "allowed"}],
             "reset_credits": {"available": 2, "expires_at": ["2026-12-01"]}}
    glance = ("requests", "retried", "continued", "repaired", "hedges", "hedges_won", "fallbacks", "budget_refused")
    data = {"started": "2026-11-29T10:00:00Z", "uptime_seconds": 100, "in_flight": 1, "requests": 3, "cost": None,
            "providers": [
                {**provider, "name": "anthropic", "family": "anthropic", "requests": 3, "in_flight": 1,
                 "cost": {"usd": 1.5}, "hedges": {"fired": 1, "won": 1},
                 "pool": {"strategy": "round-robin", "ready": 0, "resting": 1, "out": 0, "keys": [key]}},
                {**provider, "name": "bedrock", "family": "bedrock", "requests": 2,
                 "signers": [{"signer": "AKIA…XYZ us-east-1", "requests": 2, "throttled": 1, "text": "cooling"}]},
                {**provider, "name": "claude_login", "family": "anthropic", "logins": []},
                {**provider, "name": "chatgpt", "family": "openai", "configured": False, "requests": 1,
                 "logins": [login]},
                {**provider, "name": "azure", "family": "openai", "configured": False}],
            "requests_in_flight": [{"id": "abcdef123456", "provider": "anthropic", "key": "sk-…abcd",
                                    "protocol": "anthropic_messages", "seconds": 2.5}],
            "last_hour": {"totals": dict.fromkeys(glance, 1), "per_minute": {k: [0] * 59 + [1] for k in glance}},
            "client_budgets": [{"client": "ci", "models": ["claude-*"], "hour": {"requests": 1},
                                "day": {"requests": 1, "cost": 12},
                                "rules": [{"kind": "budget", "unit": "dollars", "amount": 10, "per": None,
                                           "used": 12, "resets_in": None}]}]}
    page = tmp_path / "status.html"
    page.write_bytes(render_html(data))
    done = run("--dump-dom", "--enable-logging=stderr", "--v=0", url=page.as_uri(), budget_ms=1500)
    assert [line for line in done.stderr.splitlines() if "CONSOLE" in line] == []
    dom = html.unescape(re.sub(r"<script\b.*?</script>", "", done.stdout, flags=re.S))
    for drawn_text in ('data-signer="AKIA…XYZ us-east-1"', "none seen yet on claude_login",
                       'id="unused">Not configured and unused: azure</p>', 'data-login="ey…abc"',
                       'class="chip spent">exhausted</span> until its reset: usage limit',
                       "reset credits: 2 available, the first lapsing 2026-12-01",
                       'aria-label="(cap) per day (dollars): $1.25 used of $5.00, resets in 1 h 6 min"',
                       'aria-label="claude (tokens): 399,000 tokens used of 400,000 tokens, 40,000 tokens kept back',
                       "flash (requests): <span>5 requests left", "re-checked in 10 min", "<td>50% / -",
                       "<code>abcdef12</code>", 'aria-label="budget in all: $12.00 of $10.00"',
                       "hedges 1 (1 won)", "status 500: <b>down</b>"):
        assert drawn_text in dom, drawn_text
    assert "&lt;b&gt;down" in done.stdout  # (the upstream's markup drawn as text)
