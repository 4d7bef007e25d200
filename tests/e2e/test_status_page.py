"""The status page through a real `mitmdump -s addons/rotator.py`, read the way curl reads it: a plain HTTP client
with HTTP_PROXY (or HTTPS_PROXY, through CONNECT) set to Rotator asks for `http://rotator.status/`, a host that
exists nowhere else. The LLM calls that fill it are made with the official SDKs."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time

import httpx
import pytest

from tests.support.clients import call, make_client
from tests.support.fake_vendor import Fault
from tests.support.harness import CLIENT_KEYS, POOL_KEYS

pytestmark = pytest.mark.e2e

CLIENT = {"name": "team-a", "key": "rk-team-a-status-secret-0001"}


def get(url: str, **kwargs) -> httpx.Response:
    """One request with the environment's proxy settings, as curl would make it."""
    return httpx.get(url, timeout=10, **kwargs)


def page(proxy, monkeypatch, params: dict | None = None, **kwargs) -> dict:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    response = get("http://rotator.status/", params={"format": "json", **(params or {})}, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def provider(data: dict, name: str) -> dict:
    return next(p for p in data["providers"] if p["name"] == name)


def assert_no_full_key(*texts: str) -> None:
    for text in texts:
        for keys in POOL_KEYS.values():
            assert not any(key in text for key in keys)
        assert not any(key in text for key in CLIENT_KEYS.values())
        assert CLIENT["key"] not in text


def test_a_key_that_got_a_429_shows_as_resting_with_its_error(fake_vendor, rotator, monkeypatch):
    proxy = rotator(fresh=True)
    limited, good = POOL_KEYS["openai"][:2]
    fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}), key=limited)

    answer = call("chat", make_client("chat"), stream=False)  # served by the next key
    assert answer.text and fake_vendor.keys()[:2] == [limited, good]

    data = page(proxy, monkeypatch)
    openai = provider(data, "openai")
    assert openai["family"] == "openai" and openai["requests"] == 1 and openai["in_flight"] == 0
    keys = openai["pool"]["keys"]
    assert len(keys) == len(POOL_KEYS["openai"]) and openai["pool"]["resting"] == 1
    rested = next(k for k in keys if k["state"] != "ready")
    assert rested["state"] == "resting" and rested["text"].startswith("resting")
    rest, = rested["resting"]
    assert 20 <= rest["seconds"] <= 30 and rest["why"] and rest["until"]
    assert [e["reason"] for e in rested["errors"]] == ["status 429"] and rested["error_count"] == 1
    assert [k["state"] for k in keys].count("ready") == len(POOL_KEYS["openai"]) - 1
    assert all(k["errors"] == [] for k in keys if k is not rested)
    assert data["requests"] == 1 and data["in_flight"] == 0 and data["requests_in_flight"] == []
    assert data["usage"]["input_tokens"] == answer.input_tokens > 0  # what the vendor reported to the client
    assert data["usage"]["output_tokens"] == answer.output_tokens > 0
    assert data["cost"]["usd"] > 0 and data["cost"]["unpriced_requests"] == 0  # gpt-4o-mini has a price
    assert openai["usage"] == data["usage"] and provider(data, "gemini")["usage"] == {}
    assert {p["name"] for p in data["providers"] if p["pool"]} == {"openai", "anthropic", "gemini"}

    text = get("http://rotator.status/").text  # what `curl -x PROXY http://rotator.status/` prints
    assert f"{rested['key']}  {rested['text']}" in text
    assert f"recent errors:\n    {rested['key']} " in text and "retry: status 429" in text
    html = get("http://rotator.status/", headers={"accept": "text/html"}).text  # (drawn by the browser: its data
    # inside; tests/e2e/test_status_page_browser.py looks at what it draws)
    assert html.startswith("<!doctype html>") and re.search(
        rf'"key":"{re.escape(rested["key"])}","state":"resting","resting":\[\{{[^}}]*"why":"rate limited, status 429"',
        html), html
    assert_no_full_key(json.dumps(data), text, html, proxy.log)


def test_the_page_through_connect_with_mitmproxys_ca(rotator, monkeypatch):
    proxy = rotator()  # HTTPS_PROXY is set: https goes through a CONNECT tunnel that mitmproxy opens itself
    response = get("https://rotator.status/?format=json",
                   verify=ssl.create_default_context(cafile=str(proxy.ca_cert)))
    assert response.status_code == 200
    assert {p["name"] for p in response.json()["providers"]} >= {"openai", "anthropic", "gemini"}
    assert "Traceback" not in proxy.log


def test_a_request_in_flight_shows_with_its_provider_and_key(fake_vendor, rotator, monkeypatch):
    proxy = rotator()
    fake_vendor.script(Fault.stall_after(events=2, seconds=3))
    results = []
    caller = threading.Thread(target=lambda: results.append(call("chat", make_client("chat"), stream=True)))
    caller.start()
    try:
        fake_vendor.wait_for(1, done=False)
        data = page(proxy, monkeypatch)
        assert data["in_flight"] == 1 and provider(data, "openai")["in_flight"] == 1
        flight, = data["requests_in_flight"]
        assert flight["provider"] == "openai" and flight["protocol"] == "openai_chat"
        assert flight["key"] in {k["key"] for k in provider(data, "openai")["pool"]["keys"]}
        assert 0 <= flight["seconds"] < 30
    finally:
        caller.join(30)
    assert results and results[0].text
    deadline = time.monotonic() + 5
    while page(proxy, monkeypatch)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert page(proxy, monkeypatch)["requests_in_flight"] == []


def test_a_non_stream_request_in_flight_shows_how_long_it_has_been_waiting(fake_vendor, rotator, monkeypatch):
    proxy = rotator()
    fake_vendor.script(Fault.stall_before_headers(3))  # (answered in its flow, before the status addon's hook)
    results = []
    caller = threading.Thread(target=lambda: results.append(call("anthropic", make_client("anthropic"), stream=False)))
    caller.start()
    try:
        fake_vendor.wait_for(1, done=False)
        time.sleep(1.2)
        flight, = page(proxy, monkeypatch)["requests_in_flight"]
        assert flight["provider"] == "anthropic" and flight["protocol"] == "anthropic_messages"
        assert 1 <= flight["seconds"] < 30
    finally:
        caller.join(30)
    assert results and results[0].text


def test_with_clients_configured_only_a_client_key_opens_the_page(rotator, monkeypatch):
    proxy = rotator(clients=[CLIENT])
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    refused = get("http://rotator.status/?format=json")
    assert refused.status_code == 401 and "`clients`" in refused.text and "sk-" not in refused.text
    assert get("http://rotator.status/", headers={"authorization": "Bearer rk-wrong"}).status_code == 401
    assert get("http://rotator.status/", headers={"x-api-key": POOL_KEYS["openai"][0]}).status_code == 401
    several = {"authorization": f"Bearer {CLIENT['key']}", "x-api-key": "rk-another-guess-0001"}
    assert get("http://rotator.status/", headers=several).status_code == 401  # one credential per request

    for kwargs in ({"headers": {"authorization": f"Bearer {CLIENT['key']}"}},
                   {"headers": {"x-api-key": CLIENT["key"]}},
                   {"params": {"key": CLIENT["key"]}}):
        data = page(proxy, monkeypatch, **kwargs)
        assert [k["state"] for k in provider(data, "openai")["pool"]["keys"]]
    assert_no_full_key(proxy.log)


def test_without_clients_anyone_who_reaches_the_proxy_sees_it(rotator, monkeypatch):
    proxy = rotator()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert get("http://rotator.status/").status_code == 200
    assert get("http://rotator.status/nothing-here").status_code == 404
    assert get("http://rotator.status/?format=yaml").status_code == 400


def test_with_proxyauth_the_proxy_itself_asks_for_credentials_first(rotator, monkeypatch):
    proxy = rotator(args=("--set", "proxyauth=user:status-pass"))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert get("http://rotator.status/").status_code == 407
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://user:status-pass@"))
    assert get("http://rotator.status/").status_code == 200
