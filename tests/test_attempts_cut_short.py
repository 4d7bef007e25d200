"""Attempts cut short at awkward moments: cancelled as their answer's head comes (the client left, a race lost); a
continuation's first token, which the hedging delay must not learn from the cut attempt's send; and a race's second
attempt, given only what was left of the first's first-token timeout, which is no stall of its key."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from rewrite.lifecycle.hooks import Part, Plugin
from tests.support.engine_harness import Stream, Upstream, events_of, run, sse, stall_before_headers
from tests.support.engine_streams import TEXT, Watched, first_token_index, preamble

virtual_time = pytest.mark.virtual_time



class Hedging(Plugin):
    """Races the first attempt of every request after half a second (on virtual time; `delay` seconds if given)."""

    name = "audit-hedger"
    delay = 0.5

    def engage(self, ctx) -> Part:
        return Hedges(self.delay)


class Hedges(Part):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def hedging(self, e) -> float | None:
        return self.delay if e.attempt == 0 else None

    def hedge(self, e) -> bool:
        return True



def stalling(how: str, protocol: str):
    """An upstream answer that stalls before the first token: in its SSE stream, before its headers, or in the
    body of an error answer."""
    if how == "first token":
        return lambda r: sse(preamble(protocol), then="stall", stall=60)
    if how == "headers":
        return stall_before_headers(60)
    return lambda r: httpx.Response(500, headers={"content-type": "application/json"},
                                    stream=Stream([b'{"error": {"message": '], then="stall", stall=60))


@virtual_time
async def test_a_client_that_leaves_as_the_headers_come_closes_the_upstream_body():
    protocol = "openai_chat"
    body = Watched(preamble(protocol), then="stall", stall=60)
    box: list[asyncio.Task] = []

    async def answer(request):
        await asyncio.sleep(1.0)  # stays: the vendor's headers after 1 s
        asyncio.get_running_loop().call_soon(box[0].cancel)  # the client leaves as they come
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    task = asyncio.ensure_future(run(protocol, Upstream([answer])))
    box.append(task)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.closed_at is not None  # the upstream answer is closed: the vendor stops generating


@virtual_time
async def test_a_race_lost_as_the_losers_headers_come_closes_the_losers_upstream_body():
    from tests.support.engine_harness import Held

    protocol = "openai_chat"
    events = events_of(TEXT[protocol])
    at = first_token_index(protocol, TEXT[protocol])
    preamble = events[:at]
    loser = Watched(preamble, then="stall", stall=60)
    winner = Held(events, at=at)  # its first token once the first attempt's headers came

    async def late_headers(request):
        await asyncio.sleep(1.0)  # stays: the first attempt's headers after 1 s
        winner.release.set()  # the second's first token comes in the same moment
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=loser)

    up = Upstream([late_headers, lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                                          stream=winner)])
    out, _ = await run(protocol, up, plugins=(Hedging,))
    assert len(up.seen) == 2 and b"Paris" in out.body
    assert loser.closed_at is not None  # the loser's upstream answer closed: its vendor stops generating and billing


@virtual_time
async def test_a_continuations_first_token_is_not_timed_from_the_first_attempts_send(monkeypatch):
    """`hedging.delay: auto` learns the provider and model's times to first token; a cut stream's continuation is
    no new attempt's time to first token counted from the cut answer's send (it would count the whole answer)."""
    from rewrite.policy.hedging import Latencies

    timed: list[float] = []
    monkeypatch.setattr(Latencies, "add", lambda self, seconds: timed.append(seconds))
    events = events_of(TEXT["anthropic_messages"])  # message_start, block start, ping, 3 text deltas, the ends
    cut = Stream([b"".join(events[:4]), events[4]], pause=10.0)  # first token at once, cut cleanly 10 s later
    rest = [e for i, e in enumerate(events) if i not in (2, 3, 4)]
    up = Upstream([lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=cut),
                   lambda r: Stream(rest) and httpx.Response(200, headers={"content-type": "text/event-stream"},
                                                             stream=Stream(rest))])
    out, job = await run("anthropic_messages", up, resume="{mode: continue}", hedging="{mode: on, delay: auto}")
    assert len(up.seen) == 2 and b"Paris" in out.body
    assert [n["outcome"] for n in job.notes if n["kind"] == "resumed"] == ["spliced"]
    assert timed == [0.0]  # the first attempt's; not 10 s for the continuation's


@virtual_time
@pytest.mark.parametrize("how", ["first token", "headers", "error body"])
async def test_a_race_on_one_key_that_stalls_rests_the_key_as_one_stall(how):
    """A hedge on the first attempt's own key, both without a first token by the first-token timeout: the key
    stalled once (the second was given only what was left of the first's timeout); it rests 5 s, not 10."""
    protocol = "openai_chat"
    up = Upstream([stalling(how, protocol), stalling(how, protocol), lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, plugins=(Hedging,), first_token_timeout=2)
    assert up.keys() == ["k1", "k1", "k2"] and b"Paris" in out.body
    k1 = job.route.provider.pool.states[0]
    assert k1.stalls == 1 and k1.slow_until == up.at[0] + 2 + 5  # (was 2: it rested 10 s, and its next stall 20 s)


@virtual_time
async def test_a_race_on_two_keys_that_stalls_rests_the_first_attempts_key_alone():
    """A hedge on another key (the first's may take no other request), both without a first token by the first-token
    timeout: the first's key stalled (it had its whole timeout); the second's had only what was left of it, and is
    not rested for that."""
    protocol = "openai_chat"
    up = Upstream([stalling("first token", protocol), stalling("first token", protocol),
                   lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, keys=("{key: k1, max_concurrent: 1}", "k2", "k3"), plugins=(Hedging,),
                         first_token_timeout=2)
    assert up.keys()[:2] == ["k1", "k2"] and b"Paris" in out.body
    k1, k2, _ = job.route.provider.pool.states
    assert (k1.stalls, k2.stalls) == (1, 0)  # (were 1 and 1: k2 rested 5 s for 1.5 s without a first token)
    assert k1.slow_until == up.at[0] + 2 + 5 and k2.slow_until == 0


async def test_a_races_first_attempt_that_stalls_on_real_time_is_a_stall_of_its_key():
    """On real time the first attempt is sent a moment after its race began: it still has its whole first-token
    timeout, and its stall counts (the second's does not)."""

    class Soon(Hedging):
        delay = 0.05

    protocol = "openai_chat"
    up = Upstream([stalling("first token", protocol), stalling("first token", protocol),
                   lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, plugins=(Soon,), first_token_timeout=0.3)
    assert up.keys() == ["k1", "k1", "k2"] and b"Paris" in out.body
    assert job.route.provider.pool.states[0].stalls == 1  # (not 0: a race's deadline did not cut its first short)
