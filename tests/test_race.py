"""Two attempts of one target raced (rewrite/exchange/race.py): the spine's side of a hedge, asked for by a plug-in of
the test's own (it answers `hedging` with a delay and `hedge` with whether to go), against a scripted upstream on
virtual time. The client gets one answer, the first attempt's to reach its first token; the other is cancelled then
and its upstream body closed."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from rewrite.exchange.race import Claim, Outrun
from rewrite.lifecycle.events import Raced
from rewrite.lifecycle.hooks import Part, Plugin
from tests.support.engine_harness import Stream, Upstream, events_of, run, sse
from tests.support.engine_streams import ALL, TEXT, Watched, first_token_index, kinds, preamble

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

DELAY = 0.5


def hedger(delay: float | None = DELAY, go: bool = True) -> type[Plugin]:
    """A plug-in that races the first attempt of every request after `delay` (None: never), letting the second go
    when `go`; what it was told of each race is in its `races`."""

    class Hedger(Plugin):
        name = "test-hedger"
        races: list[Raced] = []

        def engage(self, ctx) -> Part:
            return Racing()

    class Racing(Part):
        def hedging(self, e) -> float | None:
            return delay if e.attempt == 0 else None

        def hedge(self, e) -> bool:
            return go

        def raced(self, e: Raced) -> None:
            Hedger.races.append(e)

    return Hedger


def other_answer(protocol: str) -> bytes:
    """The canned answer with another text (and output count): tells which attempt the client got."""
    body = TEXT[protocol].replace(b"Paris", b"Rome")
    return body.replace(b'"output_tokens":11', b'"output_tokens":13').replace(b'"completion_tokens":8',
                                                                            b'"completion_tokens":9')




def answering(body: Stream) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)


def one_of(body: bytes, expected: bytes) -> bool:
    """The client's body is `expected` (a comment line the upstream sent may or may not have been passed on)."""
    return body in (expected, expected.replace(b": keepalive\n\n", b""))


@pytest.mark.parametrize("protocol", ALL)
async def test_a_slow_first_attempt_is_raced_and_the_fast_answer_delivered_once(protocol):
    slow = Watched(preamble(protocol), then="stall", stall=60)
    up = Upstream([lambda r: answering(slow), lambda r: sse(events_of(other_answer(protocol)))])
    plugin = hedger()
    out, job = await run(protocol, up, plugins=(plugin,))
    assert len(up.seen) == 2 and up.at[1] - up.at[0] == pytest.approx(DELAY)
    assert up.keys() == ["k1", "k1"]  # (the first's key could take another request: its prompt cache is there)
    assert out.status == 200 and one_of(out.body, other_answer(protocol))  # nothing of the first attempt's
    assert slow.closed_at == pytest.approx(up.at[1])  # closed as the second's first token came
    [race] = plugin.races
    assert race.won == 1 and race.loser is race.first and race.second is not None and race.after == DELAY
    assert kinds(job) == [] and job.ttft == pytest.approx(DELAY)


async def test_the_usage_is_the_winners_and_the_losers_is_announced():
    protocol = "anthropic_messages"
    slow = Watched(preamble(protocol), then="stall", stall=60)  # (message_start: 21 input tokens)
    up = Upstream([lambda r: answering(slow), lambda r: sse(events_of(other_answer(protocol)))])
    plugin = hedger()
    out, job = await run(protocol, up, plugins=(plugin,))
    assert job.records["usage"]["output_tokens"] == 13  # the second attempt's, which answered
    [race] = plugin.races
    assert race.spent is not None and race.spent.input_tokens == 21  # what the first's vendor reported


@pytest.mark.parametrize("protocol", ["openai_chat", "anthropic_messages"])
async def test_the_first_attempt_wins_when_its_first_token_comes_first(protocol):
    events = events_of(TEXT[protocol])
    at = first_token_index(protocol, TEXT[protocol])
    late = Stream([b"".join(events[:at]), b"".join(events[at:])], pause=1.0)  # its first token after 1 s
    stalled = Watched(preamble(protocol), then="stall", stall=60)
    up = Upstream([lambda r: answering(late), lambda r: answering(stalled)])
    plugin = hedger()
    out, job = await run(protocol, up, plugins=(plugin,))
    assert len(up.seen) == 2 and one_of(out.body, TEXT[protocol])
    assert stalled.closed_at == pytest.approx(up.at[0] + 1.0)
    [race] = plugin.races
    assert race.won == 0 and race.loser is race.second


async def test_no_second_attempt_when_the_first_token_comes_before_the_delay():
    plugin = hedger()
    up = Upstream([lambda r: sse(events_of(TEXT["openai_chat"]), pause=0.1)])
    out, _ = await run("openai_chat", up, plugins=(plugin,))
    assert len(up.seen) == 1 and one_of(out.body, TEXT["openai_chat"]) and plugin.races == []


async def test_no_second_attempt_when_the_plugin_does_not_let_it_go():
    protocol = "openai_chat"
    events = events_of(TEXT[protocol])
    up = Upstream([lambda r: sse([b"".join(events[:1]), b"".join(events[1:])], pause=1.0)])
    plugin = hedger(go=False)
    out, _ = await run(protocol, up, plugins=(plugin,))
    assert len(up.seen) == 1 and one_of(out.body, TEXT[protocol]) and plugin.races == []


async def test_the_second_attempt_goes_to_another_key_when_the_first_may_take_no_other_request():
    protocol = "openai_chat"
    up = Upstream([lambda r: sse(preamble(protocol), then="stall", stall=60),
                   lambda r: sse(events_of(other_answer(protocol)))])
    out, _ = await run(protocol, up, keys=("{key: k1, max_concurrent: 1}", "k2"), plugins=(hedger(),))
    assert up.keys() == ["k1", "k2"] and one_of(out.body, other_answer(protocol))


async def test_no_second_attempt_when_no_key_is_free_at_once():
    protocol = "openai_chat"
    events = events_of(TEXT[protocol])
    up = Upstream([lambda r: sse([b"".join(events[:1]), b"".join(events[1:])], pause=1.0)])
    plugin = hedger()
    out, _ = await run(protocol, up, keys=("{key: k1, max_concurrent: 1}",), plugins=(plugin,))
    assert len(up.seen) == 1 and one_of(out.body, TEXT[protocol])
    [race] = plugin.races
    assert race.second is None and race.won is None  # (the plug-in is told: what it spent is given back)


async def test_a_failure_of_one_attempt_is_not_the_requests_while_the_other_runs():
    protocol = "openai_chat"
    events = events_of(TEXT[protocol])
    up = Upstream([lambda r: sse([b"".join(events[:1]), b"".join(events[1:])], pause=1.0),
                   lambda r: httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})])
    plugin = hedger()
    out, job = await run(protocol, up, plugins=(plugin,))
    assert len(up.seen) == 2 and one_of(out.body, TEXT[protocol])
    assert "retry" not in kinds(job)
    [race] = plugin.races
    assert race.won == 0 and race.loser is None  # (the second ended on its own: nothing cancelled)


async def test_the_first_token_timeout_bounds_both_attempts_and_the_retries_go_on():
    protocol = "openai_chat"
    up = Upstream([lambda r: sse(preamble(protocol), then="stall", stall=60),
                   lambda r: sse(preamble(protocol), then="stall", stall=60),
                   lambda r: sse(events_of(TEXT[protocol]))])
    plugin = hedger()
    out, job = await run(protocol, up, plugins=(plugin,), first_token_timeout=2)
    assert len(up.seen) == 3 and up.at[2] - up.at[0] == pytest.approx(2.0)  # not 2.5: the second's is the first's
    assert up.keys()[2] != "k1" and one_of(out.body, TEXT[protocol])
    assert kinds(job) == ["retry"] and "first-token timeout" in job.notes[0]["reason"]
    [race] = plugin.races
    assert race.won is None


async def test_an_error_answer_claims_the_client_as_a_first_token_does():
    protocol = "anthropic_messages"

    async def refused_late(request):
        await asyncio.sleep(1.0)  # stays: a vendor that answers late, on virtual time
        return httpx.Response(400, json={"type": "error", "error": {"type": "invalid_request_error",
                                                                    "message": "prompt is too long"}})

    stalled = Watched(preamble(protocol), then="stall", stall=60)
    up = Upstream([refused_late, lambda r: answering(stalled)])
    out, _ = await run(protocol, up, plugins=(hedger(),))
    assert out.status == 400 and b"prompt is too long" in out.body and b"message_start" not in out.body
    assert stalled.closed_at == pytest.approx(up.at[0] + 1.0)


@pytest.mark.parametrize("protocol", ALL)
async def test_a_non_stream_request_sent_as_a_stream_is_raced_with_one_json_answer(protocol):
    up = Upstream([lambda r: sse(preamble(protocol), then="stall", stall=60),
                   lambda r: sse(events_of(other_answer(protocol)))])
    out, _ = await run(protocol, up, stream=False, plugins=(hedger(),), resume="{mode: continue}")
    answer = json.loads(out.body)
    assert out.status == 200 and b"Rome" in out.body and b"Paris" not in out.body and isinstance(answer, dict)
    assert len(up.seen) == 2


async def test_a_client_that_leaves_ends_both_attempts():
    protocol = "openai_chat"
    first = Watched(preamble(protocol), then="stall", stall=60)
    second = Watched(preamble(protocol), then="stall", stall=60)
    up = Upstream([lambda r: answering(first), lambda r: answering(second)])
    task = asyncio.ensure_future(run(protocol, up, plugins=(hedger(),)))
    while len(up.seen) < 2:
        await asyncio.sleep(0.1)  # stays: waiting, on virtual time, for the second attempt
    await asyncio.sleep(0.1)  # stays: its body under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert first.closed_at is not None and second.closed_at is not None


def test_a_claim_goes_to_the_first_attempt_that_takes_it():
    async def claimed() -> None:
        claim = Claim()
        other = asyncio.ensure_future(asyncio.sleep(10))
        claim.tasks = [asyncio.ensure_future(asyncio.sleep(0)), other]
        claim.taker(0)()
        claim.taker(0)()  # (again, by the winner: nothing)
        with pytest.raises(Outrun):
            claim.taker(1)()
        assert claim.winner == 0 and claim.won.result() == 0
        await asyncio.gather(*claim.tasks, return_exceptions=True)
        assert other.cancelled()

    asyncio.run(claimed())


async def test_a_winner_cut_midway_is_continued_from_what_it_gave_not_from_the_loser():
    """A non-stream answer, folded: the first attempt wins, is cut after two text fragments, and its continuation
    goes on from them; the second attempt (cancelled before any text) kept its own events, which are not the
    answer's."""
    events = events_of(TEXT["anthropic_messages"])  # message_start, block start, ping, 3 text deltas, the ends
    cut = Stream([b"".join(events[:3]), b"".join(events[3:5])], pause=1.0)  # two fragments, then a clean end
    rest = [e for i, e in enumerate(events) if i not in (2, 3, 4)]  # " is Paris." and the ends
    up = Upstream([lambda r: answering(cut), lambda r: sse(events[:3], then="stall", stall=60), lambda r: sse(rest)])
    out, job = await run("anthropic_messages", up, stream=False, plugins=(hedger(),), resume="{mode: continue}")
    answer = json.loads(out.body)
    assert [b["text"] for b in answer["content"]] == ["The capital of France is Paris."]
    assert [n["outcome"] for n in job.notes if n["kind"] == "resumed"] == ["spliced"]
