"""Quota windows end to end, through a real `mitmdump -s addons/rotator.py` with the official SDKs: a key whose
window its own successful answers say is used up (OpenAI's and Anthropic's headers), whose Gemini quota error named
a spent quota, or that a config cap holds back, is passed over before it gets a 429, and serves again after the
window's reset; a quota group's 429 rests every model of the group on that key; every key over gives the honest 429
with the earliest reset; a window learned by one worker holds for the next with state.redis; the flow, the log and
the status page say so."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import openai
import pytest

from rewrite.state.redis.connection import BREAKER_SECONDS
from tests.support.clients import MODELS, call, make_client
from tests.support.fake_vendor import Fault
from tests.support.harness import POOL_KEYS
from tests.support.redis_server import OUTAGE

pytestmark = pytest.mark.e2e

K1, K2, K3 = POOL_KEYS["openai"]
A1, A2 = POOL_KEYS["anthropic"]
G1, G2 = POOL_KEYS["gemini"]
RESET = 3.0  # seconds: the fake vendor's windows reset this soon


def ask(protocol: str, n: int = 1, **kwargs) -> None:
    client = make_client(protocol)
    client = client if protocol == "gemini" else client.with_options(max_retries=0)
    for _ in range(n):
        assert call(protocol, client, stream=False, **kwargs).text
    if protocol != "gemini":
        client.close()  # (no connection left open when a worker is stopped)


def rfc3339(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).isoformat().replace("+00:00", "Z")


def status(proxy, monkeypatch) -> dict:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    response = httpx.get("http://rotator.status/?format=json", timeout=10)
    assert response.status_code == 200
    return response.json()


def key_windows(data: dict, provider: str) -> dict[str, list[dict]]:
    [pool] = [p["pool"] for p in data["providers"] if p["name"] == provider]
    return {k["key"]: k["windows"] for k in pool["keys"]}


def assert_clean(proxy) -> None:
    assert "Traceback" not in proxy.full_log
    assert not any(key in proxy.full_log for keys in POOL_KEYS.values() for key in keys)


def test_an_openai_key_whose_answers_say_its_window_is_used_up_is_passed_over_until_the_reset(fake_vendor, rotator,
                                                                                             monkeypatch):
    proxy = rotator(fresh=True)
    fake_vendor.script(Fault.with_headers({
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{RESET:g}s", "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149000", "x-ratelimit-reset-tokens": "6m0s"}), key=K1)

    ask("chat")  # K1 serves, and says it has no request left for a few seconds
    began = time.monotonic()
    ask("chat", 3)
    in_time = time.monotonic() - began < RESET  # (the window had not reset yet)
    assert fake_vendor.keys() == [K1, K2, K3, K2] or not in_time  # K1 passed over: it never got its 429
    shown = key_windows(status(proxy, monkeypatch), "openai")["…-1"]
    assert {(w["unit"], w["remaining"], w["limit"]) for w in shown} == {("requests", 0, 60), ("tokens", 149000, 150000)}
    line = proxy.wait_log("passed over")
    assert f"window: key …-1 passed over: its {MODELS['chat']} requests window would be exceeded (resets " in line

    time.sleep(RESET + 0.2)
    ask("chat", 3)
    assert K1 in fake_vendor.keys()[4:]  # back after its reset
    assert_clean(proxy)


def test_an_anthropic_key_out_of_input_tokens_is_passed_over_until_the_reset(fake_vendor, rotator):
    proxy = rotator(fresh=True)
    windows = {}
    for unit, left in (("requests", "49"), ("input-tokens", "0"), ("output-tokens", "8000")):
        windows |= {f"anthropic-ratelimit-{unit}-limit": "50000", f"anthropic-ratelimit-{unit}-remaining": left,
                    f"anthropic-ratelimit-{unit}-reset": lambda: rfc3339(RESET)}  # (from when it answers)
    fake_vendor.script(Fault.with_headers(windows), key=A1)

    ask("anthropic")
    began = time.monotonic()
    ask("anthropic", 3)
    assert fake_vendor.keys() == [A1, A2, A2, A2] or time.monotonic() - began > RESET
    assert "passed over: its claude-haiku-4-5 input_tokens window would be exceeded" in proxy.wait_log("passed over")
    time.sleep(RESET + 0.2)
    ask("anthropic", 2)
    assert A1 in fake_vendor.keys()[4:]
    assert_clean(proxy)


def gemini_quota(model: str) -> bytes:
    return json.dumps({"error": {"code": 429, "message": "You exceeded your current quota.",
                                 "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
             "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
             "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "5"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{RESET:g}s"}]}}).encode()


def test_a_gemini_quota_error_names_the_window_that_passes_the_key_over_until_it_refills(fake_vendor, rotator,
                                                                                        monkeypatch):
    proxy = rotator(fresh=True)
    fake_vendor.script(Fault.status(429, gemini_quota(MODELS["gemini"])), key=G1)

    ask("gemini")  # G1's quota error, then G2 serves it
    began = time.monotonic()
    [window] = key_windows(status(proxy, monkeypatch), "gemini")["…-1"]
    assert (window["window"], window["unit"], window["remaining"], window["limit"]) == (MODELS["gemini"],
                                                                                        "requests", 0, 5)
    ask("gemini", 2)
    assert fake_vendor.keys() == [G1, G2, G2, G2] or time.monotonic() - began > RESET
    time.sleep(RESET + 0.2)
    ask("gemini", 2)
    assert fake_vendor.keys()[4:].count(G1) == 1  # back, and served
    assert_clean(proxy)


def test_a_quota_groups_429_rests_every_model_of_the_group_on_that_key(fake_vendor, rotator):
    proxy = rotator(fresh=True)
    fake_vendor.script(Fault.status(429, headers={"retry-after": f"{RESET:g}"}), key=A1)

    ask("anthropic", model="claude-opus-4-1")  # A1's 429 for Opus 4.1, then A2 serves it
    began = time.monotonic()
    ask("anthropic", 3, model="claude-opus-4-6")  # the Opus 4.x models share one rate limit
    assert fake_vendor.keys() == [A1, A2, A2, A2, A2] or time.monotonic() - began > RESET
    assert "resting for claude-opus-4 until" in proxy.wait_log("resting for claude-opus-4")
    ask("anthropic", 2, model=MODELS["anthropic"])  # another group (Haiku): A1 serves it
    assert A1 in fake_vendor.keys()[5:]
    time.sleep(RESET + 0.2)
    ask("anthropic", 2, model="claude-opus-4-6")
    assert A1 in fake_vendor.keys()[7:]
    assert_clean(proxy)


def test_a_share_cap_keeps_part_of_the_vendors_window_back_until_its_reset(fake_vendor, rotator):
    proxy = rotator(fresh=True, providers={"openai": {"windows": [{"requests": {"share": 0.5}}]}})
    fake_vendor.script(Fault.with_headers({"x-ratelimit-limit-requests": "4", "x-ratelimit-remaining-requests": "2",
                                           "x-ratelimit-reset-requests": f"{RESET:g}s"}), key=K1)
    ask("chat")  # two of K1's four left: the half the config keeps back
    began = time.monotonic()
    ask("chat", 4)
    assert fake_vendor.keys() == [K1, K2, K3, K2, K3] or time.monotonic() - began > RESET
    time.sleep(RESET + 0.2)
    ask("chat", 3)
    assert K1 in fake_vendor.keys()[5:]
    assert_clean(proxy)


def test_every_key_at_its_cap_gets_the_honest_429_with_the_earliest_reset(fake_vendor, rotator, monkeypatch):
    if (left := 60 - time.time() % 60) < 10:  # (the minute's end must not come while the requests are made)
        time.sleep(left + 0.5)
    # (A request waits for a window that resets within the first-token timeout: 5 s, under the 10 s left.)
    proxy = rotator(fresh=True, streaming={"first_token_timeout": 5},
                    providers={"openai": {"keys": [K1, K2], "windows": [{"per": "minute", "requests": 1}]}})
    ask("chat", 2)  # one request a minute on each key
    with pytest.raises(openai.RateLimitError) as e:
        ask("chat")
    until_minute = 60 - time.time() % 60
    assert abs(int(e.value.response.headers["retry-after"]) - until_minute) <= 2
    assert "over a quota window" in e.value.message
    assert fake_vendor.keys() == [K1, K2]  # the third never reached the vendor
    shown = key_windows(status(proxy, monkeypatch), "openai")
    assert [(w["window"], w["unit"], w["remaining"], w["limit"]) for w in shown["…-1"]] == [
        ("(cap) per minute", "requests", 0, 1)]
    assert_clean(proxy)


def test_a_window_one_worker_learned_holds_for_the_next_with_state_redis(fake_vendor, rotator, redis_server):
    redis_server.flush()
    state = {"redis": redis_server.url, "path": ""}  # (no state file: what holds is in Redis)
    fake_vendor.script(Fault.with_headers({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                                           "x-ratelimit-reset-requests": "60s"}), key=K1)
    first = rotator(fresh=True, state=state)
    ask("chat")
    first.proc.stop()

    again = rotator(fresh=True, state=state)
    ask("chat", 4)
    asked = fake_vendor.keys()[1:]
    if OUTAGE in again.log:  # (a loaded machine held a reply past Redis's timeout: the worker decided alone then)
        time.sleep(BREAKER_SECONDS + 0.5)  # until it asks Redis again
        mark = len(fake_vendor.keys())
        ask("chat", 4)
        asked = fake_vendor.keys()[mark:]
    assert asked == [K2, K3, K2, K3]  # the next worker passes K1 over too
    assert "…-1 passed over" in again.wait_log("passed over")
    assert_clean(first)
    assert_clean(again)


def test_a_key_over_its_window_is_not_asked_for_the_429_it_announced(fake_vendor, rotator):
    # Without windows the third request would go to K1, get the 429, and be served by K2 after it.
    rotator(fresh=True, providers={"openai": {"keys": [K1, K2]}})
    fake_vendor.script(Fault.with_headers({"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "3",
                                           "x-ratelimit-reset-tokens": "30s"}), key=K1)
    fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}), key=K1)
    ask("chat", 3)  # (each request's tokens, estimated from its body, are more than the 3 K1 has left)
    assert fake_vendor.keys() == [K1, K2, K2]
