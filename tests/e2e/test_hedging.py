"""Hedged first tokens (issue 38) through a real `mitmdump -s addons/rotator.py` and the official SDKs: a first
attempt whose first token is late gets the same request sent once more, and the client gets one answer, the first
to come; the other attempt's connection is closed at once (the fake vendor sees it leave). Off by default, bounded
by `max_share`, never for a request that makes state at the vendor, kept on a conversation's key; counted on the
status page and in `/metrics` as the fake vendor saw them, the cancelled attempt's input counted for its key.

Every hedge here comes from a first attempt that stalls after its preamble (Anthropic's message_start, with the
input count, ...) for far longer than any timeout: without the hedge the client would wait it out.
"""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import PROTOCOLS, call, make_client
from tests.support.fake_vendor import INPUT_TOKENS, TEXT, Fault, split_text
from tests.support.harness import POOL_KEYS
from tests.support.multi_turn import SYSTEM, Conversation
from tests.support.reliability import ANSWER_ID, MARGIN, assert_one_clean_answer, stream, warmed
from tests.support.timing import wait_until

pytestmark = pytest.mark.e2e

DELAY = 0.5
STALL = 20.0  # the slow attempt's silence: far past any timeout here
SLOW = Fault.stall_after(deltas=0, seconds=STALL)  # the preamble, then silence before the first token
STREAMING = {"first_token_timeout": 10}
# Every late request hedged (a proxy shared by tests keeps its budget: max_share 1 never runs out).
HEDGING = {"mode": "on", "delay": DELAY, "max_share": 1.0}
# A Responses request is hedged only when the vendor keeps nothing of it (`store` true or left out stores it).
UNSTORED = {"responses": {"store": False}}


def hedged(rotator, fake_vendor, protocol: str, **config):
    return warmed(rotator, fake_vendor, protocol, streaming=STREAMING, hedging=HEDGING, **config)


def first_token_at(request) -> float:
    """When the vendor sent the event carrying the answer's first text fragment."""
    first = split_text(TEXT)[0].encode()
    return next(at for at, data in request.events if first in data)


def races(calls: list) -> list[tuple]:
    """The vendor's requests that overlapped in time: a hedge and the attempt it raced (the client's calls are
    made one after another), each pair (first, second)."""
    return [(a, b) for a, b in zip(calls, calls[1:], strict=False) if a.ended_at is not None and b.received_at < a.ended_at]


def status(proxy, monkeypatch) -> dict:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    return httpx.get("http://rotator.status/", params={"format": "json"}, timeout=10).json()


def provider(data: dict, name: str) -> dict:
    return next(p for p in data["providers"] if p["name"] == name)


def metric(proxy, monkeypatch, name: str, **labels) -> float:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    text = httpx.get("http://rotator.status/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and labels.items() <= s.labels.items())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_slow_first_attempt_is_hedged_and_the_fast_answer_delivered_once(fake_vendor, rotator, protocol):
    hedged(rotator, fake_vendor, protocol)
    fake_vendor.script(SLOW, Fault.ok())

    seen = stream(protocol, **UNSTORED.get(protocol, {}))

    assert_one_clean_answer(protocol, seen, served_by=1)  # the second request's answer, and nothing of the first's
    slow, fast = fake_vendor.wait_for(2, done=False)[:2]
    assert len(fake_vendor.calls()) == 2 and slow.credential == fast.credential  # (its key could take another)
    assert DELAY * 0.9 <= fast.received_at - slow.received_at < DELAY + MARGIN
    assert slow.done.wait(5) and slow.outcome == "client-gone"
    assert slow.ended_at - first_token_at(fast) < 1.0  # closed by Rotator as soon as the other answered


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_non_stream_call_is_hedged_with_one_json_answer(fake_vendor, rotator, protocol):
    hedged(rotator, fake_vendor, protocol, streamed=False)
    fake_vendor.script(SLOW, Fault.ok())

    result = call(protocol, make_client(protocol), stream=False, **UNSTORED.get(protocol, {}))

    assert result.text == TEXT and result.input_tokens == INPUT_TOKENS
    answer_id = {"chat": "id", "responses": "id", "anthropic": "id", "gemini": "response_id"}[protocol]
    assert getattr(result.raw, answer_id) == ANSWER_ID[protocol].format(1)
    assert len(fake_vendor.calls()) == 2


def test_no_hedge_when_the_first_token_comes_before_the_delay(fake_vendor, rotator):
    proxy = warmed(rotator, fake_vendor, "anthropic", streaming=STREAMING, hedging={**HEDGING, "delay": 2.0})
    fake_vendor.script(Fault.stall_after(deltas=0, seconds=0.2))

    assert call("anthropic", make_client("anthropic"), stream=True).text == TEXT

    time.sleep(2.0)  # stays: absence. Past the delay, no second request may come
    assert len(fake_vendor.calls()) == 1
    assert "hedged" not in proxy.log


def test_no_hedge_with_the_default_config(fake_vendor, rotator):
    proxy = warmed(rotator, fake_vendor, "chat", streaming=STREAMING)
    fake_vendor.script(Fault.stall_after(deltas=0, seconds=2.0))

    t0 = time.monotonic()
    assert call("chat", make_client("chat"), stream=True).text == TEXT
    assert time.monotonic() - t0 >= 2.0  # waited the slow first token out
    assert len(fake_vendor.calls()) == 1 and "hedged" not in proxy.log


@pytest.mark.parametrize("extra", [{}, {"store": True}, {"background": True, "store": False}],
                         ids=["store-left-out", "stored", "background"])
def test_a_responses_request_that_the_vendor_keeps_is_not_hedged(fake_vendor, rotator, extra):
    proxy = hedged(rotator, fake_vendor, "responses")
    fake_vendor.script(Fault.stall_after(deltas=0, seconds=2.0))

    assert call("responses", make_client("responses"), stream=True, **extra).text == TEXT
    assert len(fake_vendor.calls()) == 1 and "hedged" not in proxy.log


def test_max_share_bounds_the_hedges_over_20_slow_requests(fake_vendor, rotator, monkeypatch):
    proxy = rotator(fresh=True, streaming=STREAMING, hedging={"mode": "on", "delay": 0.2, "max_share": 0.1})
    fake_vendor.always(Fault.stall_after(deltas=0, seconds=0.6))  # every attempt late: each asks for a hedge

    for _ in range(20):
        assert call("chat", make_client("chat"), stream=True).text == TEXT

    calls = fake_vendor.wait_for(20, done=True)
    hedges = len(calls) - 20
    assert 1 <= hedges <= 0.1 * 20 + 1 and len(races(calls)) == hedges  # one at once, then 0.1 a request
    wait_until(lambda: provider(status(proxy, monkeypatch), "openai")["hedges"]["fired"] == hedges, 10,
               "the status page counts the hedges the vendor saw")


def test_the_status_page_and_the_metrics_count_what_the_vendor_saw(fake_vendor, rotator, monkeypatch):
    proxy = rotator(fresh=True, streaming=STREAMING, hedging=HEDGING)
    # Three hedges the second attempt wins, one the first wins (its first token comes before the second's), and
    # one request that is not hedged at all.
    script = [SLOW, Fault.ok()] * 3 + [Fault.stall_after(deltas=0, seconds=1.0), SLOW, Fault.ok()]
    fake_vendor.script(*script)
    for _ in range(5):
        assert call("anthropic", make_client("anthropic"), stream=True).text == TEXT

    calls = fake_vendor.wait_for(len(script), done=True)
    pairs = races(calls)
    hedges, won = len(pairs), sum(1 for first, _ in pairs if first.outcome == "client-gone")
    assert (hedges, won, len(calls)) == (4, 3, 5 + 4)

    def counted() -> tuple:
        shown = provider(status(proxy, monkeypatch), "anthropic")["hedges"]
        return ((shown["fired"], shown["won"]),
                (metric(proxy, monkeypatch, "rotator_hedges_total", provider="anthropic"),
                 metric(proxy, monkeypatch, "rotator_hedges_won_total", provider="anthropic")))

    wait_until(lambda: counted() == ((hedges, won), (hedges, won)), 10, "the status page and /metrics count them")


def test_the_losers_input_counts_in_its_keys_usage(fake_vendor, rotator, monkeypatch):
    one, two = POOL_KEYS["anthropic"]
    keys = [{"key": one, "max_concurrent": 1}, {"key": two, "max_concurrent": 1}]
    proxy = rotator(fresh=True, streaming=STREAMING, hedging=HEDGING, providers={"anthropic": {"keys": keys}})
    fake_vendor.script(SLOW, Fault.ok())  # (the slow one reports its input in message_start, then stalls)

    assert call("anthropic", make_client("anthropic"), stream=True).text == TEXT

    slow, fast = fake_vendor.wait_for(2, done=True)
    assert slow.credential != fast.credential and slow.outcome == "client-gone"  # (the first's key at its cap)

    def inputs() -> dict:
        pool = provider(status(proxy, monkeypatch), "anthropic")["pool"]
        return {k["key"]: k["total"]["input_tokens"] for k in pool["keys"]}

    wait_until(lambda: sorted(inputs().values()) == [INPUT_TOKENS, INPUT_TOKENS], 10,
               "each key counts its attempt's input: the cancelled one's too")


def test_a_bound_conversation_is_hedged_on_its_own_key_and_still_bound_after(fake_vendor, rotator):
    keys = {"anthropic": {"keys": [f"sk-ant-pool-{i}" for i in (1, 2, 3)]}}
    rotator(fresh=True, streaming=STREAMING, hedging=HEDGING, providers=keys)
    convo = Conversation("anthropic", make_client("anthropic"), system="Conversation H: " + SYSTEM * 6)

    convo.ask("First question.")
    [first] = fake_vendor.calls()
    fake_vendor.script(SLOW, Fault.ok())
    convo.ask("Second question.")
    convo.ask("Third question.")

    calls = fake_vendor.calls()
    assert len(calls) == 4  # the second turn hedged
    assert [c.credential for c in calls] == [first.credential] * 4  # hedged on its key, and bound to it after
    assert calls[1].outcome == "client-gone" and all(t.text == TEXT for t in convo.turns)
