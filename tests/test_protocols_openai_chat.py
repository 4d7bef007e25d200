import json

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import protocols
from protocols import ENDING_ERROR
from protocols.sse import COMMENT_HEARTBEAT as HEARTBEAT
from tests.support import samples
from tests.support.sdk_clients import chat_chunks, chat_final
from tests.support.sdk_types import exactly
from tests.support.streams import aggregate, cut, parse, play

CHAT = protocols.get("openai_chat")
REQUEST = {"model": "gpt-4o-mini", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
SAMPLES = {"text": samples.CHAT_TEXT, "tool_calls": samples.CHAT_TOOL_CALLS, "reasoning": samples.CHAT_REASONING}
# Index of each sample's first content-bearing event.
FIRST_CONTENT = {"text": 1, "tool_calls": 0, "reasoning": 3}


def chunk(delta=None, finish=None, index=0, **extra) -> bytes:
    body = {"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1, "model": "m", **extra}
    body["choices"] = [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def data_events(body: bytes) -> list[str]:
    return [e.data for e in parse(body) if e.data is not None]


def upstream_finish(events) -> str | None:
    """The finish_reason the upstream itself sent within these events, if any."""
    reasons = [c["finish_reason"] for e in events if e.data and e.data[0] == "{" for c in json.loads(e.data).get("choices", [])]
    return next((r for r in reasons if r), None)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/chat/completions", True),
        ("POST", "/openai/deployments/gpt-4o/chat/completions", True),
        ("POST", "/api/v1/chat/completions", True),
        ("post", "/v1/chat/completions", True),
        ("GET", "/v1/chat/completions", False),
        ("POST", "/v1/completions", False),
        ("POST", "/v1/embeddings", False),
        ("GET", "/v1/models", False),
        ("POST", "/v1/responses", False),
        ("POST", "/v1/chat/completions/chatcmpl-1/messages", False),
    ],
)
def test_matches(method, path, expected):
    assert CHAT.matches(method, path) is expected
    assert (protocols.detect(method, path) is CHAT) is expected


def test_wants_stream_and_as_stream():
    assert CHAT.wants_stream("/v1/chat/completions", "", {"stream": True})
    assert not CHAT.wants_stream("/v1/chat/completions", "", {"stream": False})
    assert not CHAT.wants_stream("/v1/chat/completions", "", {})
    body = {"model": "m", "stream_options": {"include_obfuscation": False}}
    path, query, streamed = CHAT.as_stream("/v1/chat/completions", "api-version=1", body)
    assert (path, query) == ("/v1/chat/completions", "api-version=1")
    assert streamed == {"model": "m", "stream": True, "stream_options": {"include_obfuscation": False, "include_usage": True}}
    assert body == {"model": "m", "stream_options": {"include_obfuscation": False}}
    assert CHAT.is_sse("/v1/chat/completions", "")


@pytest.mark.parametrize("name", SAMPLES)
def test_complete_stream_passes_through_unchanged(name):
    events = parse(SAMPLES[name])
    repairer = CHAT.repairer(REQUEST)
    assert play(repairer, events) == SAMPLES[name]
    assert repairer.complete and not repairer.failed
    assert repairer.end() == b""
    assert repairer.end(ENDING_ERROR) == b""


@pytest.mark.parametrize("name", SAMPLES)
def test_started_flips_at_the_first_content_bearing_event(name):
    repairer = CHAT.repairer(REQUEST)
    started = []
    for event in parse(SAMPLES[name]):
        repairer.feed(event)
        started.append(repairer.started)
    first = FIRST_CONTENT[name]
    assert started == [False] * first + [True] * (len(started) - first)


@pytest.mark.parametrize("name", SAMPLES)
def test_every_cut_ends_as_length_for_the_sdk(name):
    events = parse(SAMPLES[name])
    for k in range(len(events) + 1):
        repairer, out = cut(CHAT, SAMPLES[name], k, request=REQUEST)
        assert repairer.complete
        data = data_events(out)
        assert data[-1] == "[DONE]" and out.endswith(b"data: [DONE]\n\n"), k
        assert data.count("[DONE]") == 1
        for payload in data[:-1]:
            obj = json.loads(payload)
            if obj.get("object"):
                ChatCompletionChunk.model_validate(obj)
        chat_chunks(out)
        expected = upstream_finish(events[:k]) or "length"
        if expected == "length":
            with pytest.raises(openai.LengthFinishReasonError) as caught:
                chat_final(out)
            completion = caught.value.completion
        else:
            completion = chat_final(out)
        assert [c.finish_reason for c in completion.choices] == [expected], k
        upstream_text = "".join(
            c["delta"].get("content") or "" for e in events[:k] if e.data and e.data[0] == "{" for c in json.loads(e.data)["choices"]
        )
        assert (completion.choices[0].message.content or "") == upstream_text


def test_cut_mid_tool_call_ends_length_never_tool_calls():
    events = parse(samples.CHAT_TOOL_CALLS)
    for k in range(1, 5):
        _, out = cut(CHAT, samples.CHAT_TOOL_CALLS, k, request=REQUEST)
        finishes = [c["finish_reason"] for d in data_events(out)[:-1] for c in json.loads(d)["choices"] if c["finish_reason"]]
        assert finishes == ["length"]
        with pytest.raises(openai.LengthFinishReasonError) as caught:
            chat_final(out)
        assert caught.value.completion.choices[0].message.tool_calls[0].id == "call_Wd3Yq7uB1"
    assert upstream_finish(events[:5]) is None


def test_synthesised_chunk_reuses_the_stream_identity():
    _, out = cut(CHAT, samples.CHAT_TEXT, 3, request=REQUEST)
    *_, last, usage = [json.loads(d) for d in data_events(out)[:-1]]  # the length chunk, the usage chunk, [DONE]
    assert usage["choices"] == [] and all(usage[k] == last[k] for k in ("id", "object", "created", "model"))
    assert {k: last[k] for k in ("id", "object", "created", "model")} == {
        "id": "chatcmpl-C9xKq2",
        "object": "chat.completion.chunk",
        "created": 1761000000,
        "model": "gpt-4o-mini-2024-07-18",
    }
    assert last["choices"] == [{"index": 0, "delta": {}, "finish_reason": "length"}]


def test_cut_before_anything_still_gives_a_valid_length_answer():
    _, out = cut(CHAT, samples.CHAT_TEXT, 0, request={"model": "gpt-4o-mini"})
    (chunk_,) = chat_chunks(out)
    assert chunk_.model == "gpt-4o-mini" and chunk_.choices[0].finish_reason == "length"


def test_usage_chunk_already_sent_is_kept_and_not_repeated():
    events = parse(samples.CHAT_TEXT)
    repairer, out = cut(CHAT, samples.CHAT_TEXT, len(events) - 1, request=REQUEST)
    assert repairer.end() == b""
    assert out == samples.CHAT_TEXT
    assert chat_final(out).usage.total_tokens == 22


@pytest.mark.parametrize("request_", [{**REQUEST, "n": 3}, REQUEST])
def test_every_unfinished_choice_gets_its_own_length_chunk(request_):
    repairer = CHAT.repairer(request_)
    repairer.feed(parse(chunk({"role": "assistant", "content": "a"}, index=0))[0])
    repairer.feed(parse(chunk({"content": "b"}, finish="stop", index=1))[0])
    repairer.feed(parse(chunk({"content": "c"}, index=2))[0])
    tail = repairer.end()
    finishes = [(c["index"], c["finish_reason"]) for d in data_events(tail)[:-1] for c in json.loads(d)["choices"]]
    assert finishes == [(0, "length"), (2, "length")]


@pytest.mark.parametrize(
    ("deltas", "inferred"),
    [
        ([{"role": "assistant", "content": ""}, {"content": "Hi"}], "stop"),
        (
            [{"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}],
            "tool_calls",
        ),
    ],
)
def test_done_without_finish_reason_gets_an_inferred_one(deltas, inferred):
    body = b"".join(chunk(d) for d in deltas) + b"data: [DONE]\n\n"
    repairer = CHAT.repairer(REQUEST)
    out = play(repairer, parse(body))
    assert repairer.complete and repairer.end() == b""
    assert data_events(out)[-1] == "[DONE]"
    assert json.loads(data_events(out)[-2])["choices"][0]["finish_reason"] == inferred
    assert chat_final(out).choices[0].finish_reason == inferred
    assert aggregate(CHAT, parse(body)).result()["choices"][0]["finish_reason"] == inferred


def test_keepalive_comment_passes_through():
    (event,) = parse(b": keepalive\n\n")
    repairer = CHAT.repairer(REQUEST)
    assert repairer.feed(event) == b": keepalive\n\n"
    assert not repairer.started
    with_heartbeats = samples.CHAT_TEXT.replace(b"\n\ndata:", b"\n\n" + HEARTBEAT + b"data:")
    assert chat_chunks(with_heartbeats) == chat_chunks(samples.CHAT_TEXT)


def test_heartbeats_after_events_that_carry_an_id_leave_the_sdk_reading_on():
    """A gateway that puts `id:` on every event (llmgateway does): openai-python keeps the last id and then reads
    every blank line as an event with empty data, which it fails to parse (openai-python#2722). A heartbeat is a
    comment line with no blank line of its own."""
    with_ids = samples.CHAT_TEXT.replace(b": keepalive\n\n", b"").replace(b"data: ", b"id: 7\ndata: ")
    with_heartbeats = with_ids.replace(b"\n\nid:", b"\n\n" + HEARTBEAT + HEARTBEAT + b"id:")
    assert chat_chunks(with_heartbeats) == chat_chunks(with_ids)


@pytest.mark.parametrize("k", [0, 2, 5])
def test_error_ending(k):
    repairer, out = cut(CHAT, samples.CHAT_TEXT, k, ENDING_ERROR, REQUEST)
    assert repairer.failed and repairer.complete
    tail = data_events(out)[-1]
    assert json.loads(tail) == {
        "error": {"message": "upstream stream truncated", "type": "server_error", "param": None, "code": "stream_truncated"}
    }
    assert "[DONE]" not in data_events(out)
    with pytest.raises(openai.APIError, match="upstream stream truncated"):
        chat_chunks(out)
    assert repairer.end() == b""


@pytest.mark.parametrize(
    ("status", "type_"), [(429, "rate_limit_error"), (503, "server_error"), (529, "server_error"), (502, "server_error")]
)
def test_error_event(status, type_):
    repairer = CHAT.repairer(REQUEST)
    out = repairer.error_event("all keys exhausted", status)
    assert json.loads(data_events(out)[0])["error"]["type"] == type_
    with pytest.raises(openai.APIError, match="all keys exhausted"):
        chat_chunks(out)
    assert repairer.complete and repairer.failed and repairer.end() == b""


def test_upstream_error_event_counts_as_started_and_terminal():
    repairer = CHAT.repairer(REQUEST)
    error = b'data: {"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}\n\n'
    assert repairer.feed(parse(error)[0]) == error
    assert repairer.started and repairer.complete and repairer.failed
    assert repairer.end() == b""


def test_aggregates_text_and_usage():
    aggregator = aggregate(CHAT, parse(samples.CHAT_TEXT))
    result = aggregator.result()
    ChatCompletion.model_validate(result)
    assert not aggregator.truncated and aggregator.error is None
    assert result["object"] == "chat.completion"
    assert (result["id"], result["created"], result["model"]) == ("chatcmpl-C9xKq2", 1761000000, "gpt-4o-mini-2024-07-18")
    (choice,) = result["choices"]
    assert choice["message"]["content"] == samples.CHAT_TEXT_ANSWER
    assert choice["finish_reason"] == "stop"
    assert result["usage"]["total_tokens"] == 22


def test_aggregates_tool_calls():
    result = aggregate(CHAT, parse(samples.CHAT_TOOL_CALLS)).result()
    ChatCompletion.model_validate(result)
    (choice,) = result["choices"]
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_Wd3Yq7uB1", "call_Xk9Lm2cQ4"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert [c["function"]["arguments"] for c in calls] == samples.CHAT_TOOL_ARGUMENTS
    assert choice["message"]["content"] is None
    assert choice["finish_reason"] == "tool_calls"
    assert result["usage"]["completion_tokens"] == 41


def test_aggregates_reasoning_and_skips_azure_filter_chunk():
    result = aggregate(CHAT, parse(samples.CHAT_REASONING)).result()
    ChatCompletion.model_validate(result)
    message = result["choices"][0]["message"]
    assert message["reasoning_content"] == "2 plus 2 is 4."
    assert message["content"] == "4"
    assert result["id"] == "gen-1761000200-aB"
    assert result["usage"]["completion_tokens_details"]["reasoning_tokens"] == 7


def test_aggregates_reasoning_under_its_upstream_name():
    body = chunk({"role": "assistant", "reasoning": "think"}) + chunk({"content": "ok"}, "stop") + b"data: [DONE]\n\n"
    message = aggregate(CHAT, parse(body)).result()["choices"][0]["message"]
    assert message["reasoning"] == "think" and "reasoning_content" not in message


def test_aggregate_of_a_truncated_stream_says_length():
    aggregator = aggregate(CHAT, parse(samples.CHAT_TOOL_CALLS)[:3])
    assert aggregator.truncated
    result = aggregator.result()
    ChatCompletion.model_validate(result)
    (choice,) = result["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'
    # Cut before its usage chunk: a usage counted from the three chunks that carried content (the prompt unknown).
    assert result["usage"] == {"prompt_tokens": 0, "completion_tokens": 3, "total_tokens": 3}


def test_aggregate_of_nothing_is_an_empty_length_answer():
    aggregator = aggregate(CHAT, [], {"model": "gpt-4o-mini"})
    result = aggregator.result()
    ChatCompletion.model_validate(result)
    assert aggregator.truncated
    assert result["model"] == "gpt-4o-mini"
    assert result["choices"][0]["finish_reason"] == "length"


def test_aggregate_keeps_an_in_stream_error():
    body = chunk({"content": "a"}) + b'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n'
    aggregator = aggregate(CHAT, parse(body))
    assert aggregator.error == {"message": "boom", "type": "server_error", "param": None, "code": None}
    assert not aggregator.truncated


@pytest.mark.parametrize(
    ("status", "error_class", "type_"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (429, openai.RateLimitError, "rate_limit_error"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_error_body(status, error_class, type_):
    body = CHAT.error_body(status, "no upstream key left")
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["message"], error["type"], error["param"]) == ("no upstream key left", type_, None)
    with pytest.raises(error_class) as caught:
        chat_chunks(body, status)
    assert caught.value.body["message"] == "no upstream key left"


def test_unparsed_fast_path_never_misses_a_finish_or_a_tool_call():
    from protocols.events import Event

    def chunk(choice: dict) -> Event:
        data = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                           "choices": [choice]}, separators=(",", ":"))
        return Event(raw=f"data: {data}\n\n".encode(), data=data)

    repairer = CHAT.repairer({"model": "m"})
    repairer.feed(chunk({"index": 0, "delta": {"content": "hi"}, "finish_reason": None}))
    # Content that quotes the markers is escaped inside the JSON string, so it cannot fool the fast path.
    repairer.feed(chunk({"index": 0, "delta": {"content": '"finish_reason":null "tool_calls"'},
                         "finish_reason": None}))
    repairer.feed(chunk({"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                                 "function": {"name": "f", "arguments": ""}}]},
                         "finish_reason": None}))
    out = repairer.feed(Event(raw=b"data: [DONE]\n\n", data="[DONE]"))
    assert b'"finish_reason":"tool_calls"' in out  # the tool call was seen despite the fast path

    spaced = CHAT.repairer({"model": "m"})
    spaced.feed(chunk({"index": 0, "delta": {"content": "hi"}, "finish_reason": None}))
    data = '{"id":"c","choices":[{"index":0,"delta":{},"finish_reason": "length"}]}'
    spaced.feed(Event(raw=f"data: {data}\n\n".encode(), data=data))
    assert spaced.end() == b"data: [DONE]\n\n"  # the finish was seen: only [DONE] is missing


def content_chunks(events) -> int:
    """How many of these events are chunks that carried content."""
    keys = ("content", "refusal", "reasoning_content", "reasoning", "tool_calls")
    chunks = [json.loads(e.data) for e in events if e.data and not e.data.startswith("[DONE]")]
    return sum(1 for c in chunks for choice in c.get("choices") or () if any(choice["delta"].get(k) for k in keys))


def play_as_the_engine(repairer, events) -> bytes:
    """As the engine does: a block the repairer calls quiet is passed on without `feed`."""
    return b"".join(e.raw if e.data is not None and repairer.quiet(e.raw) else repairer.feed(e) for e in events)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("player", [play, play_as_the_engine])
def test_truncated_ending_sends_the_usage_chunk_asked_for_counted(name, player):
    """A client that asked for the usage chunk gets one, like the vendor's, counting one token per chunk sent."""
    events = parse(SAMPLES[name])
    last_content = max(i for i, e in enumerate(events) if content_chunks([e]))
    for k in range(1, last_content + 2):
        repairer = CHAT.repairer(REQUEST)
        out = player(repairer, events[:k]) + repairer.end()
        *_, finish, usage_chunk, done = data_events(out)
        assert json.loads(finish)["choices"][0]["finish_reason"] == "length" and done == "[DONE]"
        usage = exactly(ChatCompletionChunk, json.loads(usage_chunk)).usage
        counted = content_chunks(events[:k])
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (0, counted, counted), k
        assert chat_chunks(out)[-1].usage == usage


def test_truncated_ending_sends_no_usage_chunk_unless_asked():
    _, out = cut(CHAT, samples.CHAT_TEXT, 3, request={"model": "gpt-4o-mini", "stream": True})
    assert [json.loads(d)["choices"][0]["finish_reason"] for d in data_events(out)[:-1]][-1] == "length"
    assert all(json.loads(d).get("usage") is None for d in data_events(out)[:-1])
