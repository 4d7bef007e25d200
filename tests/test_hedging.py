"""Hedged first tokens, the policy (rewrite/plugins/hedging.py, rewrite/policy/hedging.py): its config, the budget
that bounds hedges to `max_share` of the eligible requests, the `auto` delay, which requests are hedged, and what
the flow and the loser's key are told; through an Exchange against a scripted upstream, on virtual time."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

from rewrite.config import ConfigError, parse
from rewrite.lifecycle.payer import Payer
from rewrite.lifecycle.setting import Setting
from rewrite.plugins.hedging import RECORD, HedgedFirstTokens
from rewrite.plugins.payers.login import PlanLogin
from rewrite.policy.hedging import AUTO_FLOOR, MIN_SAMPLES, WINDOW, Budget, Latencies
from rewrite.pool.report import describe
from tests.support.engine_harness import Upstream, events_of, run, sse
from tests.support.engine_streams import TEXT, first_token_index, kinds

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

ON = "{mode: on, delay: 0.5}"


def preamble(protocol: str) -> list[bytes]:
    return events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]


def slow_then_fast(protocol: str) -> Upstream:
    """A first attempt that stalls after its preamble; every later one answers at once."""
    return Upstream([lambda r: sse(preamble(protocol), then="stall", stall=60),
                     lambda r: sse(events_of(TEXT[protocol]))])


# -- the config ---------------------------------------------------------------------------------------------------


def test_hedging_is_off_by_default_and_a_provider_overrides_only_what_it_gives():
    cfg = parse("hedging: {mode: on, delay: auto, max_share: 0.2}\nproviders: {openai: {hedging: {mode: off}}}")
    assert parse("").hedging.mode == "off"
    mine, own = cfg.hedging_for("openai")
    assert (mine.mode, mine.delay, mine.max_share, own) == ("off", "auto", 0.2, True)
    other, own = cfg.hedging_for("anthropic")
    assert (other.mode, own) == ("on", False)


@pytest.mark.parametrize(("text", "field"), [("hedging: {delay: 0}", "hedging.delay"),
                                             ("hedging: {delay: soon}", "hedging.delay"),
                                             ("hedging: {max_share: 1.5}", "hedging.max_share"),
                                             ("hedging: {mode: maybe}", "hedging.mode"),
                                             ("hedging: {when: 1}", "hedging.when"),
                                             ("providers: {openai: {hedging: {delay: -1}}}",
                                              "providers.openai.hedging.delay")])
def test_a_bad_hedging_setting_stops_start_up_naming_its_field(text, field):
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert str(e.value).startswith(f"{field}: ") and "\n" not in str(e.value)


# -- the budget and the auto delay --------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5, 1.0])
def test_hedges_stay_within_max_share_of_the_eligible_requests_plus_one(share):
    budget, hedges = Budget(), 0
    for eligible in range(1, 1001):
        budget.eligible(share)
        hedges += budget.spend()  # (every request late: each asks for a hedge)
        assert hedges <= share * eligible + 1
    assert hedges >= share * 1000 - 1  # (and the share is there to be had)


def test_a_long_calm_does_not_save_up_a_burst():
    budget = Budget()
    for _ in range(10_000):
        budget.eligible(0.1)
    assert sum(budget.spend() for _ in range(100)) == 0.1 * WINDOW


def test_a_hedge_that_found_no_credential_gives_its_share_back():
    budget = Budget()
    budget.eligible(0.1)
    assert budget.spend() and not budget.spend()
    budget.refund()
    assert budget.spend()


def test_the_auto_delay_is_the_recent_p95_and_at_least_its_floor():
    latencies = Latencies()
    for _ in range(MIN_SAMPLES - 1):
        latencies.add(2.0)
    assert latencies.delay() is None  # (too few to go by: no hedge)
    for _ in range(95 - MIN_SAMPLES + 1):
        latencies.add(2.0)
    for _ in range(5):
        latencies.add(20.0)
    assert latencies.delay() == 2.0  # (the 5 % slowest above it)
    latencies.add(20.0)  # (6 of 101 slower now)
    assert latencies.delay() == 20.0
    fast = Latencies()
    for _ in range(MIN_SAMPLES):
        fast.add(0.2)
    assert fast.delay() == AUTO_FLOOR


def test_a_login_is_hedged_only_when_its_providers_own_setting_turns_it_on():
    login, plan = SimpleNamespace(name="claude-login"), SimpleNamespace(hedged_unasked=PlanLogin.hedged_unasked)
    pooled, key = SimpleNamespace(name="anthropic"), Payer()
    plugin = HedgedFirstTokens(Setting(parse("hedging: {mode: on}")))
    assert plugin._settings(login, plan) is None and plugin._settings(pooled, key) is not None
    plugin = HedgedFirstTokens(Setting(parse("hedging: {mode: on}\nproviders: {claude-login: {hedging: {mode: on}}}")))
    assert plugin._settings(login, plan) is not None


# -- through the exchange -----------------------------------------------------------------------------------------


async def test_the_default_config_sends_no_hedge():
    up = slow_then_fast("openai_chat")
    out, job = await run("openai_chat", up, hedging="{}", first_token_timeout=2)
    assert up.at[1] - up.at[0] == pytest.approx(2.0) and kinds(job) == ["retry"]  # (the timeout's retry, as before)


@pytest.mark.parametrize("protocol", ["openai_chat", "anthropic_messages", "gemini"])
async def test_a_late_first_token_is_hedged_and_the_flow_says_which_attempt_won(protocol):
    up = slow_then_fast(protocol)
    out, job = await run(protocol, up, hedging=ON)
    assert up.at[1] - up.at[0] == pytest.approx(0.5) and out.status == 200
    [note] = [n for n in job.notes if n["kind"] == "hedged"]
    assert note["won"] == "second" and note["detail"].startswith("second attempt after 0.5 s: the second answered")
    [record] = job.records[RECORD]
    assert record["won"] == "second" and record["same_key"] and record["delay"] == 0.5
    assert "retry" not in kinds(job)


@pytest.mark.parametrize(("extra", "hedged"), [({}, False), ({"store": True}, False), ({"store": False}, True),
                                               ({"store": False, "background": True}, False)])
async def test_a_responses_request_that_makes_state_at_the_vendor_is_not_hedged(extra, hedged):
    body = {"model": "m", "input": "hi", "stream": True, **extra}
    up = slow_then_fast("openai_responses")
    out, job = await run("openai_responses", up, hedging=ON, body=body, first_token_timeout=2)
    assert ("hedged" in kinds(job)) is hedged
    assert up.at[1] - up.at[0] == pytest.approx(0.5 if hedged else 2.0)


async def test_a_stored_chat_completion_is_not_hedged():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, "store": True}
    up = slow_then_fast("openai_chat")
    out, job = await run("openai_chat", up, hedging=ON, body=body, first_token_timeout=2)
    assert "hedged" not in kinds(job)


async def test_the_losers_input_is_counted_for_its_key():
    protocol = "anthropic_messages"  # (message_start reports the input: 21 tokens)
    up = slow_then_fast(protocol)
    one, two = "sk-ant-one-aaaa1111", "sk-ant-two-bbbb2222"
    out, job = await run(protocol, up, hedging=ON, keys=(f"{{key: {one}, max_concurrent: 1}}", two))
    assert up.keys() == [one, two]
    pool = job.route.provider.pool
    totals = {k["key"]: k["total"] for k in describe(pool)["keys"]}
    [(first, loser), (second, winner)] = sorted(totals.items())
    assert loser["input_tokens"] == 21 and loser["requests"] == 1 and winner["input_tokens"] == 21
    [record] = job.records[RECORD]
    assert record["loser_key"] == first and record["loser_input_tokens"] == 21 and record["key"] == second
    assert job.key == second and job.usage is not None and job.usage["input_tokens"] == 21  # (the winner's alone)


async def test_a_non_stream_request_is_hedged_with_one_json_answer():
    up = slow_then_fast("openai_chat")
    out, job = await run("openai_chat", up, stream=False, hedging=ON)
    answer = json.loads(out.body)
    assert answer["choices"][0]["message"]["content"] == "The capital of France is Paris." and "hedged" in kinds(job)


async def test_a_request_not_streamed_upstream_is_not_hedged():
    up = Upstream([lambda r: httpx.Response(200, json={"choices": []})])
    out, job = await run("openai_chat", up, stream=False, hedging=ON, provider_extra=", force_upstream_stream: false")
    assert len(up.seen) == 1 and "hedged" not in kinds(job)


# -- what is shown ------------------------------------------------------------------------------------------------


async def hedged_flow(protocol: str = "anthropic_messages") -> dict:
    """`flow.metadata["rotator"]` of a request hedged on another key, whose second attempt answered first."""
    one, two = "sk-ant-one-aaaa1111", "sk-ant-two-bbbb2222"
    _, job = await run(protocol, slow_then_fast(protocol), hedging=ON, keys=(f"{{key: {one}, max_concurrent: 1}}", two))
    return {"provider": job.provider.name, "model": job.model, "key": job.key, "events": job.notes, **job.records}


async def test_the_status_page_and_the_metrics_count_hedges_sent_and_won_per_provider():
    from rewrite.accounting.metrics import Metrics, Tally
    from rewrite.inspection.status import page, render_text

    tally, metrics = Tally(lambda: 1_700_000_000), Metrics()
    won, lost = await hedged_flow(), await hedged_flow()
    lost["events"] = [{**n, "won": "first"} if n["kind"] == "hedged" else n for n in lost["events"]]
    for rot in (won, lost, {"provider": "anthropic", "model": "m", "events": []}):
        tally.record(rot)
        metrics.record(rot)
    data = page([{"name": "anthropic", "family": "anthropic", "pool": None}], [], tally, 1_700_000_000)
    assert data["providers"][0]["hedges"] == {"fired": 2, "won": 1} == data["hedges"]
    assert "hedges 2 (1 won)" in render_text(data).decode()
    body = metrics.exposition()[0].decode()
    assert 'rotator_hedges_total{model="m",provider="anthropic"} 2.0' in body
    assert 'rotator_hedges_won_total{model="m",provider="anthropic"} 1.0' in body


async def test_the_flow_view_and_comment_say_a_hedge_was_sent_and_which_attempt_won():
    from rewrite.inspection import flow_list, views

    rot = await hedged_flow()
    facts = views.Facts("anthropic_messages", "/v1/messages", b'{"model": "m", "messages": []}', 200,
                        "application/json", b"{}", rot)
    header = views.render_response(facts)
    assert "hedge: a second attempt after 0.5 s on key …2222: the second attempt answered first; the other, " \
           "cancelled, reported 21 input tokens (counted for key …1111)" in header
    comment, _ = flow_list.summary(rot["events"])
    assert comment == "hedged: second attempt after 0.5 s: the second answered first"


async def test_an_auto_delay_is_the_recent_p95_and_each_answer_adds_its_own_time_to_first_token(monkeypatch):
    recent = Latencies()
    for _ in range(MIN_SAMPLES):
        recent.add(2.0)
    monkeypatch.setattr(HedgedFirstTokens, "_latency", lambda self, provider, model: recent)
    up = slow_then_fast("openai_chat")
    out, job = await run("openai_chat", up, hedging="{mode: on, delay: auto}")
    assert up.at[1] - up.at[0] == pytest.approx(2.0) and "hedged" in kinds(job)
    assert len(recent.samples) == MIN_SAMPLES + 1 and recent.samples[-1] == pytest.approx(0.0)  # (the winner's own)
