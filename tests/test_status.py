"""The status page: key states from a pool, counts from finished flows, the page's shape and its three renderings,
and the addon that serves it on its magic host (tests/e2e/test_status_page.py serves it through a real proxy)."""

from __future__ import annotations

import json

import pytest
from mitmproxy.test import taddons, tflow

from addons.status import Status
from rewrite.config import parse
from rewrite.credentials import KeyPool
from rewrite.engine import Engine
from rewrite.status import Flight, Tally, page, render_html, render_json, render_text

KEYS = ["sk-pool-secret-aaaa1111", "sk-pool-secret-bbbb2222", "sk-pool-secret-cccc3333", "sk-pool-secret-dddd4444"]
MASKED = ["sk-p…1111", "sk-p…2222", "sk-p…3333", "sk-p…4444"]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_pool_snapshot_says_each_keys_state_and_why_masked():
    clock = Clock()
    pool = KeyPool(KEYS, clock=clock)
    pool.bench(KEYS[1], 30)
    pool.bench(KEYS[2], 600, rejected=True)
    pool.stalled(KEYS[3])
    pool.stalled(KEYS[3])
    clock.now += 4
    snap = pool.snapshot()
    assert [k["key"] for k in snap] == MASKED
    assert [k["state"] for k in snap] == ["ready", "resting", "out", "resting"]
    assert snap[0]["seconds"] is None and snap[0]["why"] is None
    assert snap[1]["seconds"] == pytest.approx(26) and snap[1]["why"] == "rate limited"
    assert snap[2]["seconds"] == pytest.approx(596) and "401/403" in snap[2]["why"]
    assert snap[3]["seconds"] == pytest.approx(6) and snap[3]["why"] == "stalled or unreachable (2 in a row)"
    clock.now += 30
    assert [k["state"] for k in pool.snapshot()] == ["ready", "ready", "out", "ready"]
    assert not any(key in json.dumps(pool.snapshot()) for key in KEYS)


def retried_flow(usage=None, cost=None) -> dict:
    """`flow.metadata["rotator"]` of a call whose first attempt got a 429 on key 0 and was served by key 1."""
    return {"provider": "openai", "protocol": "openai-chat", "key": MASKED[1],
            "events": [{"kind": "retry", "detail": "attempt 1 failed (status 429); retrying", "reason": "status 429",
                        "key": MASKED[0]},
                       {"kind": "committed", "detail": "status 200 sent early"}],
            **({"usage": usage} if usage is not None else {}), **({"cost": cost} if cost is not None else {})}


def test_the_tally_counts_requests_errors_and_usage_per_key():
    clock = Clock(1_700_000_000)
    tally = Tally(clock)
    tally.record(retried_flow(usage={"input_tokens": 10, "output_tokens": 5}, cost=0.25))
    tally.record(retried_flow(usage={"input_tokens": 1, "output_tokens": 2}))  # a model without a known price
    tally.record({"provider": "openai", "key": MASKED[1],
                  "events": [{"kind": "failed", "detail": "giving up: status 500", "reason": "status 500"}]})
    tally.record({"provider": "openai", "key": None,  # every key resting: no key was used
                  "events": [{"kind": "failed", "detail": "giving up: every key rate limited", "reason": "x"}]})
    tally.record({"provider": "openai", "refused": "no client key matched (401)"})

    first, second = tally.keys[("openai", MASKED[0])], tally.keys[("openai", MASKED[1])]
    assert (first.requests, first.error_count) == (0, 2)
    assert [e["reason"] for e in first.errors] == ["status 429", "status 429"]
    assert (second.requests, second.error_count) == (3, 1) and second.errors[0]["kind"] == "failed"
    assert second.usage == {"input_tokens": 11, "output_tokens": 7}
    assert (second.cost, second.unpriced) == (0.25, 1)
    assert tally.keys[("openai", None)].requests == 1


def test_the_tally_keeps_the_last_few_errors_and_ignores_malformed_records():
    tally = Tally()
    for n in range(8):
        tally.record({"provider": "openai", "key": MASKED[0],
                      "events": [{"kind": "cut", "detail": f"upstream body cut {n}"}]})
    for bad in ({}, {"provider": 3}, {"provider": "openai", "events": "x", "usage": [1]},
                {"provider": "openai", "key": 5, "events": [None, {"kind": "retry"}], "usage": {"a": "1", "b": True}}):
        tally.record(bad)
    counts = tally.keys[("openai", MASKED[0])]
    assert counts.error_count == 8
    assert [e["reason"] for e in counts.errors] == [f"upstream body cut {n}" for n in range(3, 8)]
    assert tally.keys[("openai", None)].usage == {}


def sample_page() -> dict:
    clock = Clock(1_700_000_000)
    tally = Tally(clock)
    tally.record(retried_flow(usage={"input_tokens": 10, "output_tokens": 5}, cost=0.25))
    clock.now += 65
    pool = KeyPool(KEYS[:2], clock=Clock(50))
    pool.bench(KEYS[0], 30)
    providers = [{"name": "openai", "family": "openai", "keys": pool.snapshot()},
                 {"name": "gemini", "family": "gemini", "keys": None}]
    flights = [Flight("f1aaaaaaaaaa", "openai", MASKED[1], "openai-chat", clock.now - 2.5),
               Flight("f2bbbbbbbbbb", "openai", None, None, clock.now - 0.5)]
    return page(providers, flights, tally, clock.now)


def test_the_page_shape_has_providers_keys_states_flights_and_totals():
    data = sample_page()
    assert data["started"] == "2023-11-14T22:13:20Z" and data["uptime_seconds"] == 65
    assert (data["requests"], data["in_flight"]) == (1, 2)
    assert data["usage"] == {"input_tokens": 10, "output_tokens": 5}
    assert data["cost"] == {"usd": 0.25, "unpriced_requests": 0}
    openai, gemini = data["providers"]
    assert (openai["name"], openai["pool"], openai["in_flight"], openai["requests"]) == ("openai", True, 2, 1)
    resting, ready = openai["keys"]
    assert resting["key"] == MASKED[0] and resting["state"] == "resting" and resting["why"] == "rate limited"
    assert resting["seconds_left"] == 30 and resting["until"] == "2023-11-14T22:14:55Z"
    assert resting["error_count"] == 1 and resting["errors"][0] == {
        "at": "2023-11-14T22:13:20Z", "kind": "retry", "reason": "status 429"}
    assert ready["state"] == "ready" and ready["until"] is None and ready["in_flight"] == 1
    assert ready["requests"] == 1 and ready["usage"] == {"input_tokens": 10, "output_tokens": 5}
    assert (gemini["pool"], gemini["keys"], gemini["cost"]) == (False, [], None)
    assert [f["id"] for f in data["requests_in_flight"]] == ["f1aaaaaaaaaa", "f2bbbbbbbbbb"]
    assert data["requests_in_flight"][0] == {"id": "f1aaaaaaaaaa", "provider": "openai", "key": MASKED[1],
                                             "protocol": "openai-chat", "seconds": 2.5}


def test_the_three_renderings():
    data = sample_page()
    assert json.loads(render_json(data)) == data
    text = render_text(data).decode()
    assert "Rotator status, up 1m 05s (since 2023-11-14T22:13:20Z)" in text
    assert "requests 1 · in flight 2 · usage: input_tokens 10, output_tokens 5 · cost $0.25" in text
    assert f"{MASKED[0]}  resting until 2023-11-14T22:14:55Z (30 s): rate limited" in text
    assert f"{MASKED[0]} 2023-11-14T22:13:20Z retry: status 429" in text
    assert "gemini (gemini)" in text and "no pool: each client's own key goes upstream" in text
    assert "f1aaaaaa  openai    sk-p…2222  openai-chat  2.5 s" in text
    page_html = render_html(data).decode()
    assert "<td>sk-p…1111<td>resting until 2023-11-14T22:14:55Z (30 s): rate limited" in page_html


def test_upstream_text_is_escaped_in_html():
    tally = Tally()
    tally.record({"provider": "openai", "key": MASKED[0],
                  "events": [{"kind": "failed", "reason": "status 500: <script>alert(1)</script>"}]})
    data = page([{"name": "openai", "family": "openai", "keys": KeyPool(KEYS[:1]).snapshot()}], [], tally, 0.0)
    assert "<script>" not in render_html(data).decode() and "&lt;script&gt;" in render_html(data).decode()


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
    assert [k["key"] for p in data["providers"] for k in p["keys"]] == ["sk-p…1111"]
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


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer rk-wrong"}, {"x-api-key": "sk-pool-secret-aaaa1111"}])
def test_with_clients_a_request_without_a_client_key_gets_401(headers):
    flow = served(POOLED + CLIENTS, status_request(headers=headers))
    assert flow.response.status_code == 401 and "`clients`" in flow.response.text
    assert "sk-p" not in flow.response.text
    assert "sk-pool-secret-aaaa1111" not in repr(flow.request.get_state())
