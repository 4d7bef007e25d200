"""Bedrock through the engine (no sockets): an InvokeModel stream goes upstream as the client sent it (raw path,
body, headers) and comes back frame for frame; a cut or an exception frame after content ends in frames botocore
reads; an exception frame before content is an early error; a Converse client is served by a Chat target, its
answer an event stream botocore reads."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import bedrock_sdk as sdk
from tests.support import samples
from tests.support.bedrock_samples import EVENT_STREAM, TEXT, bedrock_exception, bedrock_frames
from tests.support.engine_harness import Stream, Upstream, events_of, sse
from tests.support.routed_exchange import exchange

HOST = "bedrock-runtime.us-east-1.amazonaws.com"
INVOKE = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"  # (Claude Code's: ':' raw)
BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
        "anthropic_beta": ["interleaved-thinking-2025-05-14"]}
RAW = json.dumps(BODY, indent=1).encode()  # (spaced as no serialiser of Rotator's would write it)
SIGNED = [("host", HOST), ("content-type", "application/json"), ("accept-encoding", "gzip"), ("x-amz-date", "20261125T120000Z"),
          ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/bedrock/aws4_request, "
                            "SignedHeaders=content-type;host;x-amz-date, Signature=abc")]
CONFIG = """
providers:
  openai: {base_url: 'http://openai.test/v1', keys: [sk-o1]}
routes:
  - {models: ['*meta.llama*'], targets: [openai/gpt-x]}
"""
FRAMES = bedrock_frames(samples.ANTHROPIC_TEXT)


def frames_answer(frames: list[bytes], then: str = "end") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": EVENT_STREAM}, stream=Stream(frames, then=then))


def chunks(body: bytes) -> list[dict]:
    """What boto3's invoke_model_with_response_stream yields of a stream: each chunk's Anthropic event."""
    return [json.loads(e["chunk"]["bytes"]) for e in sdk.invoke_stream(body)]


async def test_an_invoke_stream_goes_upstream_as_it_came_and_back_frame_for_frame():
    upstream = Upstream([lambda r: frames_answer(FRAMES)])
    out, job = await exchange(HOST, INVOKE, RAW, upstream, headers=SIGNED, config=CONFIG)
    (sent,) = upstream.seen
    assert sent.url.raw_path == INVOKE.encode() and sent.url.host == HOST
    assert sent.content == RAW  # the body byte for byte
    assert sent.headers["authorization"] == SIGNED[-1][1] and sent.headers["x-amz-date"] == SIGNED[3][1]
    assert out.status == 200 and dict(out.headers)["content-type"] == EVENT_STREAM
    assert out.body == TEXT


@pytest.mark.parametrize("cut", [4, 6])  # (after the first delta)
async def test_a_cut_invoke_stream_ends_honestly_in_frames_botocore_reads(cut):
    upstream = Upstream([lambda r: frames_answer(FRAMES[:cut], then="reset")])
    out, _ = await exchange(HOST, INVOKE, RAW, upstream, headers=SIGNED, config=CONFIG)
    assert out.body.startswith(b"".join(FRAMES[:cut]))
    said = chunks(out.body)
    assert said[-2]["type"] == "message_delta" and said[-2]["delta"]["stop_reason"] == "max_tokens"
    assert said[-1] == {"type": "message_stop"}


async def test_an_exception_frame_after_content_ends_the_answer_honestly_and_is_not_passed_on():
    exception = bedrock_exception("modelStreamErrorException", "The model stopped")
    upstream = Upstream([lambda r: frames_answer([*FRAMES[:5], exception])])
    out, job = await exchange(HOST, INVOKE, RAW, upstream, headers=SIGNED, config=CONFIG)
    assert exception not in out.body and len(upstream.seen) == 1
    assert chunks(out.body)[-1] == {"type": "message_stop"}
    assert any(n["kind"] == "repaired" for n in job.notes)


async def test_an_exception_frame_before_content_is_asked_again_then_passed_on_as_it_came():
    exception = bedrock_exception("throttlingException", "Too many tokens, please wait before trying again.")
    upstream = Upstream([lambda r: frames_answer([FRAMES[0], exception])])
    out, _ = await exchange(HOST, INVOKE, RAW, upstream, headers=SIGNED, config=CONFIG)
    assert len(upstream.seen) == 2 and upstream.seen[0].content == upstream.seen[1].content == RAW
    assert out.status == 200 and out.body == FRAMES[0] + exception  # as it came


async def test_a_converse_client_routed_to_a_chat_target_gets_an_event_stream_botocore_reads():
    path = "/model/meta.llama3-70b-instruct-v1%3A0/converse-stream"
    upstream = Upstream([lambda r: sse(events_of(samples.CHAT_TEXT))])
    body = {"messages": [{"role": "user", "content": [{"text": "capital of France?"}]}],
            "inferenceConfig": {"maxTokens": 50}}
    out, _ = await exchange(HOST, path, body, upstream, headers=SIGNED, config=CONFIG)
    (sent,) = upstream.seen
    assert str(sent.url) == "http://openai.test/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-o1" and "x-amz-date" not in sent.headers
    assert json.loads(sent.content)["messages"][0]["content"] == "capital of France?"
    assert dict(out.headers)["content-type"] == EVENT_STREAM
    events = sdk.converse_stream(out.body)
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == samples.CHAT_TEXT_ANSWER
    assert events[-2]["messageStop"]["stopReason"] == "end_turn" and "metadata" in events[-1]
