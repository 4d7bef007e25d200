import json

import anthropic
import pydantic
import pytest
from anthropic.types import Message, RawMessageDeltaEvent, RawMessageStartEvent, RawMessageStreamEvent

import protocols
from protocols import ENDING_ERROR
from protocols.anthropic_messages.stream import HEARTBEAT
from tests.support import samples
from tests.support.sdk_clients import anthropic_final
from tests.support.sdk_types import exactly
from tests.support.streams import aggregate, cut, parse, payloads, play

MESSAGES = protocols.get("anthropic_messages")
REQUEST = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [], "stream": True}
SAMPLES = {"text": samples.ANTHROPIC_TEXT, "tool_use": samples.ANTHROPIC_TOOL_USE}
EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def sent_events(out: bytes) -> list[dict]:
    """Every event of the output, checked to carry an `event:` line naming its type."""
    events = [e for e in parse(out) if e.data is not None]
    assert all(e.event == json.loads(e.data)["type"] for e in events)
    return [json.loads(e.data) for e in events]


def streamed_text(events: list[dict]) -> list[str]:
    texts: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            texts[event["index"]] = ""
        elif event["type"] == "content_block_delta" and event["delta"]["type"] in ("text_delta", "thinking_delta"):
            texts[event["index"]] += event["delta"].get("text") or event["delta"].get("thinking")
    return list(texts.values())


def block_text(block) -> str:
    return {"text": lambda: block.text, "thinking": lambda: block.thinking}.get(block.type, lambda: "")()


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/messages", True),
        ("POST", "/anthropic/v1/messages", True),
        ("GET", "/v1/messages", False),
        ("POST", "/v1/messages/count_tokens", False),
        ("POST", "/v1/messages/batches", False),
        ("GET", "/v1/models", False),
        ("POST", "/v1/threads/thread_1/messages", False),
        ("POST", "/v1/complete", False),
    ],
)
def test_matches(method, path, expected):
    assert MESSAGES.matches(method, path) is expected
    assert (protocols.detect(method, path) is MESSAGES) is expected


def test_wants_stream_and_as_stream():
    assert MESSAGES.wants_stream("/v1/messages", "", {"stream": True})
    assert not MESSAGES.wants_stream("/v1/messages", "", {"stream": False})
    assert MESSAGES.as_stream("/v1/messages", "beta=true", {"model": "c"}) == ("/v1/messages", "beta=true", {"model": "c", "stream": True})


@pytest.mark.parametrize("name", SAMPLES)
def test_complete_stream_passes_through_unchanged(name):
    repairer = MESSAGES.repairer(REQUEST)
    assert play(repairer, parse(SAMPLES[name])) == SAMPLES[name]
    assert repairer.complete and not repairer.failed
    assert repairer.end() == b"" and repairer.end(ENDING_ERROR) == b""


@pytest.mark.parametrize("name", SAMPLES)
def test_started_flips_at_the_first_token_not_at_an_empty_block(name):
    def carries_token(event) -> bool:
        if event.event == "content_block_start":
            return json.loads(event.data)["content_block"]["type"] == "tool_use"
        return event.event in ("content_block_delta", "message_delta", "message_stop")

    events = parse(SAMPLES[name])
    first = next(i for i, e in enumerate(events) if carries_token(e))
    repairer = MESSAGES.repairer(REQUEST)
    started = []
    for event in events:
        repairer.feed(event)
        started.append(repairer.started)
    assert started == [False] * first + [True] * (len(started) - first)


def test_ping_alone_does_not_start():
    repairer = MESSAGES.repairer(REQUEST)
    repairer.feed(parse(samples.ANTHROPIC_TEXT)[0])
    repairer.feed(parse(HEARTBEAT)[0])
    assert not repairer.started


@pytest.mark.parametrize("name", SAMPLES)
def test_every_cut_ends_with_max_tokens_for_the_sdk(name):
    upstream = payloads(SAMPLES[name])
    for k in range(len(upstream)):
        repairer, out = cut(MESSAGES, SAMPLES[name], k, request=REQUEST)
        assert repairer.complete and not repairer.failed
        events = sent_events(out)
        types = [e["type"] for e in events if e["type"] != "ping"]
        for event in events:
            if event["type"] != "ping":
                EVENT.validate_python(event)
        assert types[0] == "message_start" and types[-1] == "message_stop"
        assert types.count("message_delta") == 1 and types.count("message_stop") == 1
        assert types.count("content_block_start") == types.count("content_block_stop")
        assert types.index("message_delta") == len(types) - 2
        upstream_stop = next((e["delta"]["stop_reason"] for e in upstream[:k] if e["type"] == "message_delta"), None)

        sdk_events, message = anthropic_final(out)
        assert message.stop_reason == (upstream_stop or "max_tokens"), k
        assert [block_text(b) for b in message.content] == streamed_text(upstream[:k])
        delta = next(e for e in events if e["type"] == "message_delta")
        cumulative = [e["usage"]["output_tokens"] for e in upstream[:k] if e["type"] == "message_delta"]
        initial = [e["message"]["usage"]["output_tokens"] for e in upstream[:k] if e["type"] == "message_start"]
        deltas = sum(1 for e in upstream[:k] if e["type"] == "content_block_delta")
        assert delta["usage"]["output_tokens"] == max((cumulative or initial or [0])[-1], deltas)
        assert message.usage.output_tokens == delta["usage"]["output_tokens"]


def test_cut_mid_tool_input_closes_the_block():
    _, out = cut(MESSAGES, samples.ANTHROPIC_TOOL_USE, 12, request=REQUEST)
    types = [e["type"] for e in sent_events(out)]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert sent_events(out)[-3] == {"type": "content_block_stop", "index": 2}
    _, message = anthropic_final(out)
    assert message.stop_reason == "max_tokens"
    assert message.content[2].type == "tool_use" and message.content[2].name == "get_weather"


def test_cut_before_message_start_synthesises_it():
    _, out = cut(MESSAGES, samples.ANTHROPIC_TEXT, 0, request={"model": "claude-x"})
    assert [e["type"] for e in sent_events(out)] == ["message_start", "message_delta", "message_stop"]
    _, message = anthropic_final(out)
    assert (message.model, message.stop_reason, message.content) == ("claude-x", "max_tokens", [])


def test_cut_after_message_delta_only_adds_message_stop():
    events = parse(samples.ANTHROPIC_TEXT)
    _, out = cut(MESSAGES, samples.ANTHROPIC_TEXT, len(events) - 1, request=REQUEST)
    assert out == samples.ANTHROPIC_TEXT
    assert anthropic_final(out)[1].stop_reason == "end_turn"


def test_usage_from_message_start_survives_the_cut():
    _, out = cut(MESSAGES, samples.ANTHROPIC_TEXT, 5, request=REQUEST)
    _, message = anthropic_final(out)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 2)


def test_synthesised_usage_is_the_last_cumulative_value():
    partial_delta = b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":7}}\n\n'
    repairer = MESSAGES.repairer(REQUEST)
    play(repairer, parse(samples.ANTHROPIC_TEXT)[:7] + parse(partial_delta))
    delta = [e for e in sent_events(repairer.end()) if e["type"] == "message_delta"]
    usage = {"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 7}
    assert delta == [{"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": None}, "usage": usage}]


def test_heartbeat_is_ignored_by_the_sdk():
    with_pings = samples.ANTHROPIC_TOOL_USE.replace(b"\n\nevent:", b"\n\n" + HEARTBEAT + b"event:")
    assert anthropic_final(with_pings)[1] == anthropic_final(samples.ANTHROPIC_TOOL_USE)[1]


@pytest.mark.parametrize("k", [0, 3, 8])
def test_error_ending(k):
    repairer, out = cut(MESSAGES, samples.ANTHROPIC_TEXT, k, ENDING_ERROR, REQUEST)
    assert repairer.complete and repairer.failed
    events = sent_events(out)
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": "upstream stream truncated"}}
    assert "message_stop" not in [e["type"] for e in events]
    with pytest.raises(anthropic.APIStatusError, match="upstream stream truncated"):
        anthropic_final(out)


@pytest.mark.parametrize(
    ("status", "type_"), [(429, "rate_limit_error"), (529, "overloaded_error"), (503, "overloaded_error"), (502, "api_error")]
)
def test_error_event(status, type_):
    repairer = MESSAGES.repairer(REQUEST)
    out = repairer.error_event("all keys exhausted", status)
    assert sent_events(out) == [{"type": "error", "error": {"type": type_, "message": "all keys exhausted"}}]
    with pytest.raises(anthropic.APIStatusError, match="all keys exhausted"):
        anthropic_final(out)
    assert repairer.complete and repairer.failed and repairer.end() == b""


def test_upstream_error_event_is_started_and_terminal():
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    repairer = MESSAGES.repairer(REQUEST)
    play(repairer, parse(samples.ANTHROPIC_TEXT)[:1] + parse(error))
    assert repairer.started and repairer.complete and repairer.failed and repairer.end() == b""
    aggregator = aggregate(MESSAGES, parse(error))
    assert aggregator.error == {"type": "overloaded_error", "message": "Overloaded"} and not aggregator.truncated


def test_aggregates_text_and_usage():
    aggregator = aggregate(MESSAGES, parse(samples.ANTHROPIC_TEXT))
    result = aggregator.result()
    Message.model_validate(result)
    assert not aggregator.truncated and aggregator.error is None
    assert (result["id"], result["type"], result["role"]) == ("msg_01XFDUDYJgAACzvnptvVoYEL", "message", "assistant")
    assert result["content"] == [{"type": "text", "text": "The capital of France is Paris."}]
    assert (result["stop_reason"], result["stop_sequence"]) == ("end_turn", None)
    assert (result["usage"]["input_tokens"], result["usage"]["output_tokens"]) == (21, 11)


def test_aggregates_thinking_text_and_tool_use():
    result = aggregate(MESSAGES, parse(samples.ANTHROPIC_TOOL_USE)).result()
    Message.model_validate(result)
    thinking, text, tool = result["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": "The user wants the weather in Paris.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
    }
    assert text == {"type": "text", "text": "Let me check."}
    assert tool == {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {"city": "Paris"}}
    assert result["stop_reason"] == "tool_use"
    assert (result["usage"]["input_tokens"], result["usage"]["output_tokens"]) == (472, 89)


def test_aggregate_tool_use_without_input_fragments_is_empty_object():
    events = [e for e in parse(samples.ANTHROPIC_TOOL_USE) if b"input_json_delta" not in e.raw]
    tool = aggregate(MESSAGES, events).result()["content"][2]
    assert tool["input"] == {}


def test_aggregate_of_a_truncated_stream_says_max_tokens():
    aggregator = aggregate(MESSAGES, parse(samples.ANTHROPIC_TOOL_USE)[:13])
    assert aggregator.truncated
    result = aggregator.result()
    Message.model_validate(result)
    assert result["stop_reason"] == "max_tokens"
    # The thinking and the text; the tool_use cut in its input is left out, so no agent runs it.
    assert [block["type"] for block in result["content"]] == ["thinking", "text"]
    assert result["usage"]["output_tokens"] == 2


def test_aggregate_of_nothing():
    result = aggregate(MESSAGES, [], {"model": "claude-x"}).result()
    Message.model_validate(result)
    assert (result["model"], result["content"], result["stop_reason"]) == ("claude-x", [], "max_tokens")


@pytest.mark.parametrize(
    ("status", "type_", "error_class"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (504, "timeout_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.OverloadedError),
    ],
)
def test_error_body(status, type_, error_class):
    body = MESSAGES.error_body(status, "no upstream key left")
    assert json.loads(body) == {"type": "error", "error": {"type": type_, "message": "no upstream key left"}}
    with pytest.raises(error_class):
        anthropic_final(body, status)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncated_ending_carries_a_counted_usage_of_the_sdk_type(name):
    """The synthesised message_delta carries the cumulative usage the vendor's would: the input and cache counts
    from message_start, the output counted as one token per content delta sent (or the reported count if more)."""
    upstream = payloads(SAMPLES[name])
    start_usage = upstream[0]["message"]["usage"]
    stop = next(i for i, e in enumerate(upstream) if e["type"] == "message_delta")
    for k in range(stop + 1):
        _, out = cut(MESSAGES, SAMPLES[name], k, request=REQUEST)
        sent = sent_events(out)
        exactly(RawMessageStartEvent, sent[0])
        [delta] = [exactly(RawMessageDeltaEvent, e) for e in sent if e["type"] == "message_delta"]
        usage = delta.usage
        deltas = sum(1 for e in upstream[:k] if e["type"] == "content_block_delta")
        reported = start_usage if k else {"input_tokens": 0, "output_tokens": 0}
        assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
            reported["input_tokens"], 0, 0), k
        assert usage.output_tokens == max(reported.get("output_tokens", 0), deltas), k
        assert anthropic_final(out)[1].usage.output_tokens == usage.output_tokens
