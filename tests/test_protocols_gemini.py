import json
import re

import pytest
from google.genai import errors as genai_errors
from google.genai import types as genai_types

import protocols
from protocols import ENDING_ERROR
from tests.support import samples
from tests.support.sdk_clients import gemini_chunks
from tests.support.sdk_types import exactly
from tests.support.streams import aggregate, cut, parse, payloads, play

GEMINI = protocols.get("gemini")
REQUEST = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
LF_TEXT = samples.GEMINI_TEXT.replace(b"\r\n", b"\n")
SAMPLES = {"text": samples.GEMINI_TEXT, "function_call": samples.GEMINI_FUNCTION_CALL, "text_lf": LF_TEXT}
STREAM_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def chunk(candidates=None, **extra) -> bytes:
    body = {"candidates": candidates, **extra} if candidates is not None else extra
    return b"data: " + json.dumps(body).encode() + b"\r\n\r\n"


def text_of(responses) -> str:
    return "".join(part.text or "" for r in responses for c in r.candidates or () for part in c.content.parts or () if not part.thought)


def assert_only_data_lines(out: bytes, eol: bytes) -> None:
    """What the SDK demands: `data: ` lines and blank lines, nothing else, in the stream's own line ending."""
    assert re.fullmatch(rb"(data: [^\r\n]+" + eol + eol + rb")*", out), out


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", True),
        ("POST", STREAM_PATH, True),
        ("POST", "/v1/models/gemini-2.5-pro:generateContent", True),
        ("POST", "/v1beta/tunedModels/my-model-123:generateContent", True),
        ("POST", "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent", True),
        ("GET", "/v1beta/models/gemini-2.5-flash:generateContent", False),
        ("POST", "/v1beta/models/gemini-2.5-flash:countTokens", False),
        ("POST", "/v1beta/models/text-embedding-004:embedContent", False),
        ("POST", "/v1beta/models/text-embedding-004:batchEmbedContents", False),
        ("GET", "/v1beta/models", False),
        ("GET", "/v1beta/models/gemini-2.5-flash", False),
        ("POST", "/v1beta/models/gemini-2.5-flash:generateContentX", False),
    ],
)
def test_matches(method, path, expected):
    assert GEMINI.matches(method, path) is expected
    assert (protocols.detect(method, path) is GEMINI) is expected


def test_streaming_and_framing_come_from_path_and_query():
    assert GEMINI.wants_stream(STREAM_PATH, "alt=sse", {})
    assert GEMINI.wants_stream(STREAM_PATH, "", {})
    assert not GEMINI.wants_stream("/v1beta/models/g:generateContent", "alt=sse", {"stream": True})
    assert GEMINI.is_sse(STREAM_PATH, "alt=sse")
    assert GEMINI.is_sse(STREAM_PATH, "key=abc&alt=sse")
    assert not GEMINI.is_sse(STREAM_PATH, "")
    assert not GEMINI.is_sse(STREAM_PATH, "alt=json")


@pytest.mark.parametrize(
    ("query", "expected"), [("", "alt=sse"), ("key=a%2Fb", "key=a%2Fb&alt=sse"), ("alt=json&key=k", "key=k&alt=sse")]
)
def test_as_stream(query, expected):
    body = {"contents": []}
    assert GEMINI.as_stream("/v1beta/models/g:generateContent", query, body) == (STREAM_PATH.replace("gemini-2.5-flash", "g"), expected, body)


def test_heartbeat_is_none():
    assert GEMINI.heartbeat is None


@pytest.mark.parametrize("name", SAMPLES)
def test_complete_stream_passes_through_unchanged(name):
    repairer = GEMINI.repairer(REQUEST)
    assert play(repairer, parse(SAMPLES[name])) == SAMPLES[name]
    assert repairer.complete and not repairer.failed
    assert repairer.end() == b"" and repairer.end(ENDING_ERROR) == b""


@pytest.mark.parametrize("name", SAMPLES)
def test_started_flips_at_the_first_chunk_with_parts(name):
    repairer = GEMINI.repairer(REQUEST)
    started = []
    for event in parse(SAMPLES[name]):
        repairer.feed(event)
        started.append(repairer.started)
    assert started == [True] * len(started)


def test_started_waits_for_parts_or_a_finish():
    repairer = GEMINI.repairer(REQUEST)
    repairer.feed(parse(chunk([{"content": {"role": "model", "parts": []}, "index": 0}]))[0])
    repairer.feed(parse(chunk(usageMetadata={"promptTokenCount": 3}))[0])
    assert not repairer.started
    repairer.feed(parse(chunk([{"content": {"role": "model"}, "finishReason": "STOP", "index": 0}]))[0])
    assert repairer.started and repairer.complete


@pytest.mark.parametrize("name", SAMPLES)
def test_every_cut_ends_with_max_tokens_for_the_sdk(name):
    upstream = payloads(SAMPLES[name])
    eol = b"\n" if name == "text_lf" else b"\r\n"
    for k in range(len(upstream)):
        repairer, out = cut(GEMINI, SAMPLES[name], k, request=REQUEST)
        assert repairer.complete and not repairer.failed
        assert_only_data_lines(out, eol if k else b"\n")
        last = json.loads(parse(out)[-1].data)
        genai_types.GenerateContentResponse.model_validate(last)
        assert [c["finishReason"] for c in last["candidates"]] == ["MAX_TOKENS"]
        for key in ("modelVersion", "responseId"):
            assert last.get(key) == (upstream[k - 1][key] if k else None)

        responses = gemini_chunks(out)
        assert responses[-1].candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS
        assert text_of(responses) == text_of(gemini_chunks(b"".join(e.raw for e in parse(SAMPLES[name])[:k])))


def test_later_chunk_without_finish_reason_reopens_the_stream():
    repairer = GEMINI.repairer(REQUEST)
    play(repairer, parse(samples.GEMINI_TEXT))
    assert repairer.complete
    repairer.feed(parse(chunk([{"content": {"role": "model", "parts": [{"text": "more"}]}, "index": 0}]))[0])
    assert not repairer.complete
    assert json.loads(parse(repairer.end())[0].data)["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_blocked_prompt_is_complete():
    blocked = chunk(promptFeedback={"blockReason": "SAFETY"}, usageMetadata={"promptTokenCount": 8, "totalTokenCount": 8})
    repairer = GEMINI.repairer(REQUEST)
    play(repairer, parse(blocked))
    assert repairer.started and repairer.complete and repairer.end() == b""
    aggregator = aggregate(GEMINI, parse(blocked))
    assert not aggregator.truncated
    assert aggregator.result()["promptFeedback"] == {"blockReason": "SAFETY"}


def test_comments_and_keepalives_are_never_forwarded():
    noisy = samples.GEMINI_TEXT.replace(b"\r\n\r\ndata:", b"\r\n\r\n: keepalive\r\n\r\nevent: ping\r\n\r\ndata:")
    repairer = GEMINI.repairer(REQUEST)
    out = play(repairer, parse(noisy))
    assert out == samples.GEMINI_TEXT
    assert text_of(gemini_chunks(out)) == samples.GEMINI_TEXT_ANSWER
    with pytest.raises(genai_errors.UnknownApiResponseError):
        gemini_chunks(noisy)


def test_cut_before_anything_gives_one_max_tokens_chunk():
    _, out = cut(GEMINI, samples.GEMINI_TEXT, 0, request=REQUEST)
    usage = b'"usageMetadata":{"promptTokenCount":0,"candidatesTokenCount":0,"totalTokenCount":0}'
    assert out == b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"MAX_TOKENS","index":0}],' + usage + b'}\n\n'
    (response,) = gemini_chunks(out)
    assert response.candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS


@pytest.mark.parametrize("k", [0, 1, 2])
def test_error_ending(k):
    repairer, out = cut(GEMINI, samples.GEMINI_TEXT, k, ENDING_ERROR, REQUEST)
    assert repairer.complete and repairer.failed
    assert json.loads(parse(out)[-1].data) == {"error": {"code": 500, "message": "upstream stream truncated", "status": "INTERNAL"}}
    with pytest.raises(genai_errors.ServerError, match="upstream stream truncated"):
        gemini_chunks(out)


@pytest.mark.parametrize(
    ("status", "code", "grpc", "error_class"),
    [
        (429, 429, "RESOURCE_EXHAUSTED", genai_errors.ClientError),
        (503, 503, "UNAVAILABLE", genai_errors.ServerError),
        (529, 503, "UNAVAILABLE", genai_errors.ServerError),
        (502, 502, "UNAVAILABLE", genai_errors.ServerError),
        (500, 500, "INTERNAL", genai_errors.ServerError),
    ],
)
def test_error_event(status, code, grpc, error_class):
    repairer = GEMINI.repairer(REQUEST)
    out = repairer.error_event("all keys exhausted", status)
    assert json.loads(parse(out)[0].data) == {"error": {"code": code, "message": "all keys exhausted", "status": grpc}}
    with pytest.raises(error_class, match="all keys exhausted"):
        gemini_chunks(out)
    assert repairer.end() == b""


def test_upstream_error_is_started_and_terminal():
    error = b'data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}\r\n\r\n'
    repairer = GEMINI.repairer(REQUEST)
    assert play(repairer, parse(samples.GEMINI_TEXT)[:1] + parse(error)).endswith(error)
    assert repairer.started and repairer.complete and repairer.failed and repairer.end() == b""
    assert aggregate(GEMINI, parse(error)).error["status"] == "UNAVAILABLE"


def test_aggregates_text_into_one_part_with_the_last_usage():
    aggregator = aggregate(GEMINI, parse(samples.GEMINI_TEXT))
    result = aggregator.result()
    genai_types.GenerateContentResponse.model_validate(result)
    assert not aggregator.truncated and aggregator.error is None
    assert result["candidates"] == [
        {"content": {"role": "model", "parts": [{"text": samples.GEMINI_TEXT_ANSWER}]}, "finishReason": "STOP", "index": 0}
    ]
    assert result["usageMetadata"]["candidatesTokenCount"] == 7
    assert (result["modelVersion"], result["responseId"]) == ("gemini-2.5-flash", "qH7xaPr3Dq2Pz7IP0ZCv4Ag")


def test_aggregates_thoughts_and_function_call():
    result = aggregate(GEMINI, parse(samples.GEMINI_FUNCTION_CALL)).result()
    genai_types.GenerateContentResponse.model_validate(result)
    (candidate,) = result["candidates"]
    thought, call = candidate["content"]["parts"]
    assert thought == {"text": "**Weather lookup**\nI will call get_weather.", "thought": True}
    assert call["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}}
    assert "thoughtSignature" in call
    assert candidate["finishReason"] == "STOP"
    assert result["usageMetadata"]["thoughtsTokenCount"] == 63


def test_aggregate_keeps_a_signature_on_the_text_it_arrived_with():
    parts = [{"text": "a"}, {"text": "b", "thoughtSignature": "c2ln"}, {"text": "c"}, {"text": "d", "thought": True}]
    body = b"".join(chunk([{"content": {"role": "model", "parts": [p]}, "index": 0}]) for p in parts)
    result = aggregate(GEMINI, parse(body)).result()
    assert result["candidates"][0]["content"]["parts"] == [
        {"text": "ab", "thoughtSignature": "c2ln"},
        {"text": "c"},
        {"text": "d", "thought": True},
    ]


def test_aggregate_of_a_truncated_stream_says_max_tokens():
    aggregator = aggregate(GEMINI, parse(samples.GEMINI_FUNCTION_CALL)[:3])
    assert aggregator.truncated
    result = aggregator.result()
    genai_types.GenerateContentResponse.model_validate(result)
    assert result["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert result["candidates"][0]["content"]["parts"][1]["functionCall"]["name"] == "get_weather"


def test_aggregate_of_nothing():
    result = aggregate(GEMINI, []).result()
    genai_types.GenerateContentResponse.model_validate(result)
    assert result == {"candidates": [{"content": {"role": "model", "parts": []}, "index": 0, "finishReason": "MAX_TOKENS"}]}


@pytest.mark.parametrize(
    ("status", "grpc", "error_class"),
    [
        (400, "INVALID_ARGUMENT", genai_errors.ClientError),
        (403, "PERMISSION_DENIED", genai_errors.ClientError),
        (404, "NOT_FOUND", genai_errors.ClientError),
        (429, "RESOURCE_EXHAUSTED", genai_errors.ClientError),
        (500, "INTERNAL", genai_errors.ServerError),
        (503, "UNAVAILABLE", genai_errors.ServerError),
        (504, "DEADLINE_EXCEEDED", genai_errors.ServerError),
    ],
)
def test_error_body(status, grpc, error_class):
    body = GEMINI.error_body(status, "no upstream key left")
    assert json.loads(body) == {"error": {"code": status, "message": "no upstream key left", "status": grpc}}
    with pytest.raises(error_class, match="no upstream key left"):
        gemini_chunks(body, status)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncated_ending_carries_a_counted_usage_of_the_sdk_type(name):
    """The last chunk carries a usageMetadata like the vendor's last: the prompt count reported (else 0), the
    candidates counted as one token per chunk with parts sent (or the reported count if more), their total."""
    upstream = payloads(SAMPLES[name])
    for k in range(len(upstream)):
        _, out = cut(GEMINI, SAMPLES[name], k, request=REQUEST)
        ending = exactly(genai_types.GenerateContentResponse, payloads(out)[-1])
        usage = ending.usage_metadata
        reported = upstream[k - 1]["usageMetadata"] if k else {}
        counted = sum(1 for chunk in upstream[:k] if chunk["candidates"][0]["content"].get("parts"))
        candidates = max(reported.get("candidatesTokenCount", 0), counted)
        thoughts = reported.get("thoughtsTokenCount", 0)
        prompt = reported.get("promptTokenCount", 0)
        assert (usage.prompt_token_count, usage.candidates_token_count) == (prompt, candidates), k
        assert usage.total_token_count == prompt + candidates + thoughts
        assert gemini_chunks(out)[-1].usage_metadata == usage


def through(body: bytes):
    """What a Gemini client is sent for an upstream `body`: read by the protocol's parser, repaired, ended."""
    parser, repairer = GEMINI.parser(), GEMINI.repairer(REQUEST)
    out = b"".join(repairer.feed(e) for e in parser.feed(body) + parser.close())
    return repairer, out + repairer.end()


@pytest.mark.parametrize("ending", [b"\r\n", b""])
def test_a_last_chunk_without_its_blank_line_reaches_the_client_as_the_sdk_reads_it(ending):
    """google-genai yields the `data:` line a stream ends on even without the blank line after it."""
    body = samples.GEMINI_TEXT[: -len(b"\r\n\r\n")] + ending
    (*_, last) = gemini_chunks(body)
    assert last.candidates[0].finish_reason == genai_types.FinishReason.STOP
    repairer, out = through(body)
    assert repairer.complete and not repairer.failed
    assert text_of(gemini_chunks(out)) == samples.GEMINI_TEXT_ANSWER
    assert gemini_chunks(out)[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert_only_data_lines(out.replace(b"\r\n", b"\n"), b"\n")  # (a last line with no line end gets LF)


def test_a_last_chunk_cut_inside_its_json_is_still_ended_as_truncated():
    body = samples.GEMINI_TEXT[: -len(b"}\r\n\r\n")]
    repairer, out = through(body)
    assert not repairer.failed
    assert gemini_chunks(out)[-1].candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS
    assert_only_data_lines(out, b"\r\n")
