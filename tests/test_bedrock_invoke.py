"""Bedrock's InvokeModelWithResponseStream with Anthropic events (protocols/bedrock/invoke.py): its chunk frames
opened into the Anthropic events they carry (as the anthropic SDK's own Bedrock decoder opens them), followed by
Anthropic's own repairer, and an honest ending put back into frames that botocore and `AnthropicBedrock` read."""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest
from anthropic.lib.bedrock._stream_decoder import AWSEventStreamDecoder
from botocore.exceptions import EventStreamError

import protocols
from protocols.bedrock.invoke import BEDROCK_VERSION, invoke_body, invoke_model, invoke_streams, messages_body
from protocols.bedrock.invoke_stream import InvokeParser, InvokeRepairer, chunk_frame, framed
from protocols.eventstream import FrameError
from tests.support import bedrock_sdk as sdk
from tests.support.bedrock_samples import METRICS, TEXT, TOOL_USE, aws_frame, bedrock_exception

MESSAGES = protocols.get("anthropic_messages")


def opened_events(data: bytes) -> list:
    return InvokeParser().feed(data)


def anthropic_bedrock_final(body: bytes):
    """`AnthropicBedrock(...).messages.stream()`, the anthropic SDK's Bedrock client reading `body`: (its events, the
    accumulated message)."""
    def serve(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path.endswith("/invoke-with-response-stream")
        return httpx2.Response(200, content=body, headers={"content-type": "application/vnd.amazon.eventstream"})

    client = anthropic.AnthropicBedrock(api_key="ABSKfake", aws_region="us-east-1", max_retries=0,
                                        http_client=httpx2.Client(transport=httpx2.MockTransport(serve)))
    with client.messages.stream(model=sdk.MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
        events = list(s)
        return events, s.get_final_message()


def test_each_chunk_opens_into_the_anthropic_event_it_carries_as_the_anthropic_sdk_opens_it():
    events = opened_events(TOOL_USE)
    assert b"".join(e.raw for e in events) == TOOL_USE  # each event's bytes are its frame's
    decoder = AWSEventStreamDecoder()
    for event, theirs in zip(events, decoder.iter_bytes(iter([TOOL_USE])), strict=True):
        assert (event.event, json.loads(event.data)) == (theirs.event, json.loads(theirs.data))
    assert [e.event for e in events][:2] == ["message_start", "content_block_start"]
    assert json.loads(events[-1].data)["amazon-bedrock-invocationMetrics"] == METRICS


def test_an_exception_frame_before_content_stands_for_the_error_answer_it_names_and_passes_on_as_it_came():
    frame = bedrock_exception("throttlingException", "Too many tokens, please wait before trying again.")
    events = opened_events(TEXT)[:2] + opened_events(frame)  # message_start, an empty text block: no token yet
    repairer = InvokeRepairer(MESSAGES.repairer({"model": sdk.MODEL}))
    out = b"".join(repairer.feed(e) for e in events)
    assert out.endswith(frame) and not repairer.started and repairer.complete and repairer.failed
    status, body = repairer.early_error
    assert status == 429 and json.loads(body) == {"__type": "ThrottlingException",
                                                  "message": "Too many tokens, please wait before trying again."}
    with pytest.raises(EventStreamError, match="Too many tokens"):  # as the client gets it, if nobody serves it
        sdk.invoke_stream(out)


def test_an_exception_frame_after_content_is_held_back_and_the_stream_ends_honestly():
    frame = bedrock_exception("modelStreamErrorException", "The model stopped")
    repairer = InvokeRepairer(MESSAGES.repairer({"model": sdk.MODEL}))
    out = b"".join(repairer.feed(e) for e in opened_events(TEXT)[:5] + opened_events(frame))
    assert frame not in out and repairer.started and not repairer.complete and repairer.early_error is None
    assert repairer.interrupted == "modelStreamErrorException"
    client = framed(out + repairer.end())
    assert json.loads(sdk.invoke_stream(client)[-1]["chunk"]["bytes"]) == {"type": "message_stop"}
    assert anthropic_bedrock_final(client)[1].stop_reason == "max_tokens"


def test_a_chunk_that_is_not_base64_is_refused():
    bad = aws_frame([(":event-type", "chunk"), (":message-type", "event")], b'{"bytes": "not base64!"}')
    with pytest.raises(FrameError, match="base64"):
        opened_events(bad)


def test_anthropics_repairer_passes_a_whole_stream_frame_for_frame():
    repairer = MESSAGES.repairer({"model": sdk.MODEL})
    out = b"".join(repairer.feed(e) for e in opened_events(TOOL_USE))
    assert repairer.complete and framed(out) == out == TOOL_USE


@pytest.mark.parametrize("stream", [TEXT, TOOL_USE], ids=["text", "tool_use"])
def test_a_stream_cut_after_any_event_ends_honestly_in_frames_both_sdks_read(stream):
    events = opened_events(stream)
    whole = anthropic_bedrock_final(stream)[1]
    for cut in range(1, len(events)):
        repairer = MESSAGES.repairer({"model": sdk.MODEL})
        out = b"".join(repairer.feed(e) for e in events[:cut])
        ending = repairer.end()
        assert ending.startswith(b"event: ")  # Anthropic's own ending, in SSE
        client = framed(out + ending)
        assert client.startswith(out)  # the frames passed on stay as they came
        parsed = [json.loads(e["chunk"]["bytes"]) for e in sdk.invoke_stream(client, chunk=9)]
        assert parsed[-1] == {"type": "message_stop"}, cut
        message = anthropic_bedrock_final(client)[1]
        said_stop = any(e.event == "message_delta" for e in events[:cut])
        assert message.stop_reason == (whole.stop_reason if said_stop else "max_tokens"), cut
        text = "".join(b.text for b in message.content if b.type == "text")
        assert "".join(b.text for b in whole.content if b.type == "text").startswith(text)


def test_the_ending_is_message_delta_max_tokens_then_message_stop_as_claude_code_continues_on():
    events = opened_events(TEXT)[:5]  # message_start, a block, a ping, two deltas
    repairer = MESSAGES.repairer({"model": sdk.MODEL})
    out = b"".join(repairer.feed(e) for e in events)
    added = [json.loads(e["chunk"]["bytes"]) for e in sdk.invoke_stream(framed(out + repairer.end()))][len(events):]
    assert [e["type"] for e in added] == ["content_block_stop", "message_delta", "message_stop"]
    assert added[1]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}


def test_an_error_rotator_writes_becomes_an_exception_frame_the_sdks_raise():
    repairer = MESSAGES.repairer({"model": sdk.MODEL})
    out = b"".join(repairer.feed(e) for e in opened_events(TEXT)[:4])
    client = framed(out + repairer.error_event("upstream overloaded", 529))
    with pytest.raises(EventStreamError) as raised:
        sdk.invoke_stream(client)
    assert raised.value.response["Error"] == {"Code": "serviceUnavailableException", "Message": "upstream overloaded"}
    with pytest.raises(anthropic.APIStatusError, match="upstream overloaded"):
        anthropic_bedrock_final(client)


def test_the_aggregator_and_usage_reader_follow_the_opened_events():
    aggregator = MESSAGES.aggregator({"model": sdk.MODEL})
    sniffer = protocols.registered("anthropic_messages").usage(lambda e: e.raw)
    for e in opened_events(TOOL_USE):
        aggregator.feed(e)
        sniffer.tap(e)
    answer = aggregator.result()
    assert answer["stop_reason"] == "tool_use" and answer["content"][2]["input"] == {"city": "Paris"}
    assert (sniffer.usage().input_tokens, sniffer.usage().output_tokens) == (472, 89)


def test_a_chunk_rotator_writes_is_one_botocore_reads():
    event = {"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
             "usage": {"output_tokens": 3}}
    (parsed,) = sdk.invoke_stream(chunk_frame(event))
    assert json.loads(parsed["chunk"]["bytes"]) == event


def test_framing_refuses_a_frame_cut_short_among_the_events():
    with pytest.raises(FrameError):
        framed(TEXT[:40])


CLAUDE_CODE_BODY = {"anthropic_version": BEDROCK_VERSION, "max_tokens": 32000,
                    "messages": [{"role": "user", "content": "hi"}], "anthropic_beta": ["interleaved-thinking-2025-05-14"],
                    "thinking": {"type": "enabled", "budget_tokens": 31999}}


def test_an_invoke_body_is_anthropics_without_model_and_stream_and_back():
    path = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
    model = invoke_model(path)
    assert model == sdk.MODEL and invoke_streams(path) and not invoke_streams(path.replace("-with-response-stream", ""))
    assert invoke_model("/model/x/converse") is None
    messages = messages_body(CLAUDE_CODE_BODY, model, stream=True)
    assert messages["model"] == sdk.MODEL and messages["stream"] is True
    assert invoke_body(messages) == CLAUDE_CODE_BODY  # its version kept as the client sent it
    sdk_body = {**CLAUDE_CODE_BODY, "anthropic_version": "2026-10-21"}  # the anthropic SDK's own
    assert invoke_body(messages_body(sdk_body, model, False))["anthropic_version"] == "2026-10-21"
    written = invoke_body({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [], "stream": True})
    assert written == {"max_tokens": 5, "messages": [], "anthropic_version": BEDROCK_VERSION}
