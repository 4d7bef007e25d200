"""ConverseStream translated both ways: a Bedrock event stream read by each client protocol's official SDK, and each
protocol's streams read by botocore as a ConverseStream; whole, at every byte split, cut at every event, with the
errors each side raises."""

from __future__ import annotations

import anthropic
import openai
import pytest
from botocore.exceptions import EventStreamError
from google.genai import errors as genai_errors
from openai.lib.streaming.chat._completions import ChatCompletionStreamState

import protocols.translate as translate
from protocols import ENDING_ERROR
from protocols.eventstream import EventStreamParser, FrameDecoder
from protocols.unified import Request
from tests.support import bedrock_sdk as sdk
from tests.support import converse_samples as C
from tests.support import fake_vendor
from tests.support.sdk_clients import anthropic_final, chat_chunks, gemini_chunks, responses_events
from tests.support.streams import parse
from tests.support.translate_sdk import view
from tests.support.translation_streams import STREAMS

CLIENTS = ("openai_chat", "openai_responses", "anthropic_messages", "gemini")
REQUEST = Request(model="client-model", include_usage=True)
RAISES = {"openai_chat": openai.APIError, "openai_responses": openai.APIError,
          "anthropic_messages": anthropic.APIStatusError, "gemini": genai_errors.APIError}


def client_view(client: str, body: bytes) -> dict:
    """What the client's SDK makes of a stream, in common terms (tests/support/translate_sdk.py's `view`)."""
    if client == C.NAME:
        return sdk.answer_view(sdk.stream_answer(sdk.converse_stream(body, chunk=13)))
    if client == "openai_chat":
        state = ChatCompletionStreamState()
        for chunk in chat_chunks(body):
            state.handle_chunk(chunk)
        return view(client, state.current_completion_snapshot)
    if client == "openai_responses":
        return view(client, next(e.response for e in reversed(responses_events(body)) if hasattr(e, "response")))
    if client == "anthropic_messages":
        return view(client, anthropic_final(body)[1])
    return view(client, gemini_chunks(body))


def upstream_events(source: str, body: bytes) -> list:
    return EventStreamParser().feed(body) if source == C.NAME else parse(body)


def translated(source: str, body: bytes, client: str) -> bytes:
    tr = translate.stream_translator(source, client, REQUEST)
    out = b"".join(tr.feed(e) for e in upstream_events(source, body))
    assert tr.complete and not tr.failed
    return out


def same(seen: dict, expected: dict, ids: bool = True) -> None:
    assert (seen["text"], seen["reasoning"], seen["finish"], seen["usage"]) == (
        expected["text"], expected["reasoning"], expected["finish"], expected["usage"])
    assert [(n, a) for _, n, a in seen["calls"]] == [(n, a) for _, n, a in expected["calls"]]
    if ids:
        assert [c[0] for c in seen["calls"]] == [c[0] for c in expected["calls"]]


@pytest.mark.parametrize("name", list(C.STREAMS))
@pytest.mark.parametrize("client", CLIENTS)
def test_a_converse_stream_reads_the_same_in_each_clients_protocol(name, client):
    expected = client_view(C.NAME, C.STREAMS[name])
    same(client_view(client, translated(C.NAME, C.STREAMS[name], client)), expected, ids=client != "gemini")


@pytest.mark.parametrize("name", list(STREAMS))
def test_each_protocols_stream_reads_the_same_to_a_converse_client(name):
    source, body = STREAMS[name]
    out = translated(source, body, C.NAME)
    assert b"".join(f.raw for f in FrameDecoder().feed(out)) == out  # whole frames, their CRCs right
    same(client_view(C.NAME, out), client_view(source, body), ids=source != "gemini")


@pytest.mark.parametrize("client", CLIENTS)
def test_every_byte_split_of_a_converse_stream_gives_the_same_translation(client):
    whole = translated(C.NAME, C.TOOL_STREAM, client)
    parser, tr = EventStreamParser(), translate.stream_translator(C.NAME, client, REQUEST)
    out = [tr.feed(e) for i in range(len(C.TOOL_STREAM)) for e in parser.feed(C.TOOL_STREAM[i:i + 1])]
    assert b"".join(out) == whole and sum(1 for piece in out if piece) >= 5  # as the events come, not at the end


@pytest.mark.parametrize("client", CLIENTS)
def test_a_converse_stream_cut_after_any_event_ends_as_truncated_for_the_client(client):
    events = EventStreamParser().feed(C.TOOL_STREAM)
    full = client_view(C.NAME, C.TOOL_STREAM)
    for k in range(len(events)):
        tr = translate.stream_translator(C.NAME, client, REQUEST)
        out = b"".join(tr.feed(e) for e in events[:k])
        if not tr.started:
            continue
        out += tr.end()
        seen = client_view(client, out)
        assert full["text"].startswith(seen["text"]), k
        said_stop = any(e.event == "messageStop" for e in events[:k])
        assert seen["finish"] == (full["finish"] if said_stop else "length"), k


@pytest.mark.parametrize("name", ["anthropic_tool_use", "chat_tool_calls", "gemini_parallel_calls",
                                  "responses_tool_call"])
def test_another_protocols_stream_cut_after_any_event_ends_in_frames_boto3_reads(name):
    source, body = STREAMS[name]
    for k in range(len(parse(body))):
        tr = translate.stream_translator(source, C.NAME, REQUEST)
        out = b"".join(tr.feed(e) for e in parse(body)[:k])
        if not tr.started:
            continue
        out += tr.end()
        got = sdk.converse_stream(out, chunk=5)
        assert [next(iter(e)) for e in got][-2:] == ["messageStop", "metadata"], k
        assert tr.end() == b""


def test_a_cut_converse_stream_can_end_with_the_exception_boto3_raises():
    for source, body in (("anthropic_messages", STREAMS["anthropic_tool_use"][1]), (C.NAME, C.TOOL_STREAM)):
        tr = translate.stream_translator(source, C.NAME, REQUEST)
        events = upstream_events(source, body)
        out = b"".join(tr.feed(e) for e in events[:4]) + tr.end(ENDING_ERROR)
        assert tr.complete and tr.failed
        with pytest.raises(EventStreamError, match="truncated"):
            sdk.converse_stream(out)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_bedrock_exception_frame_reaches_the_client_as_its_error(client):
    tr = translate.stream_translator(C.NAME, client, REQUEST)
    events = EventStreamParser().feed(C.TEXT_STREAM)[:2] + EventStreamParser().feed(C.THROTTLED_STREAM)[1:]
    out = b"".join(tr.feed(e) for e in events)
    assert tr.started and tr.complete and tr.failed
    with pytest.raises(RAISES[client], match="Too many tokens") as raised:
        client_view(client, out)
    assert b"context_length" not in out and b"prompt is too long" not in out
    if client == "anthropic_messages":
        assert raised.value.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("source", CLIENTS)
def test_another_vendors_stream_error_reaches_a_converse_client_as_an_exception(source):
    error = {"openai_chat": fake_vendor.stream_error_event("chat", 0),
             "openai_responses": fake_vendor.stream_error_event("responses", 3),
             "anthropic_messages": fake_vendor.stream_error_event("anthropic", 0),
             "gemini": fake_vendor.stream_error_event("gemini", 0)}[source]
    body = next(b for s, b in STREAMS.values() if s == source)
    tr = translate.stream_translator(source, C.NAME, REQUEST)
    out = b"".join(tr.feed(e) for e in parse(body)[:2] + parse(error))
    assert tr.failed
    with pytest.raises(EventStreamError) as raised:
        sdk.converse_stream(out)
    assert raised.value.response["Error"]["Code"] in ("serviceUnavailableException", "internalServerException")
