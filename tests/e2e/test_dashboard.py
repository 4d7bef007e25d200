"""The Grafana dashboard deploy/compose.yaml provisions (deploy/grafana/dashboards/rotator.json) reads what Rotator
exports: after traffic through a real `mitmdump -s addons/rotator.py` that makes every panel's story happen (a quota
window reported, a 429 retried, a hedge, a cut repaired, a prompt-cache read, a route's fallback, a request given up
and one still in flight), each series a panel's PromQL names is one the real `/metrics` serves, with the label
values the query picks, every panel has something other than zero to show, and Prometheus' own `promtool` accepts
every query (Grafana's variables put in as Prometheus would get them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import call, make_client
from tests.support.fake_vendor import Fault
from tests.support.gate import CLIENTS, TEAM_A
from tests.support.harness import REPO
from tests.support.timing import wait_until

pytestmark = pytest.mark.e2e

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "rotator.json"
SERIES = re.compile(r"\brotator_[a-z0-9_]+\b")
# A series as a query selects it: its name and the label values it asks for by equality (`provider=~"$provider"`
# matches every provider, so it is no condition here).
SELECTOR = re.compile(r"\b(rotator_[a-z0-9_]+)(?:\{([^}]*)\})?")
EQUALS = re.compile(r'(\w+)="([^"]*)"')
# What Prometheus reads of a family of each type, by sample name (a counter `x` is sampled as `x_total`).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$provider": ".*"}


def queries(dashboard: dict) -> dict[str, list[str]]:
    """Each panel's PromQL by title, and the variables' queries (under "variables")."""
    out = {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"] if p.get("targets")}
    out["variables"] = [v["definition"] for v in dashboard["templating"]["list"]]
    return out


def exported(text: str) -> tuple[set[str], set[str]]:
    """The sample names `/metrics` declares (by its families' types) and those it has samples of."""
    declared, sampled = set(), set()
    for family in text_string_to_metric_families(text):
        declared |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        sampled |= {s.name for s in family.samples}
    return declared, sampled


def selectors(exprs: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Each series the queries select: its name and the label values asked for by equality."""
    return [(name, dict(EQUALS.findall(matchers or ""))) for expr in exprs for name, matchers in SELECTOR.findall(expr)]


def matching(families, name: str, labels: dict[str, str]) -> list[float]:
    """The values of the samples a selector picks."""
    return [s.value for f in families for s in f.samples if s.name == name and labels.items() <= s.labels.items()]


def traffic(fake_vendor) -> None:
    """Calls that make every panel's story happen, one after another."""
    client = make_client("chat", max_retries=0)
    fake_vendor.script(Fault.ok().tokens(cache_read=40).with_headers({"x-ratelimit-limit-requests": "60",
                                                                      "x-ratelimit-remaining-requests": "59",
                                                                      "x-ratelimit-reset-requests": "30s"}))
    assert call("chat", client, stream=True).text  # a quota window reported, part of the prompt read from the cache
    fake_vendor.script(Fault.status(429, headers={"retry-after": "30"}), Fault.ok())
    assert call("chat", client, stream=True).text  # retried on another key, which rests
    fake_vendor.script(Fault.stall_after(deltas=0, seconds=20), Fault.ok())
    assert call("chat", client, stream=True).text  # hedged
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))
    assert call("chat", client, stream=True).text  # cut, ended honestly (resume off)
    fake_vendor.script(*[Fault.status(500)] * 8)
    with pytest.raises(openai.InternalServerError):  # every openai key, then the route's anthropic target: given up
        call("chat", client, stream=False)


def metrics_text() -> str:
    """/metrics, asked as the team's client (the status host is behind the client-key check once `clients` are set)."""
    return httpx.get("http://rotator.status/metrics", headers={"x-api-key": TEAM_A}, timeout=10).text


def test_every_series_the_dashboard_queries_is_one_rotator_exports(fake_vendor, rotator, monkeypatch):
    proxy = rotator(fresh=True, streaming={"first_token_timeout": 10}, resume={"mode": "off"},
                    hedging={"mode": "on", "delay": 0.5, "max_share": 1.0},
                    routes=[{"models": ["gpt-4o-mini"], "targets": ["openai", "anthropic"]}], clients=CLIENTS)
    monkeypatch.setenv("OPENAI_API_KEY", TEAM_A)  # (a client of the team: its own row in the per-client panels)
    traffic(fake_vendor)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    fake_vendor.script(Fault.stall_after(deltas=1, seconds=4))  # (its first words, then a pause: in flight a while)
    pending = threading.Thread(target=lambda: call("chat", make_client("chat", max_retries=0), stream=True))
    pending.start()
    wait_until(lambda: any(matching(text_string_to_metric_families(metrics_text()), "rotator_in_flight", {})), 5,
               "a request in flight")

    text = metrics_text()
    pending.join(10)
    declared, sampled = exported(text)
    families = list(text_string_to_metric_families(text))
    panels = queries(json.loads(DASHBOARD.read_text()))
    named = {title: set(SERIES.findall(" ".join(exprs))) for title, exprs in panels.items()}
    assert all(named.values()), [title for title, names in named.items() if not names]
    unknown = {title: names - declared for title, names in named.items() if names - declared}
    assert not unknown, f"series /metrics does not serve: {unknown}"
    unpicked = {title: missing for title, exprs in panels.items()
                if (missing := [(n, labels) for n, labels in selectors(exprs) if not matching(families, n, labels)])}
    assert not unpicked, f"selectors no sample of /metrics matches: {unpicked}"
    empty = [title for title, exprs in panels.items()
             if not any(v for n, labels in selectors(exprs) for v in matching(families, n, labels))]
    assert not empty, f"panels with nothing but zeros to show after the traffic: {empty}"


def test_promtool_accepts_every_query_of_the_dashboard(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: apt-get install prometheus (scripts/setup --test installs it as root)"
    rules = []
    for title, exprs in queries(json.loads(DASHBOARD.read_text())).items():
        if title == "variables":
            continue  # (Grafana's own label_values(), not PromQL: its series is checked above)
        for n, expr in enumerate(exprs):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            rules.append({"record": f"panel_{len(rules)}_{n}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # (JSON is YAML)
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and f"SUCCESS: {len(rules)} rules found" in done.stdout, done.stdout + done.stderr
