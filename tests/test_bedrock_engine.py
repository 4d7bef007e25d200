"""Bedrock through the engine (no sockets): an InvokeModel stream goes upstream as the client sent it (raw path,
body, headers) and comes back frame for frame; a cut or an exception frame after content ends in frames botocore
reads; an exception frame before content is an early error; a Converse client is served by a Chat target, its
answer an event stream botocore reads."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from protocols.transcript import read_answer, read_request
from tests.support import bedrock_sdk as sdk
from tests.support import converse_samples as C
from tests.support import samples
from tests.support.bedrock_samples import EVENT_STREAM, TEXT, bedrock_exception, bedrock_frames
from tests.support.engine_harness import Stream, Upstream, events_of, sse
from tests.support.routed_exchange import exchange

HOST = "bedrock-runtime.us-east-1.amazonaws.com"
INVOKE = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"  # (Claude Code's: ':' raw)
BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
        "anthropic_beta": ["interleaved-thinking-2025-05-14"]}
RAW = json.dumps(BODY, indent=1).encode()  # (spaced as no serialiser of Rotator's would write it)
AUTHORIZATION = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/bedrock/aws4_request, "
                 "SignedHeaders=content-type;host;x-amz-date, Signature=abc")


def signed() -> list[tuple[str, str]]:
    """A client's signed request's headers (signed now: the engine sends no signature AWS would find too old)."""
    return [("host", HOST), ("content-type", "application/json"), ("accept-encoding", "gzip"),
            ("x-amz-date", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())), ("authorization", AUTHORIZATION)]
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
    out, job = await exchange(HOST, INVOKE, RAW, upstream, headers=signed(), config=CONFIG)
    (sent,) = upstream.seen
    assert sent.url.raw_path == INVOKE.encode() and sent.url.host == HOST
    assert sent.content == RAW  # the body byte for byte
    assert sent.headers["authorization"] == AUTHORIZATION
    assert out.status == 200 and dict(out.headers)["content-type"] == EVENT_STREAM
    assert out.body == TEXT


@pytest.mark.parametrize("cut", [4, 6])  # (after the first delta)
async def test_a_cut_invoke_stream_ends_honestly_in_frames_botocore_reads(cut):
    upstream = Upstream([lambda r: frames_answer(FRAMES[:cut], then="reset")])
    out, _ = await exchange(HOST, INVOKE, RAW, upstream, headers=signed(), config=CONFIG)
    assert out.body.startswith(b"".join(FRAMES[:cut]))
    said = chunks(out.body)
    assert said[-2]["type"] == "message_delta" and said[-2]["delta"]["stop_reason"] == "max_tokens"
    assert said[-1] == {"type": "message_stop"}


async def test_an_exception_frame_after_content_ends_the_answer_honestly_and_is_not_passed_on():
    exception = bedrock_exception("modelStreamErrorException", "The model stopped")
    upstream = Upstream([lambda r: frames_answer([*FRAMES[:5], exception])])
    out, job = await exchange(HOST, INVOKE, RAW, upstream, headers=signed(), config=CONFIG)
    assert exception not in out.body and len(upstream.seen) == 1
    assert chunks(out.body)[-1] == {"type": "message_stop"}
    assert any(n["kind"] == "repaired" for n in job.notes)


async def test_an_exception_frame_before_content_is_asked_again_then_passed_on_as_it_came():
    exception = bedrock_exception("throttlingException", "Too many tokens, please wait before trying again.")
    upstream = Upstream([lambda r: frames_answer([FRAMES[0], exception])])
    out, _ = await exchange(HOST, INVOKE, RAW, upstream, headers=signed(), config=CONFIG)
    assert len(upstream.seen) == 2 and upstream.seen[0].content == upstream.seen[1].content == RAW
    assert out.status == 200 and out.body == FRAMES[0] + exception  # as it came


async def test_a_converse_client_routed_to_a_chat_target_gets_an_event_stream_botocore_reads():
    path = "/model/meta.llama3-70b-instruct-v1%3A0/converse-stream"
    upstream = Upstream([lambda r: sse(events_of(samples.CHAT_TEXT))])
    body = {"messages": [{"role": "user", "content": [{"text": "capital of France?"}]}],
            "inferenceConfig": {"maxTokens": 50}}
    out, _ = await exchange(HOST, path, body, upstream, headers=signed(), config=CONFIG)
    (sent,) = upstream.seen
    assert str(sent.url) == "http://openai.test/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-o1" and "x-amz-date" not in sent.headers
    assert json.loads(sent.content)["messages"][0]["content"] == "capital of France?"
    assert dict(out.headers)["content-type"] == EVENT_STREAM
    events = sdk.converse_stream(out.body)
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == samples.CHAT_TEXT_ANSWER
    assert events[-2]["messageStop"]["stopReason"] == "end_turn" and "metadata" in events[-1]


def test_the_view_reads_an_invoke_call_and_its_event_stream_and_a_converse_stream():
    request = read_request("anthropic_messages", INVOKE, RAW)
    assert request.request is not None and request.request.model == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert request.request.stream
    answer = read_answer("anthropic_messages", 200, EVENT_STREAM, TEXT)
    assert answer.stream and answer.complete and answer.answer is not None
    assert answer.answer.text() == "The capital of France is Paris."
    cut = read_answer("anthropic_messages", 200, EVENT_STREAM, TEXT[:-7])  # (its last frame cut short)
    assert cut.stream and not cut.complete
    converse = read_answer("bedrock_converse", 200, EVENT_STREAM, C.TEXT_STREAM)
    assert converse.complete and converse.answer is not None and converse.answer.text() == "".join(C.TEXT_PIECES)


async def test_an_invoke_call_routed_to_anthropic_takes_its_body_betas_in_the_beta_header():
    # (Claude Code sends `anthropic_beta` in the InvokeModel body and one beta in the header; Anthropic's API takes
    # them all in the header, and refuses them in the body)
    config = "providers: {anthropic: {base_url: 'http://anthropic.test', keys: [sk-a]}}\n" \
             "routes: [{from: bedrock, targets: [bedrock, anthropic/claude-sonnet-4-5]}]"

    def step(request: httpx.Request) -> httpx.Response:
        if request.url.host == HOST:
            return httpx.Response(429, headers={"x-amzn-errortype": "ThrottlingException"},
                                  json={"message": "Too many tokens, please wait before trying again."})
        return sse([samples.ANTHROPIC_TEXT])
    upstream = Upstream([step])
    headers = [*signed(), ("anthropic-version", "2023-06-01"), ("anthropic-beta", "claude-code-20250219")]

    out, _ = await exchange(HOST, INVOKE, RAW, upstream, headers=headers, config=config)

    first, sent = upstream.seen
    assert first.headers["anthropic-beta"] == "claude-code-20250219" and first.content == RAW  # (signed: as it came)
    assert sent.url.host == "anthropic.test"
    assert sent.headers["anthropic-beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14"
    assert "anthropic_beta" not in json.loads(sent.content)
    assert out.status == 200
