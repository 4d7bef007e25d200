"""A continuation is asked with the client's output cap less what the cut answer already spent (its stream's own
count where it reported one, else estimated: protocols/resume/asking.py, `spent`): the joined answer stops where the
uncut one would have. An answer that spent the cap is not continued: it ends with the protocol's token-cap stop. A
request with no cap asks for none."""

from __future__ import annotations

import json
import re

import pytest

from protocols.capabilities import Capabilities
from protocols.registry import registered
from protocols.resume import Delivered, OutputCap, capped, continuation_body
from tests.support.engine_harness import Upstream, events_of, run, sse
from tests.support.engine_streams import ALL, TEXT, assert_truncated

pytestmark = pytest.mark.virtual_time

HI = [{"role": "user", "content": "hi"}]
# Each protocol's request capped at `cap`, and where its cap is read back (the continuation asks in the same shape).
CAPPED = {
    "openai_chat": (lambda cap: {"model": "m", "max_tokens": cap, "messages": HI}, ("max_tokens",)),
    "openai_responses": (lambda cap: {"model": "m", "max_output_tokens": cap, "input": "hi"}, ("max_output_tokens",)),
    "anthropic_messages": (lambda cap: {"model": "m", "max_tokens": cap, "messages": HI}, ("max_tokens",)),
    "gemini": (lambda cap: {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                            "generationConfig": {"maxOutputTokens": cap}}, ("generationConfig", "maxOutputTokens")),
}
# The sample answer's first two content events ("The capital", " of France"; Gemini's: " of France is").
FIRST_TWO = {"openai_chat": (1, 2), "openai_responses": (4, 5), "anthropic_messages": (3, 4), "gemini": (0, 1)}
# What the cut answer spent: its 21 characters about 5 tokens (more than its 2 deltas); Gemini's own count, 5.
SPENT = 5
CAP_STOP = {  # the token-cap stop of a non-stream answer
    "openai_chat": rb'"finish_reason": ?"length"',
    "openai_responses": rb'"status": ?"incomplete".*"reason": ?"max_output_tokens"',
    "anthropic_messages": rb'"stop_reason": ?"max_tokens"',
    "gemini": rb'"finishReason": ?"MAX_TOKENS"',
}


def cut_then_rest(protocol: str) -> Upstream:
    """The sample answer cut after its first two content events, then a continuation with the rest of it."""
    whole = events_of(TEXT[protocol])
    two = FIRST_TWO[protocol]
    rest = [e for i, e in enumerate(whole) if i not in two]
    return Upstream([lambda r: sse(whole[:two[-1] + 1]), lambda r: sse(rest)])


def body_of(protocol: str, cap: int, stream: bool) -> dict:
    body = CAPPED[protocol][0](cap)
    return {**body, "stream": True} if stream and protocol != "gemini" else body


def asked_cap(protocol: str, request) -> object:
    value = json.loads(request.content)
    for key in CAPPED[protocol][1]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("protocol", ALL)
async def test_a_continuation_asks_for_no_more_than_the_output_cap_leaves(protocol, stream):
    cap = 100
    up = cut_then_rest(protocol)
    out, job = await run(protocol, up, stream=stream, body=body_of(protocol, cap, stream), resume="{mode: continue}")
    assert len(up.seen) == 2
    assert asked_cap(protocol, up.seen[0]) == cap
    assert 0 < asked_cap(protocol, up.seen[1]) <= cap - SPENT
    assert b"Paris." in out.body
    assert [n["outcome"] for n in job.notes if n["kind"] == "resumed"] == ["spliced"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
async def test_a_chat_reasoning_models_cap_is_lowered_too(stream):
    up = cut_then_rest("openai_chat")
    body = {"model": "o4-mini", "max_completion_tokens": 100, "messages": HI, **({"stream": True} if stream else {})}
    await run("openai_chat", up, stream=stream, body=body, resume="{mode: continue}")
    asked = json.loads(up.seen[1].content)
    assert 0 < asked["max_completion_tokens"] <= 100 - SPENT and "max_tokens" not in asked


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("protocol", ALL)
async def test_an_answer_that_spent_the_cap_is_not_continued_and_ends_with_the_token_cap_stop(protocol, stream):
    """Even where a cut ends with an error (`on_truncation: error`): the answer did reach its cap."""
    up = cut_then_rest(protocol)
    out, job = await run(protocol, up, stream=stream, body=body_of(protocol, SPENT, stream),
                         resume="{mode: continue}", on_truncation="error")
    assert len(up.seen) == 1
    if stream:
        assert_truncated(protocol, out.body)
    else:
        assert re.search(CAP_STOP[protocol], out.body, re.S), out.body[-400:]
    assert [n["reason"] for n in job.notes if n["kind"] == "resumed"] == ["the output cap was reached"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
async def test_a_responses_continuation_is_not_asked_for_less_than_the_api_takes(stream):
    """The Responses API refuses a cap under 16: with 15 left the answer ends at its cap (asking for 16 would run
    past it); with 16 left it is continued, asking for 16."""
    up = cut_then_rest("openai_responses")
    await run("openai_responses", up, stream=stream, body=body_of("openai_responses", SPENT + 15, stream),
              resume="{mode: continue}")
    assert len(up.seen) == 1
    up = cut_then_rest("openai_responses")
    await run("openai_responses", up, stream=stream, body=body_of("openai_responses", SPENT + 16, stream),
              resume="{mode: continue}")
    assert len(up.seen) == 2 and asked_cap("openai_responses", up.seen[1]) == 16


@pytest.mark.parametrize("protocol", ALL)
def test_a_request_without_a_cap_asks_for_none(protocol):
    resumer = registered(protocol).resumer
    body = {"model": "m", "messages": HI, "input": "hi", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    delivered = resumer.observer(body).delivered()
    spent = Delivered("The capital", True, output_tokens=10**6)
    assert resumer.output_cap.of(body) is None and capped(resumer, body, spent) is spent
    assert continuation_body(resumer, body, delivered, "again", Capabilities()) == body


def test_every_spelling_of_a_cap_is_lowered_and_the_clients_body_kept():
    cap = registered("gemini").resumer.output_cap
    body = {"generation_config": {"max_output_tokens": 50, "temperature": 0}}
    assert cap.of(body) == 50
    assert cap.asking(body, 7) == {"generation_config": {"max_output_tokens": 7, "temperature": 0}}
    assert body["generation_config"]["max_output_tokens"] == 50
    both = OutputCap((("max_completion_tokens",), ("max_tokens",)))
    assert both.of({"max_completion_tokens": 30, "max_tokens": 20}) == 20
    assert both.asking({"max_completion_tokens": 30, "max_tokens": 20}, 4) == {"max_completion_tokens": 4,
                                                                                 "max_tokens": 4}


def test_an_anthropic_thinking_budget_stays_below_the_lowered_cap():
    """Anthropic refuses a thinking budget not below max_tokens (or under 1024): it is lowered, or thinking left off."""
    resumer = registered("anthropic_messages").resumer
    body = {"model": "m", "max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 4000}, "messages": HI}

    def asked(spent: int) -> dict:
        return continuation_body(resumer, body, Delivered("The capital", True, output_tokens=spent), "instruction",
                                 Capabilities())

    assert asked(2000)["max_tokens"] == 3000 and asked(2000)["thinking"]["budget_tokens"] == 2999
    assert asked(4000)["max_tokens"] == 1000 and "thinking" not in asked(4000)
    assert asked(500)["thinking"] == body["thinking"]


def counted_chunk(content: str | None, tokens: int, finish: str | None = None) -> bytes:
    """A Chat chunk from a server that counts on every chunk (vLLM's `continuous_usage_stats`): its usage is the
    output so far."""
    delta = {"content": content} if content is not None else {}
    return sse_chunk({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                      "usage": {"prompt_tokens": 14, "completion_tokens": tokens, "total_tokens": 14 + tokens}})


def sse_chunk(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def test_a_stream_that_counts_as_it_goes_is_continued_with_exactly_what_its_cap_leaves():
    """The vendor said 4 tokens were spent at the cut ("The capital of France": more than its 2 chunks, fewer than
    its 21 characters' estimate): the continuation asks for the 3 the cap of 7 leaves, so the joined answer says all
    the uncut one would have, and its usage is the vendor's, 4 + 3."""
    first = [counted_chunk("The capital", 2), counted_chunk(" of France", 4)]  # cut there
    rest = [counted_chunk(" is Paris.", 3), counted_chunk(None, 3, "stop"), b"data: [DONE]\n\n"]
    up = Upstream([lambda r: sse(first), lambda r: sse(rest)])
    body = {"model": "m", "max_tokens": 7, "messages": HI, "stream": True}
    out, job = await run("openai_chat", up, body=body, resume="{mode: continue}")
    assert asked_cap("openai_chat", up.seen[1]) == 7 - 4
    chunks = [json.loads(line[6:]) for line in out.body.split(b"\n") if line.startswith(b"data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
        "The capital of France is Paris."
    assert chunks[-1]["usage"]["completion_tokens"] == 4 + 3
    assert [n["outcome"] for n in job.notes if n["kind"] == "resumed"] == ["spliced"]
