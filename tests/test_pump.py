"""The SSE pump alone (rewrite/exchange/pump.py): an upstream response in, what the client's writer received and how
the upstream ended out; the client's side (ClientStream) outlives one upstream response."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from protocols import registry
from protocols.sse import SSEParser
from rewrite.accounting.usage import Meter
from rewrite.config import parse
from rewrite.exchange.clock import Clock
from rewrite.exchange.job import Job
from rewrite.exchange.pump import ClientStream, Pump
from rewrite.routing.router import Router
from tests.support.engine_harness import FakeResponder, Stream, events_of
from tests.support.samples import CHAT_TEXT, CHAT_TEXT_ANSWER, CHAT_TOOL_CALLS

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

CHAT = registry.get("openai_chat")
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "stream_options": {"include_usage": True}}  # (asked by the client: its usage chunk passes as it is)
EVENTS = [e for e in events_of(CHAT_TEXT) if not e.startswith(b":")]  # (the keepalive comment aside)


def upstream(chunks: list[bytes], then: str = "end") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream(chunks, then=then))


def parts(idle: float = 5.0, holds=None) -> tuple[Pump, ClientStream, FakeResponder, Job]:
    cfg = parse("providers: {openai: {base_url: 'http://vendor.test', keys: []}}")
    route = Router(cfg).route("api.openai.com", "POST", "/v1/chat/completions")
    assert route is not None
    job = Job("job-0001", route, route.provider)
    out = FakeResponder()
    clock = Clock(out, job, CHAT.heartbeat, 30.0)
    pump = Pump(clock, Meter(CHAT, BODY, True), 1 << 20, idle)
    return pump, ClientStream(out, job, clock, CHAT.repairer(BODY), holds), out, job


def deadline(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


def text_of(body: bytes) -> str:
    said = []
    for event in SSEParser().feed(body):
        if event.data and event.data != "[DONE]":
            said += [c["delta"].get("content") or "" for c in json.loads(event.data)["choices"]]
    return "".join(said)


async def test_a_whole_stream_goes_to_the_writer_as_it_came():
    pump, stream, out, job = parts()
    ended = await pump.run(upstream(EVENTS), stream, None, deadline(5), None, None)
    assert ended == "upstream ended"
    assert (out.status, out.body) == (200, b"".join(EVENTS))
    assert stream.repairer.complete and job.delivered and job.ttft is not None


async def test_one_client_stream_goes_on_over_a_second_upstream_response():
    pump, stream, out, job = parts()
    cut_at = 3  # the role chunk and two deltas, then the upstream ends without its completion signal
    first = await pump.run(upstream(EVENTS[:cut_at]), stream, None, deadline(5), None, None)
    assert first == "upstream ended" and not stream.repairer.complete and not job.delivered
    ttft = job.ttft
    stream.clock.t0 -= 10  # (as if 10 s had passed since the request began: a second first token would be told)
    second = await pump.run(upstream(EVENTS[cut_at:]), stream, None, deadline(5), None, None)
    assert second == "upstream ended"
    assert out.body == b"".join(EVENTS)  # one status, nothing held back or repeated at the seam
    assert text_of(out.body) == CHAT_TEXT_ANSWER and job.delivered
    assert job.ttft == ttft  # the first token was the first response's


async def test_a_stall_after_the_first_token_is_an_idle_timeout_and_ends_honestly():
    pump, stream, out, job = parts(idle=20)
    loop = asyncio.get_running_loop()
    began = loop.time()
    ended = await pump.run(upstream(EVENTS[:3], then="stall"), stream, None, began + 30, None, None)
    assert ended == "idle timeout" and loop.time() - began == 20  # (not at the first-token deadline, 30 s)
    assert out.body == b"".join(EVENTS[:3])
    stream.end_honestly(ended, "length")
    chunks = [json.loads(e.data) for e in SSEParser().feed(out.body) if e.data and e.data != "[DONE]"]
    assert [c["finish_reason"] for chunk in chunks for c in chunk["choices"] if c["finish_reason"]] == ["length"]
    assert out.body.endswith(b"data: [DONE]\n\n")
    assert out.finished and job.delivered and job.notes[-1]["kind"] == "repaired"


async def test_a_reset_before_the_first_token_writes_nothing():
    pump, stream, out, _ = parts()
    ended = await pump.run(upstream([], then="reset"), stream, None, deadline(5), None, None)
    assert ended == "upstream reset: ReadError"
    assert out.status is None and out.body == b"" and not stream.repairer.started


async def test_a_stream_without_tool_calls_makes_no_holder_and_a_tool_call_is_held_until_it_is_whole():
    holds = registry.registered("openai_chat").resumer.holder  # (resume on: tool calls reach the client whole)
    pump, stream, out, _ = parts(holds=holds)
    assert await pump.run(upstream(EVENTS), stream, None, deadline(5), None, None) == "upstream ended"
    assert out.body == b"".join(EVENTS) and stream.holder is None  # (nothing to hold: none made)
    calls = [e for e in events_of(CHAT_TOOL_CALLS) if not e.startswith(b":")]
    pump, stream, out, _ = parts(holds=holds)
    cut_at = 5  # the first call whole (the second opened it), the second's name and arguments: cut inside it
    assert await pump.run(upstream(calls[:cut_at]), stream, None, deadline(5), None, None) == "upstream ended"
    assert isinstance(stream.holder, holds) and stream.holder.holding
    assert out.body == b"".join(calls[:3])  # the first call whole, nothing of the second
