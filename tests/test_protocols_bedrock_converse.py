"""Bedrock Converse as a protocol: its calls recognised with the model in the path, its streams followed and ended
honestly in frames boto3 reads, its exceptions told apart before and after content, folded into the answer boto3's
`converse` returns, its usage and errors read, its key taken as a bearer token."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, EventStreamError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocols
import protocols.translate as translate
from protocols import ENDING_ERROR, ENDING_LENGTH
from protocols.bedrock_converse import REGISTRATION
from protocols.eventstream import EventStreamParser, FrameDecoder, event_frame, exception_frame
from protocols.families.bedrock.errors import exception_for, exception_name, exception_status
from protocols.translate.base import MALFORMED, StreamTranslator
from protocols.unified import Request
from protocols.urls import UnsafeURLValue
from protocols.vendor_errors import ErrorKind
from tests.support import bedrock_sdk as sdk
from tests.support import converse_samples as C

CONVERSE = REGISTRATION.protocol
NOW = 1_700_000_000.0
ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"


def events(data: bytes) -> list:
    return EventStreamParser().feed(data)


def run(data: bytes, cut: int | None = None):
    """A repairer fed the stream's first `cut` events: (it, what the client received)."""
    repairer = CONVERSE.repairer({})
    return repairer, b"".join(repairer.feed(e) for e in events(data)[:cut])


@pytest.mark.parametrize(("path", "model", "stream"), [
    ("/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/converse-stream", C.MODEL, True),  # Claude Code's way
    ("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", C.MODEL, False),  # boto3's
    ("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fa1b2c3d4e5f6/converse",
     ARN, False),
    ("/model/meta.llama3-70b-instruct-v1%3A0/converse-stream", "meta.llama3-70b-instruct-v1:0", True),
])
def test_converse_calls_are_recognised_with_the_model_in_the_path(path, model, stream):
    assert protocols.detect("POST", path) is CONVERSE
    assert CONVERSE.model(path, {}) == model
    assert CONVERSE.wants_stream(path, "", {}) is stream
    assert CONVERSE.streams("application/vnd.amazon.eventstream") and not CONVERSE.streams("text/event-stream")
    assert isinstance(CONVERSE.parser(), EventStreamParser)


@pytest.mark.parametrize("path", ["/model/m/invoke", "/model/m/invoke-with-response-stream", "/model/m/count-tokens",
                                  "/model/a/b/converse", "/inference-profiles", "/v1/messages"])
def test_other_calls_are_not_converse(path):
    assert not CONVERSE.matches("POST", path) and not CONVERSE.matches("GET", "/model/m/converse")


def test_a_call_asks_for_a_stream_and_another_model_in_the_path():
    path = "/model/anthropic.claude-haiku-4-5-20251001-v1%3A0/converse"
    assert CONVERSE.as_stream(path, "", {"messages": []}) == (path + "-stream", "", {"messages": []})
    moved = CONVERSE.with_model(path + "-stream", ARN)
    assert moved == "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2F" \
                    "a1b2c3d4e5f6/converse-stream"
    assert CONVERSE.model(moved, {}) == ARN
    for bad in ("", "../x", "a/../b", "m\r\nx", "a\\b"):
        with pytest.raises(UnsafeURLValue):
            CONVERSE.with_model(path, bad)


def test_a_whole_stream_passes_byte_for_byte_and_completes_at_its_metadata():
    repairer, out = run(C.TOOL_STREAM)
    assert out == C.TOOL_STREAM and repairer.started and repairer.complete and not repairer.failed
    assert repairer.end() == b""
    stopped, _ = run(C.TOOL_STREAM, -1)  # everything but the metadata
    assert stopped.started and not stopped.complete


def test_the_first_token_is_the_first_content_not_the_message_start():
    repairer, _ = run(C.TEXT_STREAM, 1)
    assert not repairer.started
    repairer.feed(events(C.TEXT_STREAM)[1])
    assert repairer.started


@pytest.mark.parametrize("name", list(C.STREAMS))
def test_a_stream_cut_after_any_event_ends_in_frames_boto3_reads_as_max_tokens(name):
    source = C.STREAMS[name]
    whole = sdk.stream_answer(sdk.converse_stream(source))
    for cut in range(1, len(events(source))):
        repairer, out = run(source, cut)
        ending = repairer.end()
        assert repairer.complete and not repairer.failed and repairer.end() == b""
        got = sdk.converse_stream(out + ending, chunk=7)
        assert FrameDecoder().feed(out + ending)  # the frames Rotator wrote carry CRCs that match
        names = [next(iter(e)) for e in got]
        assert names[0] == "messageStart" and names[-1] == "metadata", cut
        # Every block opened is closed before the message stops (SDKs finalise a block at its stop).
        opened = {e["contentBlockDelta"]["contentBlockIndex"] for e in got if "contentBlockDelta" in e}
        assert opened <= {e["contentBlockStop"]["contentBlockIndex"] for e in got if "contentBlockStop" in e}, cut
        answer = sdk.stream_answer(got)
        said_stop = any("messageStop" in e for e in sdk.converse_stream(out)) if out else False
        assert answer["stopReason"] == (whole["stopReason"] if said_stop else "max_tokens"), cut
        text = "".join(b.get("text", "") for b in answer["output"]["message"]["content"])
        assert "".join(b.get("text", "") for b in whole["output"]["message"]["content"]).startswith(text)


def test_the_ending_counts_the_output_it_sent():
    repairer, out = run(C.TEXT_STREAM, 3)
    (*_, metadata) = sdk.converse_stream(out + repairer.end())
    assert metadata["metadata"]["usage"] == {"inputTokens": 0, "outputTokens": 2, "totalTokens": 2}


def test_an_exception_before_content_stands_for_the_error_answer_it_names():
    repairer, out = run(C.THROTTLED_STREAM)
    assert not repairer.started and repairer.complete and repairer.failed
    status, body = repairer.early_error
    assert status == 429
    error = REGISTRATION.family.errors.read(status, [], body, NOW)
    assert (error.kind, error.message) == (ErrorKind.RATE_LIMITED, C.THROTTLED)
    with pytest.raises(ClientError) as raised:  # what boto3 raises for it, as an HTTP answer
        sdk.converse(body, status=status)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"


def test_an_exception_after_content_is_held_back_and_the_stream_ends_honestly():
    broken = C.TEXT_STREAM.split(C.frames(C.stop(0)))[0] + exception_frame("modelStreamErrorException", "boom")
    repairer, out = run(broken)
    assert repairer.started and not repairer.complete and not repairer.failed
    assert repairer.interrupted == "modelStreamErrorException" and b"boom" not in out
    answer = sdk.stream_answer(sdk.converse_stream(out + repairer.end()))
    assert answer["stopReason"] == "max_tokens"
    assert answer["output"]["message"]["content"] == [{"text": "".join(C.TEXT_PIECES)}]


def test_an_error_rotator_writes_is_an_exception_frame_boto3_raises():
    repairer, out = run(C.TEXT_STREAM, 2)
    error = repairer.error_event("upstream stream truncated", 500)
    assert repairer.complete and repairer.failed
    with pytest.raises(EventStreamError) as raised:
        sdk.converse_stream(out + error)
    assert raised.value.response["Error"] == {"Code": "internalServerException", "Message": "upstream stream truncated"}


@pytest.mark.parametrize("name", list(C.STREAMS))
def test_a_stream_folds_into_the_answer_boto3_converse_returns(name):
    aggregator = CONVERSE.aggregator({})
    for e in events(C.STREAMS[name]):
        aggregator.feed(e)
    assert not aggregator.truncated and aggregator.error is None
    folded = aggregator.result()
    returned = sdk.converse(json.dumps(folded).encode())
    streamed = sdk.stream_answer(sdk.converse_stream(C.STREAMS[name]))
    assert sdk.answer_view(returned) == sdk.answer_view(streamed)
    assert returned["output"]["message"]["content"] == streamed["output"]["message"]["content"]


def test_a_cut_stream_folds_into_a_max_tokens_answer_without_a_half_written_call():
    cut = events(C.TOOL_STREAM)[:10]  # inside the first tool call's input
    aggregator = CONVERSE.aggregator({})
    for e in cut:
        aggregator.feed(e)
    assert aggregator.truncated
    answer = sdk.converse(json.dumps(aggregator.result()).encode())
    assert answer["stopReason"] == "max_tokens"
    assert [next(iter(b)) for b in answer["output"]["message"]["content"]] == ["reasoningContent", "text"]
    failed = CONVERSE.aggregator({})
    for e in events(C.THROTTLED_STREAM):
        failed.feed(e)
    assert failed.error == {"type": "throttlingException", "message": C.THROTTLED} and not failed.truncated


def test_usage_is_read_from_the_metadata_event_and_from_an_answer():
    sniffer = REGISTRATION.usage(lambda e: e.raw)
    for e in events(C.TOOL_STREAM):
        sniffer.tap(e)
    usage = sniffer.usage()
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1200, 1000, 90)
    assert REGISTRATION.usage.from_answer(C.ANSWER) == usage


@pytest.mark.parametrize(("status", "headers", "body", "kind"), [
    (429, [("x-amzn-errortype", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/")],
     {"message": C.THROTTLED}, ErrorKind.RATE_LIMITED),
    (429, [], {"__type": "ModelNotReadyException", "message": "Model is not ready"}, ErrorKind.OVERLOADED),
    (503, [], {"message": "Bedrock is unable to process your request."}, ErrorKind.OVERLOADED),
    (400, [("x-amzn-errortype", "ServiceQuotaExceededException")], {"message": "quota"}, ErrorKind.QUOTA),
    (403, [("x-amzn-errortype", "AccessDeniedException")], {"Message": "You don't have access to the model"},
     ErrorKind.BAD_KEY),
    (403, [("x-amzn-errortype", "InvalidSignatureException")], {"message": "signature"}, ErrorKind.BAD_KEY),
    (424, [], {"__type": "com.amazon.bedrock#ModelErrorException", "message": "x"}, ErrorKind.TRANSIENT),
    (400, [("x-amzn-errortype", "ValidationException")],
     {"message": "Invocation of model ID anthropic.claude-x with on-demand throughput isn't supported."},
     ErrorKind.REQUEST),
])
def test_bedrock_errors_are_read_by_their_exception_type(status, headers, body, kind):
    error = REGISTRATION.family.errors.read(status, headers, json.dumps(body).encode(), NOW)
    assert error.kind is kind
    assert error.message == (body.get("message") or body.get("Message"))
    assert (error.quota is not None) is (kind is ErrorKind.QUOTA)


def test_exception_names_and_statuses_as_frames_and_bodies_spell_them():
    assert exception_name("throttlingException") == exception_name("ThrottlingException") == "ThrottlingException"
    assert exception_status("modelStreamErrorException") == 424 and exception_status("unknownThing") == 500
    assert [exception_for(s, in_stream=True) for s in (429, 503, 529, 400, 403, 500, 502, 424)] == [
        "throttlingException", "serviceUnavailableException", "serviceUnavailableException", "validationException",
        "validationException", "internalServerException", "internalServerException", "modelStreamErrorException"]
    with pytest.raises(ClientError) as raised:
        sdk.converse(CONVERSE.error_body(403, "Rotator: no key"), status=403)
    assert raised.value.response["Error"] == {"Code": "AccessDeniedException", "Message": "Rotator: no key"}


def test_a_pooled_bedrock_api_key_replaces_the_clients_signature():
    headers = [("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA.../us-east-1/bedrock/aws4_request, ..."),
               ("X-Amz-Date", "20261125T120000Z"), ("X-Amz-Security-Token", "session"),
               ("x-amz-content-sha256", "abc"), ("Content-Type", "application/json")]
    out, _ = REGISTRATION.family.credential.apply(headers, "", "ABSKpooled")
    assert out == [("Content-Type", "application/json"), ("authorization", "Bearer ABSKpooled")]
    assert (REGISTRATION.name, REGISTRATION.family.name) == ("bedrock_converse", "bedrock")


WRONG = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3),
                  st.lists(st.integers(), max_size=2), st.just({}), st.just({"x": [1]}), st.just([{}]))


def mutated(event, data):
    """`event` (a frame) with one field anywhere in its JSON replaced by a value of another type."""
    obj = json.loads(event.data)
    places = [()]
    stack = [((), obj)]
    while stack:
        path, value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in items:
            places.append((*path, k))
            stack.append(((*path, k), v))
    path = data.draw(st.sampled_from(places[1:] or places))
    if not path:
        return event
    holder = obj
    for k in path[:-1]:
        holder = holder[k]
    holder[path[-1]] = data.draw(WRONG)
    return events(event_frame(event.event, obj))[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_wrongly_typed_field_breaks_the_ending_the_folded_answer_or_a_translation(data):
    """A repairer, an aggregator or a translator may refuse such an event (the engine then treats the stream as
    cut), but the ending written after it never fails and a folded answer is JSON."""
    stream = events(data.draw(st.sampled_from(list(C.STREAMS.values()))))
    at = data.draw(st.integers(0, len(stream) - 1))
    stream[at] = mutated(stream[at], data)
    repairer, aggregator = CONVERSE.repairer({}), CONVERSE.aggregator({})
    client = translate.get(data.draw(st.sampled_from(["openai_chat", "gemini"])))
    translator = StreamTranslator(REGISTRATION.translator.decoder(), client.encoder(Request(model="m")))
    for consumer in (repairer.feed, aggregator.feed, translator.feed):
        for e in stream[:at + 1]:
            try:
                consumer(e)
            except MALFORMED:
                break
    ending = data.draw(st.sampled_from([ENDING_LENGTH, ENDING_ERROR]))
    assert FrameDecoder().feed(repairer.end(ending) or C.frames(C.START))
    assert isinstance(translator.end(ending), bytes)
    try:
        folded = aggregator.result()
    except MALFORMED:
        return
    assert isinstance(json.dumps(folded), str)
