"""Cooldowns: every source of the vendor's delay (and what happens when one is malformed), the rests each answer
gives a key (per model, never shortened, backoff, quota, out), the log lines, and exhaustion seen from the engine."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.families.openai.errors import go_duration
from protocols.vendor_errors import MAX_HINT
from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.exchange.websocket import SocketJob, open_upstream
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.lifecycle.setting import Setting
from rewrite.pool import KeyPool
from rewrite.pool.keypool import ALERT, BACKOFF_BASE, BACKOFF_MAX
from rewrite.routing.router import Route, Router
from rewrite.upstream import client as upstream_client
from tests.support import samples
from tests.support.engine_harness import PATHS, FakeResponder, Upstream, events_of, sse
from tests.support.timing import FakeClock
from tests.support.vendor_errors import failure as decided
from tests.support.vendor_errors import read

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

NOW = 1_700_000_000.0


def hint(headers: dict[str, str] | None = None, body: bytes = b"", protocol: str | None = None) -> float | None:
    """The delay an answer names, read by the reader of `protocol` (by default, that of the vendor whose headers
    these are: Anthropic's for `anthropic-*`, else OpenAI's, which reads Google's RPC details too)."""
    if protocol is None:
        protocol = "anthropic_messages" if any(h.startswith("anthropic-") for h in headers or {}) else "openai_chat"
    return read(429, list((headers or {}).items()), body, NOW, protocol).delay


def rfc3339(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(NOW + seconds_from_now, UTC).isoformat().replace("+00:00", "Z")


def gemini_error(*details: dict) -> bytes:
    return json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": list(details)}}).encode()


def retry_info(delay) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def quota_failure(quota_id: str, model: str | None = None) -> dict:
    violation = {"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests", "quotaId": quota_id}
    if model:
        violation["quotaDimensions"] = {"location": "global", "model": model}
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}


# ------------------------------------------------------------------------------------------------------------------
# Delay sources


def test_retry_after_ms_comes_first():
    assert hint({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert hint({"Retry-After-Ms": "250.5"}) == pytest.approx(0.2505)


def test_retry_after_ms_of_minutes_is_read_whole():
    # (a day is the longest delay read: in milliseconds, 86,400,000; two minutes were read as 86.4 s)
    assert hint({"retry-after-ms": "120000"}) == 120
    assert hint({"retry-after-ms": str(3 * 86400 * 1000)}) == 86400


def test_retry_after_in_seconds_or_as_an_http_date():
    assert hint({"retry-after": "7"}) == 7
    assert hint({"retry-after": "1.5"}) == 1.5
    assert hint({"retry-after": email.utils.formatdate(NOW + 20, usegmt=True)}) == pytest.approx(20)
    assert hint({"retry-after": email.utils.formatdate(NOW - 20, usegmt=True)}) == 0  # already past: now


@pytest.mark.parametrize("text, seconds", [("6m0s", 360), ("1.5s", 1.5), ("20ms", 0.02), ("1h2m3.5s", 3723.5),
                                           ("0s", 0), ("500us", 0.0005), ("2m", 120)])
def test_openai_reset_headers_are_go_durations(text, seconds):
    assert go_duration(text) == pytest.approx(seconds)
    assert hint({"x-ratelimit-reset-requests": text}) == pytest.approx(seconds)


def test_openai_reset_of_the_limit_that_ran_out():
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s",
               "x-ratelimit-remaining-tokens": "5000", "x-ratelimit-reset-tokens": "6m0s"}
    assert hint(headers) == 20
    headers["x-ratelimit-remaining-requests"] = "3"  # neither says it ran out: the later reset, to be safe
    assert hint(headers) == 360


def test_anthropic_reset_headers_are_rfc3339_times():
    assert hint({"anthropic-ratelimit-requests-reset": rfc3339(30)}) == pytest.approx(30)
    headers = {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": rfc3339(45),
               "anthropic-ratelimit-requests-remaining": "10", "anthropic-ratelimit-requests-reset": rfc3339(5)}
    assert hint(headers) == pytest.approx(45)
    assert hint({"anthropic-ratelimit-input-tokens-reset": "2023-11-14T22:13:50+00:00"}) == pytest.approx(30)


@pytest.mark.parametrize("protocol", ["gemini", "openai_chat"])  # (Google's OpenAI-compatible endpoint too)
def test_gemini_retry_info_in_the_body(protocol):
    assert hint(body=gemini_error(quota_failure("PerMinute"), retry_info("37s")), protocol=protocol) == 37
    assert hint(body=gemini_error(retry_info("1.5s")), protocol=protocol) == 1.5
    assert hint(body=b"[" + gemini_error(retry_info("12s")) + b"]", protocol=protocol) == 12  # as its streams send


def test_sources_in_order():
    body = gemini_error(retry_info("40s"))
    assert hint({"retry-after": "3", "x-ratelimit-reset-tokens": "30s"}, body) == 3
    assert hint({"x-ratelimit-reset-tokens": "30s"}, body) == 30
    assert hint({}, body) == 40
    assert hint() is None


@pytest.mark.parametrize("headers, body, expected", [
    ({"retry-after-ms": "soon", "retry-after": "5"}, b"", 5),
    ({"retry-after-ms": "-300", "retry-after": "5"}, b"", 5),
    ({"retry-after": "tomorrow", "x-ratelimit-reset-requests": "10s"}, b"", 10),
    ({"retry-after": "nan", "x-ratelimit-reset-requests": "10s"}, b"", 10),
    ({"retry-after": "inf", "x-ratelimit-reset-requests": "10s"}, b"", 10),
    ({"retry-after": "-5"}, b"", None),
    ({"retry-after": ""}, b"", None),
    ({"x-ratelimit-reset-requests": "6x"}, b"", None),
    ({"x-ratelimit-reset-requests": "1.2.3s"}, b"", None),
    ({"x-ratelimit-reset-requests": "s"}, b"", None),
    ({"x-ratelimit-reset-requests": "-1s"}, b"", None),
    ({"x-ratelimit-reset-requests": "10"}, b"", None),
    ({"anthropic-ratelimit-requests-reset": "yesterday"}, b"", None),
    ({"anthropic-ratelimit-requests-reset": "2023-11-14T22:13:50"}, b"", None),  # no zone: unknown time
    ({}, gemini_error(retry_info("37")), None),
    ({}, gemini_error(retry_info(37)), None),
    ({}, gemini_error(retry_info("abc s")), None),
    ({}, gemini_error("RetryInfo", None, 3), None),
    ({}, b'{"error": "details: RetryInfo"}', None),
    ({}, b'["details"]', None),
    ({}, b"details RetryInfo not json", None),
    ({}, b'{"error": {"details": {"@type": "RetryInfo"}}}', None),
])
def test_a_malformed_source_is_ignored_and_the_next_one_read(headers, body, expected):
    assert hint(headers, body) == expected


@pytest.mark.parametrize("protocol", ["openai_chat", "anthropic_messages", "gemini"])
@settings(max_examples=300, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(["retry-after-ms", "retry-after", "x-ratelimit-reset-requests",
                                        "x-ratelimit-remaining-requests", "anthropic-ratelimit-tokens-reset",
                                        "anthropic-ratelimit-tokens-remaining", "x-other"]), st.text(max_size=30)),
       body=st.one_of(st.binary(max_size=200),
                      st.builds(lambda d: gemini_error(retry_info(d)), st.one_of(st.text(max_size=12), st.integers()))))
def test_any_headers_and_body_give_a_delay_or_none_never_an_error(protocol, headers, body):
    delay = hint(headers, body, protocol)
    assert delay is None or 0 <= delay <= MAX_HINT


def test_an_absurd_delay_is_capped_at_a_day():
    assert hint({"retry-after": "99999999999"}) == MAX_HINT
    assert hint({"x-ratelimit-reset-tokens": "100000h"}) == MAX_HINT


# ------------------------------------------------------------------------------------------------------------------
# What each answer does to the key


@pytest.mark.parametrize("status", [429, 503, 529])
def test_rate_limits_and_overloads_rest_the_key_for_the_model_for_the_hint(status):
    f = decided(status, [("retry-after", "30")], b"", pooled=True, now=NOW)
    assert f.retryable and f.delay == 30 and f.rest.per_model and not f.rest.out
    assert f"status {status}" in f.rest.why
    assert decided(status, [], b"", pooled=True, now=NOW).delay is None  # backoff


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_request_errors_never_count_against_a_key(status):
    assert decided(status, [("retry-after", "30")], b"", pooled=True, now=NOW) is None


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_other_transient_errors_are_retried_without_resting_the_key(status):
    f = decided(status, [], b"", pooled=True, now=NOW)
    assert f.retryable and f.rest is None


def test_openai_insufficient_quota_rests_the_whole_key_for_an_hour_or_the_window_named():
    body = json.dumps({"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}).encode()
    f = decided(429, [], body, pooled=True, now=NOW)
    assert f.delay == 3600 and not f.rest.per_model and "quota" in f.rest.why
    assert decided(429, [("retry-after", "120")], body, pooled=True, now=NOW).delay == 120
    assert not decided(429, [], body, pooled=False, now=NOW).retryable


@pytest.mark.parametrize("protocol", ["gemini", "openai_chat"])  # (Google's OpenAI-compatible endpoint too)
def test_gemini_daily_quota_rests_until_googles_midnight_for_that_model(protocol):
    body = gemini_error(quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "gemini-2.5-pro"),
                        retry_info("20s"))
    f = decided(429, [], body, pooled=True, now=NOW, protocol=protocol)
    midnight = datetime(2023, 11, 15, tzinfo=timezone(timedelta(hours=-8)))  # NOW is 14:13 Pacific on the 14th
    assert f.delay == pytest.approx(midnight.timestamp() - NOW) and f.rest.per_model
    assert "daily quota" in f.rest.why
    per_minute = decided(429, [], gemini_error(quota_failure("PerMinute"), retry_info("20s")), True, NOW, protocol)
    assert per_minute.delay == 20 and "rate limited" in per_minute.rest.why


def test_a_rejected_key_is_out():
    f = decided(401, [("retry-after", "5")], b"", pooled=True, now=NOW)
    assert f.rest.out and not f.rest.per_model


# ------------------------------------------------------------------------------------------------------------------
# The pool's rests


def failure(status: int, headers: dict[str, str] | None = None, body: bytes = b""):
    return decided(status, list((headers or {}).items()), body, pooled=True, now=NOW)


def test_a_cooldown_is_never_shortened_by_a_later_shorter_hint():
    clock = FakeClock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.rests.failed("a", failure(429, {"retry-after": "30"}), "m")
    pool.rests.failed("a", failure(429, {"retry-after": "5"}), "m")
    clock.now += 10
    assert pool.pick(model="m").key == "b" and pool.pick(model="m").key == "b"
    pool.rests.failed("a", failure(429, {"retry-after": "60"}), "m")  # a longer one does extend it
    clock.now += 25
    assert {pool.pick(model="m").key for _ in range(3)} == {"b"}
    clock.now += 40
    assert "a" in {pool.pick(model="m").key for _ in range(2)}


def test_a_per_model_rest_leaves_the_key_to_other_models():
    clock = FakeClock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.rests.failed("a", failure(429, {"retry-after": "30"}), "gpt-4o")
    assert {pool.pick(model="gpt-4o").key for _ in range(4)} == {"b"}
    assert {pool.pick(model="gpt-4o-mini").key for _ in range(4)} == {"a", "b"}
    pool.rests.failed("b", failure(429, {"retry-after": "30"}, b'{"error": {"code": "insufficient_quota"}}'), "gpt-4o")
    assert {pool.pick(model="gpt-4o-mini").key for _ in range(4)} == {"a"}  # a quota holds for every model


def test_without_a_hint_the_backoff_grows_with_failures_in_a_row_and_a_success_resets_it():
    clock = FakeClock()
    pool = KeyPool(["a", "b"], clock=clock, rng=lambda: 1.0)  # the top of the jitter
    rests = []
    for _ in range(9):
        pool.rests.failed("a", failure(429), "m")
        rests.append(pool.states[0].rests["m"].until - clock.now)
        clock.now += 1000
    assert rests[:4] == [BACKOFF_BASE, 2 * BACKOFF_BASE, 4 * BACKOFF_BASE, 8 * BACKOFF_BASE]
    assert rests[-1] == BACKOFF_MAX
    pool.rests.succeeded("a")
    pool.rests.failed("a", failure(503), "m")
    assert pool.states[0].rests["m"].until - clock.now == BACKOFF_BASE


def test_the_backoff_is_jittered_within_half_of_its_step():
    pool = KeyPool(["a"], rng=lambda: 0.0)
    assert pool.rests.backoff(3) == 2 * BACKOFF_BASE
    assert KeyPool(["a"], rng=lambda: 0.5).rests.backoff(3) == 3 * BACKOFF_BASE


def test_a_request_error_does_not_rest_the_key():
    pool = KeyPool(["a"], clock=FakeClock())
    assert decided(400, [], b"", pooled=True) is None
    pool.rests.failed("a", failure(500), "m")
    assert pool.pick(model="m").wait == 0 and pool.states[0].failures == 0


def test_a_rejected_key_is_out_until_the_config_is_reloaded_said_once_loudly(caplog):
    caplog.set_level(logging.INFO, "rotator")
    clock = FakeClock()
    secret = "sk-proj-rejected-0123456789-wxyz"
    pool = KeyPool([secret, "sk-proj-good-key-000000000-abcd"], name="openai", clock=clock)
    pool.rests.failed(secret, failure(401), "m")
    pool.rests.failed(secret, failure(403), "other")
    clock.now += 1e7
    assert {pool.pick(model=m).key for m in ("m", "other", "") for _ in range(3)} == {
        "sk-proj-good-key-000000000-abcd"}
    alerts = [r for r in caplog.records if r.levelno == ALERT]
    assert len(alerts) == 1 and "sk-p…wxyz" in alerts[0].getMessage() and "reloaded" in alerts[0].getMessage()
    assert secret not in caplog.text
    reloaded = KeyPool([secret, "sk-proj-good-key-000000000-abcd"], name="openai", clock=clock)
    assert reloaded.pick().key == secret


def test_alert_is_mitmproxys_level():
    from mitmproxy import log
    assert ALERT == log.ALERT


def test_one_summary_line_whenever_a_key_changes_state(caplog):
    caplog.set_level(logging.INFO, "rotator")
    clock = FakeClock()
    pool = KeyPool(["sk-proj-aaaaaaaaaaaa-0001", "sk-proj-bbbbbbbbbbbb-0002"], name="openai", clock=clock)
    pool.rests.failed("sk-proj-aaaaaaaaaaaa-0001", failure(429, {"retry-after": "30"}), "gpt-4o")
    pool.rests.failed("sk-proj-aaaaaaaaaaaa-0001", failure(429, {"retry-after": "10"}), "gpt-4o")  # no change of state
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("rotator: openai keys: 1 ready, 1 resting, 0 out; sk…0001 resting for gpt-4o until ")
    assert "(in 30 s): rate limited, status 429" in lines[0]
    clock.now += 31
    pool.pick(model="gpt-4o")  # the rest ended: said at the pool's next use
    assert caplog.records[-1].getMessage() == "rotator: openai keys: 2 ready, 0 resting, 0 out"
    assert len(caplog.records) == 2


# ------------------------------------------------------------------------------------------------------------------
# Exhaustion, from the engine


def route_for(keys: list[str], **streaming):
    cfg = parse(f"providers: {{openai: {{base_url: 'http://vendor.test/v1', keys: [{', '.join(keys)}]}}}}")
    route = Router(cfg).route(PATHS["openai_chat"][0], "POST", PATHS["openai_chat"][1])
    return route, StreamingConfig(**{"first_token_timeout": 5, "heartbeat_interval": 30, **streaming})


async def send(route, cfg, upstream, model: str = "m") -> FakeResponder:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = LoopbackRequest("POST", PATHS["openai_chat"][1], [("content-type", "application/json")],
                              json.dumps(body).encode())
    out = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg, Job("job-0001", route, route.provider), request, out).run()
    return out


def ok(request: httpx.Request) -> httpx.Response:
    return sse(events_of(samples.CHAT_TEXT))


def limited(seconds: str):
    return lambda r: httpx.Response(429, headers={"retry-after": seconds}, json={"error": {"message": "slow down"}})


async def test_keys_resting_for_one_model_still_serve_another():
    route, cfg = route_for(["k1", "k2"])
    up = Upstream([limited("300"), limited("300"), ok])
    assert (await send(route, cfg, up, "gpt-4o")).status == 429
    out = await send(route, cfg, up, "gpt-4o")
    assert out.status == 429 and "rate limited" in json.loads(out.body)["error"]["message"] and len(up.seen) == 2
    assert (await send(route, cfg, up, "gpt-4o-mini")).status == 200 and len(up.seen) == 3


async def test_every_key_back_within_first_token_timeout_is_waited_for():
    route, cfg = route_for(["k1", "k2"], first_token_timeout=30)
    up = Upstream([limited("20"), limited("25"), ok])
    out = await send(route, cfg, up)
    assert out.status == 200 and up.keys() == ["k1", "k2", "k1"]
    assert [at - up.at[0] for at in up.at] == [0, 0, 20]  # the one back soonest, as soon as it is back


async def test_every_key_back_later_than_first_token_timeout_is_answered_at_once():
    route, cfg = route_for(["k1", "k2"], first_token_timeout=30)
    up = Upstream([limited("60"), limited("60"), ok])
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = await send(route, cfg, up)
    assert out.status == 429 and loop.time() == t0 and len(up.seen) == 2  # at once, not after a first-token timeout
    out = await send(route, cfg, up)
    assert out.status == 429 and dict(out.headers)["retry-after"] == "60" and len(up.seen) == 2
    assert math.isfinite(route.provider.pool.resting("m").seconds)


async def test_a_websocket_handshake_when_every_key_rests_past_first_token_timeout_is_answered_at_once():
    route, cfg = route_for(["k1"], first_token_timeout=1)
    route.provider.pool.rests.bench("k1", 30)
    sj = SocketJob(Job("job-0001", Route(route.provider, None), route.provider), [("authorization", "Bearer c")], "/v1/realtime")
    failure = await asyncio.wait_for(open_upstream(sj, cfg, upstream_client.Upstream(), Setting()), 5)
    assert failure.status == 429 and dict(failure.headers)["retry-after"] == "30" and sj.upstream is None
