import json

import openai
import pydantic
import pytest
from openai.types.responses import (
    Response,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseStreamEvent,
    ResponseUsage,
)

import protocols
from protocols import ENDING_ERROR
from protocols.sse import COMMENT_HEARTBEAT as HEARTBEAT
from tests.support import samples
from tests.support.sdk_clients import responses_events
from tests.support.sdk_types import exactly
from tests.support.streams import aggregate, cut, parse, payloads, play

RESPONSES = protocols.get("openai_responses")
REQUEST = {"model": "gpt-4.1", "input": "hi", "stream": True}
SAMPLES = {"text": samples.RESPONSES_TEXT, "tool_call": samples.RESPONSES_TOOL_CALL}
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
PRELUDE_EVENTS = 2  # response.created, response.in_progress


def streamed_text(events: list[dict]) -> dict[int, str]:
    """Per output index, the text/arguments/summary the upstream streamed within these events."""
    texts: dict[int, str] = {}
    for event in events:
        if event["type"].endswith(".delta"):
            texts[event["output_index"]] = texts.get(event["output_index"], "") + event["delta"]
    return texts


def item_text(item) -> str:
    if item.type == "message":
        return "".join(part.text for part in item.content)
    if item.type == "function_call":
        return item.arguments
    return "".join(part.text for part in item.summary)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/responses", True),
        ("POST", "/openai/v1/responses", True),
        ("GET", "/v1/responses", False),
        ("POST", "/v1/responses/resp_123", False),
        ("GET", "/v1/responses/resp_123", False),
        ("POST", "/v1/responses/resp_123/cancel", False),
        ("GET", "/v1/responses/resp_123/input_items", False),
        ("POST", "/v1/responses/input_tokens", False),
        ("POST", "/v1/chat/completions", False),
    ],
)
def test_matches(method, path, expected):
    assert RESPONSES.matches(method, path) is expected
    assert (protocols.detect(method, path) is RESPONSES) is expected


def test_wants_stream_and_as_stream():
    assert RESPONSES.wants_stream("/v1/responses", "", {"stream": True})
    assert not RESPONSES.wants_stream("/v1/responses", "", {"model": "m"})
    assert RESPONSES.as_stream("/v1/responses", "", {"model": "m"}) == ("/v1/responses", "", {"model": "m", "stream": True})


@pytest.mark.parametrize("name", SAMPLES)
def test_complete_stream_passes_through_unchanged(name):
    repairer = RESPONSES.repairer(REQUEST)
    assert play(repairer, parse(SAMPLES[name])) == SAMPLES[name]
    assert repairer.complete and not repairer.failed
    assert repairer.end() == b"" and repairer.end(ENDING_ERROR) == b""


@pytest.mark.parametrize("name", SAMPLES)
def test_started_flips_at_the_first_token_not_at_empty_structure(name):
    def carries_token(payload: dict) -> bool:
        kind = payload["type"]
        if kind == "response.output_item.added":
            return payload["item"]["type"] not in ("message", "reasoning")
        return kind.endswith(".delta")

    events = parse(SAMPLES[name])
    first = next(i for i, e in enumerate(events) if carries_token(json.loads(e.data)))
    assert first >= PRELUDE_EVENTS
    repairer = RESPONSES.repairer(REQUEST)
    started = []
    for event in events:
        repairer.feed(event)
        started.append(repairer.started)
    assert started == [False] * first + [True] * (len(started) - first)


@pytest.mark.parametrize("name", SAMPLES)
def test_every_cut_ends_with_response_incomplete_for_the_sdk(name):
    upstream = payloads(SAMPLES[name])
    for k in range(len(upstream)):
        repairer, out = cut(RESPONSES, SAMPLES[name], k, request=REQUEST)
        assert repairer.complete and not repairer.failed
        sent = [e for e in parse(out)]
        assert all(e.event == json.loads(e.data)["type"] for e in sent)
        objects = [json.loads(e.data) for e in sent]
        for obj in objects:
            EVENT.validate_python(obj)
        assert [o["sequence_number"] for o in objects] == list(range(len(objects)))
        last = objects[-1]
        assert last["type"] == "response.incomplete"
        assert last["response"]["status"] == "incomplete"
        assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}

        events = responses_events(out)
        assert events[-1].type == "response.incomplete"
        output = events[-1].response.output
        assert {i: item_text(item) for i, item in enumerate(output) if item_text(item)} == streamed_text(upstream[:k])


def test_cut_before_response_created_synthesises_it():
    _, out = cut(RESPONSES, samples.RESPONSES_TEXT, 0, request={"model": "gpt-4.1"})
    events = responses_events(out)
    assert [e.type for e in events] == ["response.created", "response.incomplete"]
    Response.model_validate(json.loads(parse(out)[-1].data)["response"])
    assert events[-1].response.model == "gpt-4.1"


def test_incomplete_event_keeps_the_snapshot_and_finished_items():
    _, out = cut(RESPONSES, samples.RESPONSES_TOOL_CALL, 10, request=REQUEST)
    response = json.loads(parse(out)[-1].data)["response"]
    Response.model_validate(response)
    assert response["id"] == "resp_68f1b0c1d2e3" and response["model"] == "o4-mini-2025-04-16"
    assert response["tools"][0]["name"] == "get_weather"
    reasoning, call = response["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "**Checking weather**"}]
    assert (call["call_id"], call["name"], call["arguments"], call["status"]) == (
        "call_Qp4rT8vN",
        "get_weather",
        '{"city":',
        "incomplete",
    )


def test_model_level_incomplete_is_complete():
    body = samples.RESPONSES_TEXT.replace(b"response.completed", b"response.incomplete").replace(
        b'"status":"completed","background"', b'"status":"incomplete","background"'
    )
    repairer = RESPONSES.repairer(REQUEST)
    play(repairer, parse(body))
    assert repairer.complete and not repairer.failed and repairer.end() == b""


def test_keepalive_comment_passes_through():
    repairer = RESPONSES.repairer(REQUEST)
    assert repairer.feed(parse(b": keepalive\n\n")[0]) == b": keepalive\n\n"
    with_heartbeats = samples.RESPONSES_TEXT.replace(b"\n\nevent:", b"\n\n" + HEARTBEAT + b"event:")
    assert [e.type for e in responses_events(with_heartbeats)] == [e.type for e in responses_events(samples.RESPONSES_TEXT)]


def test_heartbeats_after_events_that_carry_an_id_leave_the_sdk_reading_on():
    """openai-python reads every blank line after an `id:` as an event with empty data, and fails to parse it."""
    with_ids = samples.RESPONSES_TEXT.replace(b"data: ", b"id: 7\ndata: ")
    with_heartbeats = with_ids.replace(b"\n\nevent:", b"\n\n" + HEARTBEAT + b"event:")
    assert [e.type for e in responses_events(with_heartbeats)] == [e.type for e in responses_events(with_ids)]


@pytest.mark.parametrize("k", [0, 2, 5])
def test_error_ending(k):
    repairer, out = cut(RESPONSES, samples.RESPONSES_TEXT, k, ENDING_ERROR, REQUEST)
    assert repairer.complete and repairer.failed
    last, failed = parse(out)[-2:]
    assert (last.event, failed.event) == ("error", "response.failed")
    error = json.loads(last.data)
    EVENT.validate_python(error)
    assert error == {
        "type": "error",
        "sequence_number": k,
        "code": "server_error",
        "message": "upstream stream truncated",
        "param": None,
        "error": {"type": "server_error", "code": "server_error", "message": "upstream stream truncated", "param": None},
    }
    with pytest.raises(openai.APIError, match="upstream stream truncated"):
        responses_events(out)


@pytest.mark.parametrize(("status", "type_", "code"), [(429, "rate_limit_error", "rate_limit_exceeded"), (502, "server_error", "server_error")])
def test_error_event(status, type_, code):
    repairer = RESPONSES.repairer(REQUEST)
    out = repairer.error_event("all keys exhausted", status)
    error = json.loads(parse(out)[0].data)
    assert (error["sequence_number"], error["code"], error["error"]["type"]) == (0, code, type_)
    with pytest.raises(openai.APIError, match="all keys exhausted"):
        responses_events(out)
    assert repairer.end() == b""


@pytest.mark.parametrize("kind", ["response.failed", "error"])
def test_an_upstream_failure_before_any_content_is_the_error_answer_it_stands_for(kind):
    """Not started: the engine reads it as the answer it stands for (a server_error, as a 500, is asked again)."""
    body = (
        b'event: error\ndata: {"type":"error","sequence_number":2,"code":"server_error","message":"x","param":null}\n\n'
        if kind == "error"
        else samples.RESPONSES_TEXT.split(b"event: response.output_item.added")[0]
        + b'event: response.failed\ndata: {"type":"response.failed","sequence_number":2,"response":{"id":"resp_68f1a2b3c4d5","status":"failed","error":{"code":"server_error","message":"x"}}}\n\n'
    )
    repairer = RESPONSES.repairer(REQUEST)
    play(repairer, parse(body))
    assert not repairer.started and repairer.complete and repairer.failed
    status, error = repairer.early_error
    assert (status, json.loads(error)["error"]["code"]) == (500, "server_error")
    assert repairer.end() == b""
    aggregator = aggregate(RESPONSES, parse(body))
    assert aggregator.error["code"] == "server_error" and not aggregator.truncated


@pytest.mark.parametrize(("code", "status"), [("rate_limit_exceeded", 429), ("usage_limit_reached", 429),
                                              ("server_is_overloaded", 503), ("context_length_exceeded", 400),
                                              (None, 400)])
def test_an_early_failure_says_the_status_of_its_code(code, status):
    failed = {"type": "response.failed", "response": {"status": "failed", "error": {"code": code, "message": "x"}}}
    repairer = RESPONSES.repairer(REQUEST)
    play(repairer, parse(f"event: response.failed\ndata: {json.dumps(failed)}\n\n".encode()))
    assert repairer.early_error[0] == status


def test_an_upstream_failure_after_content_is_started_and_terminal():
    body = (samples.RESPONSES_TEXT.split(b"event: response.completed")[0]
            + b'event: response.failed\ndata: {"type":"response.failed","sequence_number":9,"response":{"id":"resp_68f1a2b3c4d5","status":"failed","error":{"code":"server_error","message":"x"}}}\n\n')
    repairer = RESPONSES.repairer(REQUEST)
    play(repairer, parse(body))
    assert repairer.started and repairer.complete and repairer.failed and repairer.early_error is None


def test_an_error_then_response_failed_is_one_early_failure():
    body = (b'event: error\ndata: {"type":"error","code":"server_error","message":"x","param":null}\n\n'
            b'event: response.failed\ndata: {"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"x"}}}\n\n')
    repairer = RESPONSES.repairer(REQUEST)
    play(repairer, parse(body))
    assert not repairer.started and repairer.early_error[0] == 500


def test_a_vendors_own_event_is_no_first_token():
    """The Codex backend's `codex.rate_limits` comes among the first events: a stall after it is still retried."""
    created = samples.RESPONSES_TEXT.split(b"event: response.output_item.added")[0]
    limits = b'event: codex.rate_limits\ndata: {"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":12}}}\n\n'
    repairer = RESPONSES.repairer(REQUEST)
    play(repairer, parse(created + limits))
    assert not repairer.started


@pytest.mark.parametrize("name", SAMPLES)
def test_aggregate_is_the_final_response(name):
    aggregator = aggregate(RESPONSES, parse(SAMPLES[name]))
    assert not aggregator.truncated and aggregator.error is None
    assert aggregator.result() == payloads(SAMPLES[name])[-1]["response"]
    Response.model_validate(aggregator.result())


def test_aggregate_of_a_truncated_stream_is_incomplete():
    aggregator = aggregate(RESPONSES, parse(samples.RESPONSES_TEXT)[:6])
    assert aggregator.truncated
    result = aggregator.result()
    Response.model_validate(result)
    assert result["status"] == "incomplete"
    assert result["incomplete_details"] == {"reason": "max_output_tokens"}
    (message,) = result["output"]
    assert message["content"] == [{"type": "output_text", "text": "The capital of France", "annotations": []}]


def test_aggregate_builds_items_from_a_cut_tool_call():
    result = aggregate(RESPONSES, parse(samples.RESPONSES_TOOL_CALL)[:11]).result()
    Response.model_validate(result)
    assert [item["type"] for item in result["output"]] == ["reasoning", "function_call"]
    assert result["output"][1]["arguments"] == '{"city":"Paris"}'


def test_aggregate_of_nothing():
    result = aggregate(RESPONSES, [], {"model": "gpt-4.1"}).result()
    Response.model_validate(result)
    assert (result["model"], result["status"], result["output"]) == ("gpt-4.1", "incomplete", [])


def test_error_body():
    error = json.loads(RESPONSES.error_body(429, "slow down"))["error"]
    assert error == {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}
    with pytest.raises(openai.RateLimitError):
        responses_events(RESPONSES.error_body(429, "slow down"), 429)


def deltas_in(events: list[dict], kinds: tuple[str, ...] = (".delta",)) -> int:
    return sum(1 for event in events if event["type"].endswith(kinds))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncated_ending_carries_a_counted_usage_of_the_sdk_type(name):
    """A null usage reads as an unknown finish to some clients (opencode's AI SDK re-asks the turn): the ending
    carries a usage like the vendor's, counting one output token per delta sent."""
    upstream = payloads(SAMPLES[name])
    for k in range(len(upstream) - 1):
        _, out = cut(RESPONSES, SAMPLES[name], k, request=REQUEST)
        sent = payloads(out)
        if k == 0:  # all Rotator's own
            exactly(ResponseCreatedEvent, sent[0])
            exactly(ResponseIncompleteEvent, sent[-1])
        EVENT.validate_python(sent[-1])  # (a vendor's snapshot may hold fields the SDK does not know yet)
        usage = exactly(ResponseUsage, sent[-1]["response"]["usage"])
        reasoning = deltas_in(upstream[:k], ("reasoning_summary_text.delta",))
        assert (usage.input_tokens, usage.output_tokens) == (0, deltas_in(upstream[:k])), k
        assert usage.output_tokens_details.reasoning_tokens == reasoning
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens
        assert responses_events(out)[-1].response.usage == usage


def test_truncated_ending_keeps_the_input_tokens_the_stream_reported():
    reported = b'"usage":{"input_tokens":14,"input_tokens_details":{"cached_tokens":6},"output_tokens":0,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":14}'
    body = samples.RESPONSES_TEXT.replace(b'"usage":null', reported)
    _, out = cut(RESPONSES, body, 5, request=REQUEST)
    usage = exactly(ResponseUsage, payloads(out)[-1]["response"]["usage"])
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens) == (14, 6, 1)
    assert usage.total_tokens == 15


def test_a_cut_non_stream_answer_carries_a_counted_usage():
    response = aggregate(RESPONSES, parse(samples.RESPONSES_TEXT)[:6], REQUEST).result()
    Response.model_validate(response)
    usage = exactly(ResponseUsage, response["usage"])
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (0, 2, 2)


@pytest.mark.parametrize("k", [0, 5])
@pytest.mark.parametrize(("status", "code"), [(500, "server_error"), (429, "rate_limit_exceeded")])
def test_an_error_ending_is_followed_by_response_failed_with_a_counted_usage(k, status, code):
    """As the vendor does after an `error`: `response.failed`, with the response's error and its usage."""
    repairer = RESPONSES.repairer(REQUEST)
    out = play(repairer, parse(samples.RESPONSES_TEXT)[:k]) + repairer.error_event("upstream failed", status)
    failed = payloads(out)[-1]
    EVENT.validate_python(failed)
    if k == 0:  # all Rotator's own
        exactly(ResponseFailedEvent, failed)
    assert (failed["type"], failed["sequence_number"]) == ("response.failed", k + 1)
    response = failed["response"]
    assert (response["status"], response["error"]) == ("failed", {"code": code, "message": "upstream failed"})
    usage = exactly(ResponseUsage, response["usage"])
    assert (usage.input_tokens, usage.output_tokens) == (0, deltas_in(payloads(samples.RESPONSES_TEXT)[:k]))
    with pytest.raises(openai.APIError, match="upstream failed"):
        responses_events(out)
