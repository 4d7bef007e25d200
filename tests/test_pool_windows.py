"""Quota windows: what each vendor's answers say of a key's windows (protocols/windows.py's readers), the quota
groups, the config's caps, and the pool passing over a key whose window a request would exceed, on a fake clock,
alone and with every worker's windows in Redis (rewrite/pool/windows.py, rewrite/state/redis/windows.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import fakeredis
import pytest
from prometheus_client.parser import text_string_to_metric_families

import protocols
from protocols.windows import Window
from rewrite.accounting.metrics import Metrics, Tally
from rewrite.config import ConfigError, parse
from rewrite.inspection import flow_list, views
from rewrite.inspection.status import page, render_json, render_text
from rewrite.pool import KeyPool
from rewrite.pool.caps import CapConfig, Share, period_end
from rewrite.pool.persistence import export_state, import_state
from rewrite.pool.report import describe, table
from rewrite.pool.windows import Quotas, headroom
from rewrite.state.redis.shared import SharedState
from tests.support.vendor_errors import failure

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a Friday
A, B = "sk-window-a-000001", "sk-window-b-000002"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def read(protocol: str, status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"") -> tuple:
    return protocols.registered(protocol).family.windows.read(status, list((headers or {}).items()), body, NOW)


def rfc3339(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(NOW + seconds_from_now, UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------------------------------
# What each vendor's answers say


@pytest.mark.parametrize("protocol", ["openai_chat", "openai_responses"])
def test_openai_success_headers_give_each_windows_remaining_limit_and_reset(protocol):
    windows = read(protocol, 200, {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59",
                                   "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "150000",
                                   "x-ratelimit-remaining-tokens": "149984", "x-ratelimit-reset-tokens": "6m0s"})
    assert [(w.unit, w.remaining, w.limit, w.resets_at) for w in windows] == [
        ("requests", 59, 60, NOW + 1), ("tokens", 149984, 150000, NOW + 360)]


def test_anthropic_success_headers_give_its_four_units_with_rfc3339_resets():
    headers = {}
    for unit, left in (("requests", 49), ("tokens", 37000), ("input-tokens", 29000), ("output-tokens", 7900)):
        headers |= {f"anthropic-ratelimit-{unit}-limit": str(left + 1000), f"anthropic-ratelimit-{unit}-remaining":
                    str(left), f"anthropic-ratelimit-{unit}-reset": rfc3339(42)}
    windows = read("anthropic_messages", 200, headers)
    assert [(w.unit, w.remaining) for w in windows] == [
        ("requests", 49), ("tokens", 37000), ("input_tokens", 29000), ("output_tokens", 7900)]
    assert {w.resets_at for w in windows} == {NOW + 42}


@pytest.mark.parametrize("headers", [
    {"x-ratelimit-remaining-requests": "-1", "x-ratelimit-limit-requests": "abc"},  # (Azure's -1)
    {"x-ratelimit-remaining-tokens": "5", "x-ratelimit-reset-tokens": "soon"},
    {"anthropic-ratelimit-tokens-remaining": "5", "anthropic-ratelimit-tokens-reset": "2999-01-01T00:00:00Z"},
])
def test_a_value_that_does_not_parse_is_left_out_never_an_error(headers):
    windows = read("anthropic_messages" if "anthropic-ratelimit-tokens-reset" in headers else "openai_chat", 200,
                   headers)
    assert all(w.remaining is None or w.resets_at is None for w in windows)
    [absurd] = read("openai_chat", 200, {"x-ratelimit-remaining-tokens": "5", "x-ratelimit-reset-tokens": "9999h"})
    assert absurd.resets_at == NOW + 86400  # (a day at most, as a delay is)


def gemini_quota(quota_id: str, metric: str, model: str, value: str, delay: str = "17s") -> bytes:
    return json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaMetric": f"generativelanguage.googleapis.com/{metric}", "quotaId": quota_id,
             "quotaDimensions": {"location": "global", "model": model}, "quotaValue": value}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}).encode()


def test_gemini_sends_its_windows_in_quota_errors_only():
    assert read("gemini", 200, {"x-ratelimit-remaining-requests": "5"}) == ()
    [minute] = read("gemini", 429, {}, gemini_quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                                                    "generate_content_free_tier_requests", "gemini-2.5-pro", "5"))
    assert (minute.name, minute.unit, minute.model, minute.remaining, minute.limit, minute.resets_at) == (
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "requests", "gemini-2.5-pro", 0, 5, NOW + 17)
    [day] = read("gemini", 429, {}, gemini_quota("GenerateContentInputTokensPerModelPerDay-FreeTier",
                                                 "generate_content_free_tier_input_token_count", "gemini-2.5-pro",
                                                 "250000"))
    midnight = datetime(2027, 1, 16, tzinfo=timezone(timedelta(hours=-8)))  # NOW is midnight Pacific on the 15th
    assert day.unit == "input_tokens" and day.resets_at == midnight.timestamp()


def test_each_vendors_quota_groups():
    openai, anthropic = protocols.registry.windows("openai").groups, protocols.registry.windows("anthropic").groups
    assert openai.group("gpt-4o-2024-08-06") == openai.group("gpt-4o") == "gpt-4o"
    assert openai.group("gpt-4o-mini") == "gpt-4o-mini"
    assert {anthropic.group(m) for m in ("claude-opus-4", "claude-opus-4-1-20250805", "claude-opus-4-6")} == {
        "claude-opus-4"}
    assert anthropic.group("claude-sonnet-4-5") == "claude-sonnet-4" != anthropic.group("claude-haiku-4-5")
    assert protocols.registry.windows("gemini").groups.group("gemini-2.5-pro") == "gemini-2.5-pro"
    overridden = anthropic.overridden({"house": ["claude-opus-4-6", "claude-haiku-*"]})
    assert overridden.group("claude-opus-4-6") == "house" and overridden.group("claude-opus-4-1") == "claude-opus-4"


# ------------------------------------------------------------------------------------------------------------------
# The config's caps


@pytest.mark.parametrize(("entry", "field", "said"), [
    ({"requests": 10}, "windows.0.per", "required with an amount (requests)"),
    ({"per": "minute"}, "windows.0", "a window needs one of requests"),
    ({"per": "minute", "tokens": {"share": 0.8}}, "windows.0.per", "a share (tokens) counts in the vendor's own"),
    ({"dollars": {"share": 0.8}}, "windows.0.dollars", "no vendor reports a dollar limit"),
    ({"tokens": {"share": 1.5}}, "windows.0.tokens", "above 0 and up to 1"),
    ({"per": "day", "tokens": -5}, "windows.0.tokens", "a number above 0"),
    ({"per": "fortnight", "tokens": 5}, "windows.0.per", "'minute', 'hour', 'day', 'week' or 'month'"),
    ({"per": "day", "tokens": 5, "model": ["x"]}, "windows.0.model", "Extra inputs are not permitted"),
])
def test_a_cap_that_does_not_make_sense_stops_startup_with_one_line_naming_the_field(entry, field, said):
    with pytest.raises(ConfigError) as e:
        parse(json.dumps({"providers": {"openai": {"keys": [A], "windows": [entry]}}}))
    assert str(e.value).startswith(f"providers.openai.{field}: ") and said in str(e.value)
    assert "\n" not in str(e.value)


def test_a_quota_group_without_globs_stops_startup():
    with pytest.raises(ConfigError, match=r"^providers\.openai\.quota_groups\.g: "):
        parse(json.dumps({"providers": {"openai": {"keys": [A], "quota_groups": {"g": []}}}}))


@pytest.mark.parametrize(("per", "ends"), [("minute", "2027-01-15T08:01:00"), ("hour", "2027-01-15T09:00:00"),
                                           ("day", "2027-01-16T00:00:00"), ("week", "2027-01-18T00:00:00"),
                                           ("month", "2027-02-01T00:00:00")])
def test_a_caps_period_is_the_calendar_one_under_way_on_utc(per, ends):
    assert datetime.fromtimestamp(period_end(per, NOW + 1), UTC).isoformat()[:19] == ends
    assert period_end("month", datetime(2026, 12, 31, 23, tzinfo=UTC).timestamp()) == datetime(
        2027, 1, 1, tzinfo=UTC).timestamp()


# ------------------------------------------------------------------------------------------------------------------
# The pool, on a fake clock


def pool(clock: Clock, *caps: CapConfig, groups: str = "anthropic", keys: tuple[str, ...] = (A, B)) -> KeyPool:
    quotas = Quotas.of(protocols.registry.windows(groups).groups, {}, caps)
    return KeyPool(list(keys), name="anthropic", clock=clock, wall=clock, quotas=quotas)


def used_up(seconds: float, unit: str = "requests", left: float = 0, limit: float = 50) -> list[Window]:
    return [Window(unit, remaining=left, limit=limit, resets_at=NOW + seconds, unit=unit)]


def test_a_key_whose_window_is_used_up_is_passed_over_before_its_429_and_back_at_its_reset():
    clock = Clock()
    p = pool(clock)
    p.reported(A, "claude-sonnet-4-5", used_up(2))
    assert {p.pick(model="claude-sonnet-4-5").key for _ in range(4)} == {B}
    clock.now += 2.5
    assert A in {p.pick(model="claude-sonnet-4-5").key for _ in range(2)}


def test_a_pick_checks_no_window_until_one_can_be_over():
    """No cap, and no window an answer reported: a request counts in nothing a pick need check. Once an answer
    reports one (or with a cap; or every worker's windows in Redis, the test below), its windows are checked."""
    clock = Clock()
    p = pool(clock)
    assert p.need("claude-opus-4", 100).checks == ()
    assert p.pick(model="claude-opus-4").key == A and not p.states[0].windows  # (nothing counted either)
    p.reported(B, "claude-opus-4", used_up(60, "tokens", left=5000, limit=20000))
    assert [c.unit for c in p.need("claude-opus-4", 100).checks] == ["requests", "tokens", "input_tokens",
                                                                      "output_tokens"]
    assert pool(clock, CapConfig(per="day", requests=5)).need("claude-sonnet-4", 0).checks


def test_a_quota_groups_window_is_counted_once_for_every_model_of_the_group():
    clock = Clock()
    p = pool(clock)
    p.reported(A, "claude-opus-4-1", used_up(30))
    assert {p.pick(model="claude-opus-4-6").key for _ in range(3)} == {B}  # Opus 4.x share one limit
    assert A in {p.pick(model="claude-sonnet-4-5").key for _ in range(2)}  # Sonnet has its own
    assert {w["window"] for w in describe(p)["keys"][0]["windows"]} == {"claude-opus-4"}


def test_a_request_larger_than_what_is_left_is_passed_over_a_smaller_one_is_not():
    clock = Clock()
    p = pool(clock)
    p.reported(A, "claude-sonnet-4", used_up(60, "input_tokens", left=3000, limit=30000))
    assert {p.pick(model="claude-sonnet-4", tokens=5000).key for _ in range(3)} == {B}
    assert A in {p.pick(model="claude-sonnet-4", tokens=1000).key for _ in range(2)}


def test_every_key_over_its_window_names_the_earliest_reset():
    clock = Clock()
    p = pool(clock)
    p.reported(A, "claude-opus-4", used_up(40))
    p.reported(B, "claude-opus-4", used_up(25))
    pick = p.pick(model="claude-opus-4")
    assert (pick.key, pick.wait) == (B, 25)
    assert p.resting("claude-opus-4").seconds == 25
    assert p.rests_past(20, "claude-opus-4") and not p.rests_past(30, "claude-opus-4")


def test_a_quota_groups_429_rests_the_whole_group_on_that_key():
    clock = Clock()
    p = pool(clock)
    p.rests.failed(A, failure(429, [("retry-after", "30")], protocol="anthropic_messages"), "claude-opus-4-1")
    assert {p.pick(model="claude-opus-4-6").key for _ in range(3)} == {B}
    assert A in {p.pick(model="claude-sonnet-4").key for _ in range(2)}
    assert describe(p)["keys"][0]["resting"][0]["model"] == "claude-opus-4"


def test_a_config_group_overrides_the_vendors():
    quotas = Quotas.of(protocols.registry.windows("openai").groups, {"gpt-5-family": ["gpt-5*"]}, [])
    clock = Clock()
    p = KeyPool([A, B], clock=clock, wall=clock, quotas=quotas)
    p.rests.failed(A, failure(429, [("retry-after", "30")]), "gpt-5-mini")
    assert {p.pick(model="gpt-5").key for _ in range(3)} == {B}
    assert A in {p.pick(model="gpt-4o").key for _ in range(2)}


def test_a_cap_of_requests_counts_each_pick_in_the_calendar_period_and_resets_with_it():
    clock = Clock(NOW + 30)
    p = pool(clock, CapConfig(per="minute", requests=2))
    picked = [p.pick(model="claude-opus-4").key for _ in range(4)]
    assert sorted(picked) == [A, A, B, B]
    pick = p.pick(model="claude-opus-4")  # both keys have had their 2 this minute: back when the next one starts
    assert pick.wait == 30 and p.resting("claude-opus-4").seconds == 30
    clock.now += 30
    assert p.pick(model="claude-opus-4").wait == 0


def test_a_cap_counts_the_models_its_globs_match_together_and_leaves_the_others():
    clock = Clock()
    p = pool(clock, CapConfig(models=["claude-opus-*"], per="day", requests=1), keys=(A,))
    assert p.pick(model="claude-opus-4-1").wait == 0
    assert p.pick(model="claude-opus-4-6").wait > 0  # the same cap, another model it matches
    assert p.pick(model="claude-sonnet-4").wait == 0


def test_a_cap_of_tokens_and_dollars_counts_the_usage_answers_report():
    clock = Clock()
    p = pool(clock, CapConfig(per="hour", tokens=1000), CapConfig(per="day", dollars=2.0), keys=(A, B))
    p.record_usage(A, "claude-opus-4", 0.5, input_tokens=800, output_tokens=100)
    assert p.pick(model="claude-opus-4", tokens=200).key == B  # A has 100 tokens left this hour
    p.record_usage(B, "claude-opus-4", 2.0, input_tokens=5, output_tokens=5)  # B spent its 2 dollars of the day
    assert p.pick(model="claude-opus-4", tokens=50).key == A
    pick = p.pick(model="claude-opus-4", tokens=200)
    assert pick.wait == 3600  # A's hour ends first
    shown = {(w["window"], w["unit"]): w for k in describe(p)["keys"] for w in k["windows"]}
    assert shown[("(cap) per day", "dollars")]["remaining"] == 0


def test_a_share_keeps_part_of_the_vendors_window_back():
    clock = Clock()
    p = pool(clock, CapConfig(tokens=Share(0.8)))
    p.reported(A, "claude-opus-4", used_up(60, "tokens", left=2500, limit=10000))  # 2000 kept back: 500 usable
    assert p.pick(model="claude-opus-4", tokens=400).key == A
    assert {p.pick(model="claude-opus-4", tokens=600).key for _ in range(2)} == {B}
    [shown] = describe(p)["keys"][0]["windows"]
    assert shown["kept_back"] == 2000 and "2000 kept back" in describe(p)["keys"][0]["windows_text"]


def test_an_untouched_window_takes_a_request_larger_than_it():
    clock = Clock()
    p = pool(clock, CapConfig(per="minute", tokens=100), keys=(A,))
    assert p.pick(model="claude-opus-4", tokens=5000).wait == 0
    p.reported(A, "claude-opus-4", used_up(60, "tokens", left=1000, limit=1000))
    assert p.pick(model="claude-opus-4", tokens=5000).wait == 0


def test_headroom_is_the_share_left_of_the_tightest_window_the_request_counts_in():
    clock = Clock()
    p = pool(clock)
    p.reported(A, "claude-opus-4", used_up(60, "requests", left=40, limit=50))
    p.reported(A, "claude-opus-4", used_up(60, "tokens", left=5000, limit=20000))
    need = p.quotas.need("claude-opus-4", 100, NOW)
    assert headroom(p.states[0].windows, need, NOW) == 0.25
    assert headroom(p.states[1].windows, need, NOW) == 1.0
    assert headroom(p.states[0].windows, p.quotas.need("claude-sonnet-4", 100, NOW), NOW) == 1.0


def test_windows_outlive_a_restart_in_the_state_file():
    clock = Clock()
    p = pool(clock, CapConfig(per="day", dollars=1.0))
    p.record_usage(A, "claude-opus-4", 1.0, input_tokens=5, output_tokens=5)
    p.reported(B, "claude-opus-4", used_up(600))
    again = pool(clock, CapConfig(per="day", dollars=1.0))
    import_state(again, json.loads(json.dumps(export_state(p))))
    assert again.pick(model="claude-opus-4").wait > 0  # A spent its day, B's window is used up


# ------------------------------------------------------------------------------------------------------------------
# Every worker's windows, in Redis


def redis_worker(where, clock: Clock, *caps: CapConfig) -> tuple[KeyPool, SharedState]:
    if isinstance(where, fakeredis.FakeServer):
        state = SharedState(fakeredis.FakeAsyncRedis(server=where))
    else:
        state = SharedState.from_url(where)
    p = pool(clock, *caps)
    p.shared = state.pool(p)
    return p, state


async def take(p: KeyPool, model: str, tokens: float = 0):
    pick = await p.take(model=model, tokens=tokens)
    if pick.wait == 0 and pick.key is not None:
        p.lease(pick.key, model, pick.held).release()
    else:
        pick.drop()
    return pick


async def settle(*states: SharedState) -> None:
    """What each worker sent Redis is applied: its background writes done, then a PING answered after them on its
    pipe (Redis answers one connection in order). Waited on, not slept for."""
    for state in states:
        while state.tasks:
            await asyncio.gather(*list(state.tasks), return_exceptions=True)
        if state.pipe is not None and state.pipe.connected():
            await state.pipe.call("PING")


async def test_a_window_one_worker_learned_passes_the_key_over_in_another(redis_where):
    clock = Clock()
    one, one_state = redis_worker(redis_where, clock)
    two, two_state = redis_worker(redis_where, clock)
    await take(one, "claude-opus-4")  # (connected)
    one.reported(A, "claude-opus-4-1", used_up(5))
    await settle(one_state)
    assert {(await take(two, "claude-opus-4-6")).key for _ in range(3)} == {B}
    clock.now += 6
    assert A in {(await take(two, "claude-opus-4-6")).key for _ in range(2)}
    await one_state.aclose()
    await two_state.aclose()


async def test_a_cap_counts_every_workers_requests_and_usage(redis_where):
    clock = Clock(NOW + 30)
    caps = CapConfig(per="minute", requests=2), CapConfig(per="hour", tokens=100)
    one, one_state = redis_worker(redis_where, clock, *caps)
    two, two_state = redis_worker(redis_where, clock, *caps)
    picked = [(await take(one if i % 2 else two, "claude-opus-4")).key for i in range(4)]
    assert sorted(picked) == [A, A, B, B]
    pick = await take(one, "claude-opus-4")
    assert pick.wait == 30 and one.resting("claude-opus-4", pick).seconds == 30  # as every worker counted them
    clock.now += 30
    two.record_usage(A, "claude-opus-4", 0.1, input_tokens=90, output_tokens=5)
    await settle(two_state)
    assert {(await take(one, "claude-opus-4", tokens=50)).key for _ in range(2)} == {B}
    await one_state.observe()  # what the others counted, in this worker's view (status page, rotator.pools)
    [tokens] = [w for w in describe(one)["keys"][0]["windows"] if w["unit"] == "tokens"]
    assert tokens["remaining"] == 5 and tokens["limit"] == 100
    await one_state.aclose()
    await two_state.aclose()


# ------------------------------------------------------------------------------------------------------------------
# Visible: rotator.pools, the status page, /metrics and the flow's view


def test_a_keys_windows_are_shown_by_rotator_pools_the_status_page_and_the_metrics():
    clock = Clock()
    p = pool(clock, CapConfig(per="day", dollars=5.0))
    p.reported(A, "claude-opus-4-1", used_up(42, "requests", left=7, limit=50))
    p.record_usage(A, "claude-opus-4", 1.25, input_tokens=5, output_tokens=5)
    described = describe(p)
    assert table([described]).count(f"{p.states[0].masked} windows: ") == 1
    assert "claude-opus-4 requests 7 of 50 left, resets 2027-01-15T08:00:42Z (in 42 s)" in table([described])
    assert "(cap) per day dollars 3.75 of 5 left" in table([described])
    data = page([{"name": "anthropic", "family": "anthropic", "pool": described}], [], Tally(clock), NOW)
    [shown, _] = json.loads(render_json(data))["providers"][0]["pool"]["keys"]
    assert {(w["window"], w["unit"], w["remaining"]) for w in shown["windows"]} == {
        ("claude-opus-4", "requests", 7), ("(cap) per day", "dollars", 3.75)}
    assert "claude-opus-4 requests 7 of 50 left" in render_text(data).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(
        Metrics(lambda: [{**described, "provider": "anthropic"}]).exposition()[0].decode()) for s in family.samples}
    at = (("key", p.states[0].masked), ("provider", "anthropic"), ("unit", "requests"), ("window", "claude-opus-4"))
    assert samples[("rotator_key_window_remaining", at)] == 7
    assert samples[("rotator_key_window_limit", at)] == 50
    assert samples[("rotator_key_window_reset_timestamp_seconds", at)] == NOW + 42


def test_a_flow_says_which_key_was_passed_over_for_a_window_and_shows_the_windows_its_answers_reported():
    rot = {"provider": "openai", "key": "sk-w…0002",
           "windows": [w.as_json() for w in read("openai_chat", 200, {
               "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59",
               "x-ratelimit-reset-requests": "1s"})],
           "events": [{"kind": "window", "detail": "key sk-w…0001 passed over: its gpt-4o requests window would be "
                       "exceeded (resets 2027-01-15T08:00:02Z, in 2 s)"}]}
    facts = views.Facts("openai_chat", "/v1/chat/completions", b'{"model": "gpt-4o", "messages": []}', 200,
                        "application/json", b'{"choices": []}', rot)
    header = views.render_response(facts)
    assert "key windows: requests 59 of 60 left, resets 2027-01-15T08:00:01Z" in header
    assert "key sk-w…0001 passed over: its gpt-4o requests window would be exceeded" in header
    assert "passed over" in flow_list.summary(rot["events"])[0]
