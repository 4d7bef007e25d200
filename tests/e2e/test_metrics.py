"""Prometheus metrics through a real `mitmdump -s addons/rotator.py`: a scraper (httpx with HTTP_PROXY set to
Rotator, as `curl -x PROXY http://rotator.status/metrics` does) reads `/metrics` on the status host after calls made
with the official SDKs: a 429 on the first key, a first-token stall retried on another key, a cut stream repaired."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import MODELS, call, make_client
from tests.support.fake_vendor import Fault
from tests.support.harness import CLIENT_KEYS, POOL_KEYS
from tests.support.reliability import FAST, FIRST_TOKEN_TIMEOUT, RESUME_OFF

pytestmark = pytest.mark.e2e

CLIENT = {"name": "dashboards", "key": "rk-dashboards-metrics-secret-0001"}
FAMILIES = {"rotator_requests", "rotator_retries", "rotator_repairs", "rotator_fallbacks", "rotator_resumes",
            "rotator_failures", "rotator_tokens", "rotator_cost_usd", "rotator_unpriced_answers",
            "rotator_time_to_first_token_seconds", "rotator_request_duration_seconds", "rotator_key_state",
            "rotator_key_in_flight", "rotator_in_flight"}


def scrape(proxy, monkeypatch, **kwargs) -> httpx.Response:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    return httpx.get("http://rotator.status/metrics", timeout=10, **kwargs)


def samples(text: str) -> tuple[set[str], dict[tuple[str, tuple], float]]:
    """The families' names, and {(sample name, sorted labels): value}."""
    families = list(text_string_to_metric_families(text))
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    return {f.name for f in families}, values


def value(values: dict, name: str, **labels) -> float | None:
    return values.get((name, tuple(sorted(labels.items()))))


def test_metrics_count_a_429_a_stalled_first_token_and_a_repair(fake_vendor, rotator, monkeypatch):
    proxy = rotator(streaming=FAST, resume=RESUME_OFF, fresh=True)
    limited = POOL_KEYS["openai"][0]
    fake_vendor.script(Fault.status(429, headers={"retry-after": "30"}), key=limited)
    assert call("chat", make_client("chat"), stream=False).text  # served by the next key
    fake_vendor.script(Fault.stall_before_headers(20))
    assert call("chat", make_client("chat"), stream=True).text  # the first-token timeout, then another key
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))
    call("chat", make_client("chat"), stream=True)  # ended honestly as truncated

    response = scrape(proxy, monkeypatch)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    names, values = samples(response.text)
    assert names >= FAMILIES
    mini = {"provider": "openai", "model": MODELS["chat"]}
    assert value(values, "rotator_requests_total", **mini, outcome="ok") == 2
    assert value(values, "rotator_requests_total", **mini, outcome="repaired") == 1
    assert value(values, "rotator_retries_total", **mini, reason="status 429") == 1
    assert value(values, "rotator_retries_total", **mini, reason="first-token timeout") == 1
    assert value(values, "rotator_repairs_total", **mini, reason="upstream reset") == 1
    assert value(values, "rotator_resumes_total", **mini) == 0
    assert value(values, "rotator_tokens_total", **mini, kind="output_tokens") > 0
    assert value(values, "rotator_cost_usd_total", **mini) > 0  # gpt-4o-mini has a price
    assert value(values, "rotator_time_to_first_token_seconds_count", **mini) == 3
    waited = value(values, "rotator_time_to_first_token_seconds_sum", **mini)
    assert FIRST_TOKEN_TIMEOUT <= waited < 30  # one waited out a stall
    assert value(values, "rotator_request_duration_seconds_count", **mini) == 3
    assert value(values, "rotator_in_flight", provider="openai") == 0

    masked = {labels["key"] for (name, pairs), _ in values.items() if name == "rotator_key_state"
              for labels in [dict(pairs)] if labels["provider"] == "openai"}
    assert len(masked) == len(POOL_KEYS["openai"])
    resting = [dict(pairs)["key"] for (name, pairs), v in values.items()
               if name == "rotator_key_state" and dict(pairs)["state"] == "resting" and v == 1]
    assert len(resting) == 2  # the 429's key, and the one that stalled
    assert not any(key in response.text for keys in POOL_KEYS.values() for key in keys)
    assert not any(key in response.text for key in CLIENT_KEYS.values())
    assert "Traceback" not in proxy.log


def test_with_clients_configured_only_a_client_key_reads_the_metrics(rotator, monkeypatch):
    proxy = rotator(clients=[CLIENT])

    refused = scrape(proxy, monkeypatch)
    assert refused.status_code == 401 and "rotator_" not in refused.text
    assert scrape(proxy, monkeypatch, headers={"authorization": "Bearer rk-wrong-but-long-enough"}).status_code == 401

    allowed = scrape(proxy, monkeypatch, headers={"authorization": f"Bearer {CLIENT['key']}"})
    assert allowed.status_code == 200
    names, _ = samples(allowed.text)
    assert names >= {"rotator_key_state", "rotator_in_flight", "rotator_requests"}
    assert CLIENT["key"] not in proxy.log
