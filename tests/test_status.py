"""The status page: key states from a pool, counts from finished flows, the page's shape and its three renderings,
and the addon that serves it on its magic host (tests/e2e/test_status_page.py serves it through a real proxy)."""

from __future__ import annotations

import json

import pytest
from mitmproxy.test import taddons, tflow

from addons.status import Status
from rewrite.accounting.metrics import Tally
from rewrite.config import parse
from rewrite.engine import Engine
from rewrite.inspection.status import Flight, page, render_json, render_text
from rewrite.inspection.status_page import render_html
from rewrite.pool import KeyPool
from rewrite.pool.report import describe
from tests.support.timing import FakeClock

KEYS = ["sk-pool-secret-aaaa1111", "sk-pool-secret-bbbb2222", "sk-pool-secret-cccc3333", "sk-pool-secret-dddd4444"]
MASKED = ["…1111", "…2222", "…3333", "…4444"]


def retried_flow(usage=None, cost=None) -> dict:
    """`flow.metadata["rotator"]` of a call whose first attempt got a 429 on key 0 and was served by key 1."""
    return {"provider": "openai", "protocol": "openai-chat", "key": MASKED[1],
            "events": [{"kind": "retry", "detail": "attempt 1 failed (status 429); retrying", "reason": "status 429",
                        "key": MASKED[0]},
                       {"kind": "committed", "detail": "status 200 sent early"}],
            **({"usage": usage} if usage is not None else {}), **({"cost": cost} if cost is not None else {})}


def test_the_tally_counts_requests_usage_and_cost_per_provider_and_errors_per_key():
    clock = FakeClock(1_700_000_000)
    tally = Tally(clock)
    tally.record(retried_flow(usage={"input_tokens": 10, "output_tokens": 5}, cost=0.25))
    tally.record(retried_flow(usage={"input_tokens": 1, "output_tokens": 2}))  # a model without a known price
    tally.record({"provider": "openai", "key": MASKED[1],
                  "events": [{"kind": "failed", "detail": "giving up: status 500", "reason": "status 500"}]})
    tally.record({"provider": "openai", "key": None,  # every key resting: no key was used
                  "events": [{"kind": "failed", "detail": "giving up: every key rate limited", "reason": "x"}]})
    tally.record({"provider": "openai", "refused": "no client key matched (401)"})
    tally.record({"provider": "gemini", "key": None, "usage": {"input_tokens": 7}, "cost": 0.5})

    openai = tally.spent["openai"]
    assert openai.requests == 4 and openai.usage == {"input_tokens": 11, "output_tokens": 7}
    assert (openai.cost, openai.unpriced) == (0.25, 1)
    assert (tally.spent["gemini"].requests, tally.spent["gemini"].cost) == (1, 0.5)
    assert [e["reason"] for e in tally.errors[("openai", MASKED[0])]] == ["status 429", "status 429"]
    assert [e["kind"] for e in tally.errors[("openai", MASKED[1])]] == ["failed"]
    assert tally.error_counts == {("openai", MASKED[0]): 2, ("openai", MASKED[1]): 1}


def test_a_routed_requests_retries_count_against_the_keys_of_the_target_tried_then():
    tally = Tally()
    tally.record({"provider": "deepseek", "key": "sk-d…0001",
                  "targets": [{"provider": "anthropic", "model": None}, {"provider": "deepseek", "model": "chat"}],
                  "events": [{"kind": "retry", "reason": "status 529", "key": "sk-a…0001"},
                             {"kind": "fallback", "provider": "deepseek", "reason": "status 529"},
                             {"kind": "retry", "reason": "status 500", "key": "sk-d…0002"}]})
    assert tally.error_counts == {("anthropic", "sk-a…0001"): 1, ("deepseek", "sk-d…0002"): 1}
    assert tally.spent["deepseek"].requests == 1 and "anthropic" not in tally.spent


def test_the_tally_keeps_the_last_few_errors_and_ignores_malformed_records():
    tally = Tally()
    for n in range(8):
        tally.record({"provider": "openai", "key": MASKED[0],
                      "events": [{"kind": "cut", "detail": f"upstream body cut {n}"}]})
    for bad in ({}, {"provider": 3}, {"provider": "openai", "events": "x", "usage": [1]},
                {"provider": "openai", "key": 5, "events": [None, {"kind": "retry"}], "usage": {"a": "1", "b": True}}):
        tally.record(bad)
    assert tally.error_counts[("openai", MASKED[0])] == 8
    assert [e["reason"] for e in tally.errors[("openai", MASKED[0])]] == [f"upstream body cut {n}" for n in range(3, 8)]
    assert tally.spent["openai"].requests == 10 and tally.spent["openai"].usage == {}


def sample_page() -> dict:
    clock = FakeClock(1_700_000_000)
    tally = Tally(clock)
    tally.record(retried_flow(usage={"input_tokens": 10, "output_tokens": 5}, cost=0.25))
    clock.now += 65
    pool = KeyPool(KEYS[:2], name="openai", clock=FakeClock(50), wall=clock)
    pool.rests.bench(KEYS[0], 30, why="status 429")
    providers = [{"name": "openai", "family": "openai", "pool": describe(pool, 50, clock.now)},
                 {"name": "gemini", "family": "gemini", "pool": None}]
    flights = [Flight("f1aaaaaaaaaa", "openai", MASKED[1], "openai-chat", clock.now - 2.5),
               Flight("f2bbbbbbbbbb", "openai", None, None, clock.now - 0.5)]
    return page(providers, flights, tally, clock.now)


def test_the_page_shape_has_providers_keys_states_flights_and_totals():
    data = sample_page()
    assert data["started"] == "2023-11-14T22:13:20Z" and data["uptime_seconds"] == 65
    assert (data["requests"], data["in_flight"]) == (1, 2)
    assert data["usage"] == {"input_tokens": 10, "output_tokens": 5}
    assert data["cost"] == {"usd": 0.25, "unpriced_requests": 0, "covered_by_plan": 0}
    openai, gemini = data["providers"]
    assert (openai["name"], openai["in_flight"], openai["requests"]) == ("openai", 2, 1)
    resting, ready = openai["pool"]["keys"]
    assert resting["key"] == MASKED[0] and resting["state"] == "resting"
    assert resting["resting"][0]["why"] == "status 429" and resting["resting"][0]["seconds"] == 30
    assert resting["error_count"] == 1 and resting["errors"] == [
        {"at": "2023-11-14T22:13:20Z", "kind": "retry", "reason": "status 429"}]
    assert ready["state"] == "ready" and ready["errors"] == [] and ready["error_count"] == 0
    assert (gemini["pool"], gemini["requests"], gemini["cost"]) == (None, 0, None)
    assert [f["id"] for f in data["requests_in_flight"]] == ["f1aaaaaaaaaa", "f2bbbbbbbbbb"]
    assert data["requests_in_flight"][0] == {"id": "f1aaaaaaaaaa", "provider": "openai", "key": MASKED[1],
                                             "protocol": "openai-chat", "seconds": 2.5}
    assert not any(key in json.dumps(data) for key in KEYS)


def test_the_three_renderings():
    data = sample_page()
    assert json.loads(render_json(data)) == data
    text = render_text(data).decode()
    assert "Rotator status, up 1m 05s (since 2023-11-14T22:13:20Z)" in text
    assert "since start: requests 1 · usage: input_tokens 10, output_tokens 5 · cost $0.25 · in flight 2" in text
    assert f"  {MASKED[0]}  resting until " in text and "(in 30 s): status 429" in text
    assert f"recent errors:\n    {MASKED[0]} 2023-11-14T22:13:20Z retry: status 429" in text
    assert "gemini (gemini)" in text and "no pool: each client's own key goes upstream" in text
    assert "f1aaaaaa  openai    …2222  openai-chat  2.5 s" in text
    page_html = render_html(data).decode()  # (the browser draws it: tests/e2e/test_status_page_browser.py)
    assert page_html.startswith("<!doctype html>") and json.dumps(data, ensure_ascii=False, separators=(",", ":")) in page_html


def test_each_key_shows_its_prompt_cache_share_and_what_its_cold_prefixes_cost():
    wall = FakeClock(1_700_000_000)
    pool = KeyPool(KEYS[:2], name="anthropic", clock=FakeClock(50), wall=wall)
    pool.record_usage(KEYS[0], "claude-haiku-4-5", 0.0125, input_tokens=10_000, output_tokens=30, cache_write=10_000,
                      cold_cost=0.0115)
    wall.now += 7200  # two hours later: only the next answer is in the last hour
    pool.record_usage(KEYS[0], "claude-haiku-4-5", 0.0015, input_tokens=10_000, output_tokens=30,
                      cache_read=9_000, cache_write=1_000, cold_cost=0.00115)
    data = page([{"name": "anthropic", "family": "anthropic", "pool": describe(pool, 50, wall.now)}], [], Tally(wall),
                wall.now)
    warm, unused = data["providers"][0]["pool"]["keys"]
    assert warm["cache_read_share"] == {"last_hour": 0.9, "total": 0.45}
    assert (warm["last_hour"]["cold_cost"], warm["total"]["cold_cost"]) == (0.00115, pytest.approx(0.01265))
    assert warm["total"]["cache_write_tokens"] == 11_000 and unused["cache_read_share"]["total"] is None
    text = render_text(data).decode()
    assert "cache read 1h / all  cold prefixes 1h / all" in text
    assert "90% / 45%            $0.0011 / $0.0126" in text and "- / -" in text


def test_the_last_hour_counts_what_rotator_did_per_minute_and_forgets_older_minutes():
    clock = FakeClock(1_700_000_000)
    tally = Tally(clock)
    tally.record({"provider": "openai", "key": MASKED[1], "events": [
        {"kind": "retry", "key": MASKED[0], "reason": "status 429"},
        {"kind": "retry", "key": MASKED[2], "reason": "status 500"}, {"kind": "hedged", "won": "second"}]})
    clock.now += 120
    tally.record({"provider": "openai", "key": MASKED[1], "events": [
        {"kind": "resumed"}, {"kind": "repaired", "reason": "upstream reset"},
        {"kind": "fallback", "provider": "anthropic", "reason": "status 529"}]})
    tally.record({"provider": "openai", "client_check": {"client": "ci", "refused": "budget of $1 per day",
                                                         "status": 429}})
    tally.record({"provider": "openai", "client_check": {"client": "ci", "refused": "model x outside models",
                                                         "status": 403}})  # (a model refused: no budget's)
    hour = page([], [], tally, clock.now)["last_hour"]
    assert hour["totals"] == {"requests": 4, "retried": 1, "continued": 1, "repaired": 1, "hedges": 1,
                              "hedges_won": 1, "fallbacks": 1, "budget_refused": 1}
    assert hour["per_minute"]["requests"][-3:] == [1, 0, 3] and len(hour["per_minute"]["requests"]) == 60
    assert hour["per_minute"]["retried"][-3:] == [1, 0, 0]

    clock.now += 3600 - 60  # the first request's minute has left the hour
    tally.record({"provider": "openai"})
    hour = page([], [], tally, clock.now)["last_hour"]
    assert hour["totals"]["requests"] == 4 and hour["totals"]["retried"] == 0
    assert hour["per_minute"]["requests"][0] == 3 and hour["per_minute"]["requests"][-1] == 1


def test_upstream_text_is_escaped_in_html():
    tally = Tally()
    tally.record({"provider": "openai", "key": MASKED[0],
                  "events": [{"kind": "failed", "reason": "status 500: <script>alert(1)</script>"}]})
    pool = KeyPool(KEYS[:1], name="openai")
    data = page([{"name": "openai", "family": "openai", "pool": describe(pool, 0.0, 0.0)}], [], tally, 0.0)
    body = render_html(data).decode()  # (the page's script escapes it as it draws it)
    assert "<script>alert" not in body and "\\u003cscript>alert(1)\\u003c/script>" in body
    assert body.count("</script>") == 2  # the data's and the page's own: upstream text closes none


# -- the addon ---------------------------------------------------------------------------------------------------

POOLED = "providers: {openai: {base_url: 'http://127.0.0.1:9/v1', keys: [sk-pool-secret-aaaa1111]}}\n"
CLIENTS = "clients: [{name: team-a, key: rk-team-a-secret-1234}]\n"


def status_request(host: str = "rotator.status", path: str = "/", headers: dict | None = None, method: str = "GET"):
    flow = tflow.tflow()
    req = flow.request
    req.method, req.scheme, req.host, req.port, req.path = method, "http", host, 80, path
    req.headers.clear()
    req.headers["host"] = host
    req.headers.update(headers or {})
    return flow


def served(config: str, flow, **options):
    addon = Status(Engine(parse(config)))
    with taddons.context(addon) as tctx:
        tctx.configure(addon, **options)
        addon.configure({"rotator_config"})  # (what RotatorConfig announces once it has loaded the config)
        addon.request(flow)
    return flow


def test_the_addon_serves_the_page_on_its_host_without_going_upstream():
    flow = served(POOLED, status_request(path="/?format=json"))
    assert flow.response.status_code == 200 and flow.response.headers["content-type"] == "application/json"
    data = json.loads(flow.response.content)
    assert [k["key"] for p in data["providers"] if p["pool"] for k in p["pool"]["keys"]] == ["…1111"]
    assert "sk-pool-secret-aaaa1111" not in flow.response.text
    assert flow.response.headers["cache-control"] == "no-store"
    assert served(POOLED, status_request()).response.headers["content-type"].startswith("text/plain")
    browser = status_request(headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert served(POOLED, browser).response.text.startswith("<!doctype html>")


@pytest.mark.parametrize("path, method, status", [
    ("/?format=xml", "GET", 400), ("/other", "GET", 404), ("/", "POST", 405),
])
def test_other_requests_to_the_host_get_a_short_error(path, method, status):
    assert served(POOLED, status_request(path=path, method=method)).response.status_code == status


def test_other_hosts_and_a_disabled_page_are_left_alone():
    assert served(POOLED, status_request(host="example.com")).response is None
    assert served(POOLED, status_request(), rotator_status_host="").response is None
    assert served(POOLED, status_request(host="status.local"), rotator_status_host="status.local").response


@pytest.mark.parametrize("headers, path", [
    ({"authorization": "Bearer rk-team-a-secret-1234"}, "/"),
    ({"x-api-key": "rk-team-a-secret-1234"}, "/"),
    ({"x-goog-api-key": "rk-team-a-secret-1234"}, "/"),
    ({}, "/?key=rk-team-a-secret-1234&format=json"),
])
def test_with_clients_a_client_key_in_any_form_opens_the_page_and_stays_out_of_the_flow(headers, path):
    flow = served(POOLED + CLIENTS, status_request(path=path, headers=headers))
    assert flow.response.status_code == 200
    assert "rk-team-a-secret-1234" not in repr(flow.request.get_state())


@pytest.mark.parametrize("headers", [
    {}, {"authorization": "Bearer rk-wrong"}, {"x-api-key": "sk-pool-secret-aaaa1111"},
])
def test_with_clients_a_request_without_a_client_key_gets_401(headers):
    flow = served(POOLED + CLIENTS, status_request(headers=headers))
    assert flow.response.status_code == 401 and "`clients`" in flow.response.text
    assert "sk-p" not in flow.response.text
    assert "sk-pool-secret-aaaa1111" not in repr(flow.request.get_state())
