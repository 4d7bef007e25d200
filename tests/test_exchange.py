"""The engine's reliability behaviour for each protocol, against a scripted upstream (no sockets)."""

import asyncio
import gc
import json
import re

import httpx
import pytest

import protocols
from rewrite.exchange.context import Context
from tests.support import samples
from tests.support.engine_harness import Upstream, events_of, run, sse, stall_before_headers
from tests.support.engine_streams import (
    ALL,
    TEXT,
    TOOL,
    TOOL_FINISH,
    TRUNCATED,
    assert_truncated,
    content_prefix,
    first_token_index,
    kinds,
)
from tests.support.timing import eventually

# The mock variant on virtual time; the lean one on real time: its upstream is a real socket
# (tests/support/virtual_time.py).
pytestmark = [pytest.mark.usefixtures("each_transport"), pytest.mark.virtual_time]


@pytest.mark.parametrize("protocol", ALL)
async def test_clean_stream_passes_through_byte_for_byte(protocol):
    out, job = await run(protocol, Upstream([lambda r: sse(events_of(TEXT[protocol]))]))
    assert out.status == 200
    assert out.body == TEXT[protocol].replace(b": keepalive\n\n", b"") or out.body == TEXT[protocol]
    assert kinds(job) == []


@pytest.mark.parametrize("protocol", ALL)
async def test_first_token_stall_after_headers_is_retried_on_the_next_key(protocol):
    pre = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    up = Upstream([lambda r: sse(pre, then="stall"), lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, first_token_timeout=0.2)
    assert up.keys() == ["k1", "k2"]
    assert out.status == 200 and b"".join(events_of(out.body)) == out.body
    # One clean answer: the stalled attempt's preamble never reached the client.
    assert out.body.count(pre[0]) == 1 if pre else True
    assert out.body.endswith(events_of(TEXT[protocol])[-1])
    assert "retry" in kinds(job) and "first-token timeout" in job.notes[0]["reason"]


@pytest.mark.parametrize("protocol", ALL)
async def test_stall_before_headers_is_retried(protocol):
    up = Upstream([stall_before_headers(10), lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, first_token_timeout=0.2)
    assert up.keys() == ["k1", "k2"] and out.status == 200
    assert out.body.endswith(events_of(TEXT[protocol])[-1])


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
async def test_transient_statuses_are_retried(status):
    err = {"error": {"message": "busy", "type": "rate_limit_error"}}
    up = Upstream([lambda r: httpx.Response(status, json=err, headers={"retry-after": "0"}),
                   lambda r: sse(events_of(samples.CHAT_TEXT))])
    out, job = await run("openai_chat", up)
    assert up.keys() == ["k1", "k2"] and out.status == 200
    assert job.notes[0]["reason"] == f"status {status}"


async def test_retry_after_puts_the_key_aside():
    up = Upstream([lambda r: httpx.Response(429, json={}, headers={"retry-after": "30"}),
                   lambda r: sse(events_of(samples.CHAT_TEXT))])
    out, job = await run("openai_chat", up, keys=("k1", "k2"))
    assert up.keys() == ["k1", "k2"]


async def test_a_single_key_waits_for_retry_after_ms(each_transport):
    up = Upstream([lambda r: httpx.Response(429, json={}, headers={"retry-after-ms": "250"}),
                   lambda r: sse(events_of(samples.CHAT_TEXT))])
    out, job = await run("openai_chat", up, keys=("only",))
    assert up.keys() == ["only", "only"] and out.status == 200
    waited = up.at[1] - up.at[0]
    assert waited == 0.25 if each_transport == "mock" else waited >= 0.25  # (on virtual time: exactly)


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_client_errors_are_returned_at_once(status):
    body = {"error": {"message": "bad request", "type": "invalid_request_error"}}
    up = Upstream([lambda r: httpx.Response(status, json=body)])
    out, job = await run("openai_chat", up)
    assert len(up.seen) == 1
    assert out.status == status and json.loads(out.body) == body


async def test_401_with_a_pool_moves_to_the_next_key():
    up = Upstream([lambda r: httpx.Response(401, json={"error": {"message": "bad key"}}),
                   lambda r: sse(events_of(samples.CHAT_TEXT))])
    out, job = await run("openai_chat", up)
    assert up.keys() == ["k1", "k2"] and out.status == 200


async def test_401_without_a_pool_is_the_clients_problem():
    up = Upstream([lambda r: httpx.Response(401, json={"error": {"message": "bad key"}})])
    out, job = await run("openai_chat", up, keys=())
    assert len(up.seen) == 1 and out.status == 401
    assert up.seen[0].headers["authorization"] == "Bearer client"


async def test_every_attempt_failing_returns_the_last_upstream_error():
    up = Upstream([lambda r: httpx.Response(503, json={"error": {"message": f"down {len(up.seen)}"}},
                                            headers={"retry-after": "0"})])
    out, job = await run("openai_chat", up, first_token_retries=2)
    assert len(up.seen) == 3 and out.status == 503
    assert json.loads(out.body)["error"]["message"] == "down 3"
    assert kinds(job) == ["retry", "retry", "failed"]


@pytest.mark.parametrize("protocol", ALL)
async def test_every_attempt_timing_out_gives_a_protocol_shaped_504(protocol):
    up = Upstream([stall_before_headers(10)])
    out, job = await run(protocol, up, first_token_timeout=0.1, first_token_retries=1)
    assert out.status == 504 and len(up.seen) == 2
    assert json.loads(out.body)  # the protocol's own error shape
    assert "error" in json.loads(out.body)


@pytest.mark.parametrize("how", ["end", "reset", "stall"])
@pytest.mark.parametrize("protocol", ALL)
async def test_cut_or_stalled_stream_ends_truncated_with_the_text_so_far(protocol, how):
    prefix = content_prefix(protocol, TEXT[protocol], extra=2)
    up = Upstream([lambda r: sse(prefix, then=how)])
    out, job = await run(protocol, up, idle_timeout=0.2)
    assert len(up.seen) == 1
    assert out.body.startswith(b"".join(prefix))
    assert_truncated(protocol, out.body[len(b"".join(prefix)):])
    assert kinds(job) == ["repaired"]
    if how == "stall":
        assert job.notes[0]["cause"] == "idle timeout"


@pytest.mark.parametrize("protocol", ALL)
async def test_error_mode_ends_with_the_protocols_error_event(protocol):
    prefix = content_prefix(protocol, TEXT[protocol], extra=2)
    out, job = await run(protocol, Upstream([lambda r: sse(prefix)]), on_truncation="error")
    tail = out.body[len(b"".join(prefix)):]
    assert b"error" in tail and not re.search(TRUNCATED[protocol], tail, re.S)


@pytest.mark.parametrize("protocol", ["openai_chat", "openai_responses", "anthropic_messages"])
async def test_cut_mid_tool_call_never_reports_a_tool_call(protocol):
    events = events_of(TOOL[protocol])
    # Cut right after the first argument fragment.
    cut = next(i for i, e in enumerate(events) if b"arguments" in e and b'""' not in e or b"partial_json" in e)
    up = Upstream([lambda r: sse(events[: cut + 1])])
    out, job = await run(protocol, up)
    tail = out.body[len(b"".join(events[: cut + 1])):]
    assert_truncated(protocol, tail)
    assert not re.search(TOOL_FINISH[protocol], tail)


@pytest.mark.parametrize("protocol", ["openai_chat", "openai_responses", "anthropic_messages"])
async def test_heartbeats_keep_a_waiting_client_alive_and_the_retry_stays_clean(protocol, each_transport):
    pre = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    up = Upstream([lambda r: sse(pre, then="stall"), lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, first_token_timeout=0.35, heartbeat_interval=0.1)
    beat = protocols.get(protocol).heartbeat
    beats = out.record.index(next(d for d in out.record if d != beat))  # (those before the answer)
    assert out.body.startswith(beat) and (beats == 3 if each_transport == "mock" else beats >= 2)  # 0.1, 0.2, 0.3 s
    assert out.body.replace(beat, b"") .endswith(events_of(TEXT[protocol])[-1])
    assert "committed" in kinds(job) and "retry" in kinds(job)


async def test_gemini_never_gets_a_heartbeat():
    pre = events_of(samples.GEMINI_TEXT)[:0]
    up = Upstream([lambda r: sse(pre, then="stall"), lambda r: sse(events_of(samples.GEMINI_TEXT))])
    out, job = await run("gemini", up, first_token_timeout=0.35, heartbeat_interval=0.05)
    assert out.body == samples.GEMINI_TEXT
    assert "committed" not in kinds(job)


async def test_a_gemini_stream_that_ends_without_its_last_blank_line_passes_whole():
    """(google-genai yields that last chunk: it is the answer's end, not a cut.)"""
    body = samples.GEMINI_TEXT[: -len(b"\r\n\r\n")]
    out, job = await run("gemini", Upstream([lambda r: sse([body])]))
    assert out.body == body + b"\n\n"  # (its blank line added, so that nothing can run into it)
    assert kinds(job) == []


@pytest.mark.parametrize("protocol", ["openai_chat", "anthropic_messages"])
async def test_failure_after_heartbeats_is_reported_in_stream(protocol):
    up = Upstream([stall_before_headers(10)])
    out, job = await run(protocol, up, first_token_timeout=0.25, first_token_retries=0, heartbeat_interval=0.1)
    assert out.status == 200
    assert out.body.rstrip().endswith(b"}") and b"error" in out.body.split(protocols.get(protocol).heartbeat)[-1]


@pytest.mark.parametrize("protocol", ALL)
async def test_forced_upstream_stream_survives_a_first_token_stall(protocol):
    pre = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    up = Upstream([lambda r: sse(pre, then="stall"), lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, stream=False, first_token_timeout=0.2,
                         provider_extra=", force_upstream_stream: true")
    assert len(up.seen) == 2 and out.status == 200
    sent = up.seen[0]
    if protocol == "gemini":
        assert sent.url.path.endswith(":streamGenerateContent") and sent.url.params["alt"] == "sse"
    else:
        assert json.loads(sent.content)["stream"] is True
    answer = json.dumps(json.loads(out.body))
    assert "Paris" in answer


@pytest.mark.parametrize("protocol", ["anthropic_messages", "openai_chat"])
async def test_a_forced_stream_goes_upstream_as_the_client_wrote_it_with_only_the_stream_members_changed(protocol):
    raw = b'{"model": "m",  "stream" : false, "max_tokens": 1.0e2, "messages": [{"role": "user", "content": "caf\\u00e9"}]}'
    up = Upstream([lambda r: sse(events_of(TEXT[protocol]))])
    out, job = await run(protocol, up, raw_body=raw, provider_extra=", force_upstream_stream: true")
    sent = up.seen[0].content
    asked = b'{"stream_options":{"include_usage":true},' if protocol == "openai_chat" else b"{"
    assert sent == asked + raw[1:].replace(b"false", b"true")
    assert out.status == 200 and "Paris" in json.dumps(json.loads(out.body))


async def test_upstream_answering_a_non_stream_request_with_sse_is_aggregated():
    up = Upstream([lambda r: sse(events_of(samples.CHAT_TOOL_CALLS))])
    out, job = await run("openai_chat", up, stream=False)
    body = json.loads(out.body)
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["arguments"] for c in choice["message"]["tool_calls"]] == samples.CHAT_TOOL_ARGUMENTS


async def test_client_disconnect_cancels_the_upstream():
    from tests.support.engine_harness import Stream

    stream = Stream(content_prefix("openai_chat", samples.CHAT_TEXT), then="stall")
    up = Upstream([lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)])
    task = asyncio.ensure_future(run("openai_chat", up))
    await eventually(stream.stalling.is_set)  # (the upstream sent what it had, and stalls)
    assert not stream.closed.is_set()
    task.cancel()
    await asyncio.wait_for(stream.closed.wait(), 1.0)


async def test_malformed_json_body_is_forwarded_untouched():
    up = Upstream([lambda r: httpx.Response(400, json={"error": {"message": "We could not parse the JSON"}})])
    out, job = await run("openai_chat", up, raw_body=b'{"model": "m", "messages": [')
    assert up.seen[0].content == b'{"model": "m", "messages": ['
    assert out.status == 400 and b"could not parse" in out.body


async def test_a_chat_stream_that_did_not_ask_for_usage_goes_upstream_as_the_client_wrote_it_plus_the_option():
    raw = b'{"model": "m",  "stream": true, "messages": [{"role": "user", "content": "caf\\u00e9"}]}'
    up = Upstream([lambda r: sse(events_of(TEXT["openai_chat"]))])
    out, job = await run("openai_chat", up, raw_body=raw)
    sent = up.seen[0].content
    assert sent == b'{"stream_options":{"include_usage":true},' + raw[1:]
    assert out.status == 200


@pytest.mark.parametrize("stream", [True, False])
async def test_a_request_is_freed_when_it_ends_not_left_to_the_garbage_collector(stream):
    """Its plug-ins' parts keep its context, which keeps them: once it has ended, nothing of it waits for a
    collection (the collector walked ~300 objects a request for it)."""
    gc.collect()
    gc.disable()
    try:
        # (another test's contexts a class of its own still holds are not this request's)
        before = {id(o) for o in gc.get_objects() if isinstance(o, Context)}
        up = Upstream([lambda r: sse(events_of(samples.ANTHROPIC_TEXT))])
        out, _ = await run("anthropic_messages", up, stream=stream, hedging="{mode: 'off'}")  # (the plug-ins engaged)
        left = [o for o in gc.get_objects() if isinstance(o, Context) and id(o) not in before]
    finally:
        gc.enable()
    assert out.status == 200 and left == []
