"""Forced upstream streaming, without sockets: a stream folded by each protocol's Aggregator is the answer the
vendor gives to the same request without streaming (the fake vendor's non-stream bodies are the reference)."""

from __future__ import annotations

import json

import pytest

import protocols
from protocols.sse import SSEParser
from rewrite.policy.verdict import refuses_stream
from tests.support.fake_vendor import (
    Ctx,
    Fault,
    anthropic_body,
    anthropic_events,
    chat_body,
    chat_events,
    gemini_body,
    gemini_events,
    responses_body,
    responses_events,
)
from tests.support.vendor_errors import read

MODEL = {"openai_chat": "gpt-4o-mini", "openai_responses": "gpt-4o-mini", "anthropic_messages": "claude-haiku-4-5",
         "gemini": "gemini-2.5-flash"}
PATH = {
    "openai_chat": "/v1/chat/completions",
    "openai_responses": "/v1/responses",
    "anthropic_messages": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}
REQUEST = {
    "openai_chat": {"model": MODEL["openai_chat"], "messages": [{"role": "user", "content": "hi"}]},
    "openai_responses": {"model": MODEL["openai_responses"], "input": "hi"},
    "anthropic_messages": {"model": MODEL["anthropic_messages"], "max_tokens": 256,
                           "messages": [{"role": "user", "content": "hi"}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}
NON_STREAM_BODY = {"openai_chat": chat_body, "openai_responses": responses_body, "anthropic_messages": anthropic_body,
                   "gemini": gemini_body}
FAULTS = {"text": Fault.ok(), "tool": Fault.tool_call(), "text and tool": Fault.tool_call(text="Let me look.")}


def stream_events(protocol: str, ctx: Ctx) -> list:
    if protocol == "openai_chat":
        return chat_events(ctx)
    if protocol == "openai_responses":
        return responses_events(ctx)
    if protocol == "anthropic_messages":
        return anthropic_events(ctx)
    return gemini_events(ctx)


def fold(protocol: str, fault: Fault, cut_after: int | None = None) -> tuple[dict, dict, protocols.Aggregator]:
    """(the folded answer to a forced stream, the vendor's non-stream answer, the aggregator)."""
    proto = protocols.get(protocol)
    client_body = REQUEST[protocol]
    path, query, upstream_body = proto.as_stream(PATH[protocol], "", client_body)
    streamed = stream_events(protocol, Ctx(7, proto.model(path, upstream_body) or MODEL[protocol], 1_700_000_000,
                                           upstream_body, fault))
    whole = NON_STREAM_BODY[protocol](Ctx(7, MODEL[protocol], 1_700_000_000, client_body, fault))
    aggregator = proto.aggregator(client_body)
    wire = b"".join(e.data for e in streamed[:cut_after])
    for event in SSEParser().feed(wire):
        aggregator.feed(event)
    return json.loads(json.dumps(aggregator.result())), whole, aggregator


@pytest.mark.parametrize("answer", FAULTS)
@pytest.mark.parametrize("protocol", list(PATH))
def test_a_folded_stream_is_the_non_stream_answer(protocol, answer):
    folded, whole, aggregator = fold(protocol, FAULTS[answer])
    assert not aggregator.truncated
    assert folded == whole


def test_chat_asks_for_usage_in_the_stream_and_keeps_the_clients_stream_options():
    chat = protocols.get("openai_chat")
    _, _, body = chat.as_stream(PATH["openai_chat"], "", {**REQUEST["openai_chat"],
                                                          "stream_options": {"include_obfuscation": False}})
    assert body["stream"] is True
    assert body["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_gemini_asks_for_an_sse_stream_of_the_same_model():
    gemini = protocols.get("gemini")
    path, query, body = gemini.as_stream(PATH["gemini"], "key=x&alt=json", REQUEST["gemini"])
    assert path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert query == "key=x&alt=sse" and body == REQUEST["gemini"]
    assert gemini.model(path, body) == gemini.model(PATH["gemini"], body) == "gemini-2.5-flash"


TRUNCATED = {
    "openai_chat": lambda b: b["choices"][0]["finish_reason"] == "length",
    "openai_responses": lambda b: b["status"] == "incomplete"
    and b["incomplete_details"] == {"reason": "max_output_tokens"},
    "anthropic_messages": lambda b: b["stop_reason"] == "max_tokens",
    "gemini": lambda b: b["candidates"][0]["finishReason"] == "MAX_TOKENS",
}


TOOL_CALLS = {
    "openai_chat": lambda b: b["choices"][0]["message"].get("tool_calls") or [],
    "openai_responses": lambda b: [item for item in b["output"] if item["type"] == "function_call"],
    "anthropic_messages": lambda b: [block for block in b["content"] if block["type"] == "tool_use"],
    "gemini": lambda b: [part for part in b["candidates"][0]["content"]["parts"] if "functionCall" in part],
}


@pytest.mark.parametrize("protocol", list(PATH))
def test_a_stream_cut_in_a_tool_call_folds_to_a_truncated_answer_without_it(protocol):
    fault = Fault.tool_call(text="Let me look.")
    events = stream_events(protocol, Ctx(7, MODEL[protocol], 0, REQUEST[protocol], fault))
    # After the three text fragments and two of the four argument fragments (Gemini sends a call whole: before it).
    deltas = [i for i, e in enumerate(events) if e.delta]
    folded, _, aggregator = fold(protocol, fault, cut_after=deltas[3 if protocol == "gemini" else 5])
    assert aggregator.truncated
    assert TRUNCATED[protocol](folded), folded
    assert TOOL_CALLS[protocol](folded) == []  # no agent runs half-written arguments


@pytest.mark.parametrize("protocol", ["openai_chat", "openai_responses", "anthropic_messages"])
def test_a_stream_cut_after_a_tool_calls_arguments_keeps_it(protocol):
    fault = Fault.tool_call(text="Let me look.")
    events = stream_events(protocol, Ctx(7, MODEL[protocol], 0, REQUEST[protocol], fault))
    last_fragment = [i for i, e in enumerate(events) if e.delta][-1]
    folded, _, aggregator = fold(protocol, fault, cut_after=last_fragment + 1)
    assert aggregator.truncated
    assert TRUNCATED[protocol](folded), folded
    assert len(TOOL_CALLS[protocol](folded)) == 1  # its arguments are whole: it stays, in a truncated answer


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (400, {"error": {"message": "Unsupported value: 'stream' does not support true with this model.",
                         "type": "invalid_request_error", "param": "stream", "code": "unsupported_value"}}, True),
        (400, {"error": {"message": "Your organization must be verified to stream this model."}}, True),
        (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "Streaming is not supported"}},
         True),
        (400, {"error": {"message": "Unrecognized request argument supplied: stream_options"}}, True),
        (400, {"error": {"code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT"}}, False),
        (400, {"error": {"message": "max_tokens is too large"}}, False),
        (429, {"error": {"message": "Too many concurrent streams"}}, False),
        (500, {"error": {"message": "stream failed"}}, False),
    ],
)
def test_which_answers_refuse_a_stream(status, body, refused):
    assert refuses_stream(read(status, body=json.dumps(body).encode())) is refused


def test_a_refusal_that_is_not_json_is_read_as_text():
    assert refuses_stream(read(400, body=b"streaming is not supported for this model"))
    assert not refuses_stream(read(400, body=b"<html>bad request</html>"))
