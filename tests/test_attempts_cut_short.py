"""Attempts cut short at awkward moments: cancelled as their answer's head comes (the client left, a race lost), and
a continuation's first token, which the hedging delay must not learn from the cut attempt's send."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.engine_harness import Stream, Upstream, events_of, run
from tests.support.engine_streams import TEXT, first_token_index

pytestmark = pytest.mark.virtual_time


class Watched(Stream):
    closed_at: float | None = None

    async def aclose(self) -> None:
        if self.closed_at is None:
            self.closed_at = asyncio.get_running_loop().time()
        await super().aclose()


async def test_a_client_that_leaves_as_the_headers_come_closes_the_upstream_body():
    protocol = "openai_chat"
    preamble = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    body = Watched(preamble, then="stall", stall=60)
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


async def test_a_race_lost_as_the_losers_headers_come_closes_the_losers_upstream_body():
    from rewrite.lifecycle.hooks import Part, Plugin
    from tests.support.engine_harness import Held

    class Hedger(Plugin):
        name = "audit-hedger"

        def engage(self, ctx) -> Part:
            return Racing()

    class Racing(Part):
        def hedging(self, e) -> float | None:
            return 0.5 if e.attempt == 0 else None

        def hedge(self, e) -> bool:
            return True

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
    out, _ = await run(protocol, up, plugins=(Hedger,))
    assert len(up.seen) == 2 and b"Paris" in out.body
    assert loser.closed_at is not None  # the loser's upstream answer closed: its vendor stops generating and billing


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
