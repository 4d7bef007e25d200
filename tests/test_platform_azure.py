"""Azure OpenAI and Foundry's wire (protocols/platforms/azure.py, and what the OpenAI protocols' readers know of it):
the paths opened into the vendors' own calls and put back as they came, deployments and the models they serve, a
filter frame that is no first token, a content-filtered ending that is the answer, `-1` windows, the wait a 429
names."""

import json

import pytest

import protocols
from protocols.platforms import azure
from protocols.registry import errors, windows
from protocols.sse import SSEParser
from protocols.vendor_errors import ErrorKind
from tests.support.cloud_faults import FILTERED, PROMPT_FILTER, SAFE

CHAT_BODY = {"model": "prod-a", "messages": [{"role": "user", "content": "hi"}], "stream": True}
CLASSIC = "/openai/deployments/prod-a/chat/completions"
MODELS = {"prod-a": "gpt-5.1", "prod-eu": "gpt-5.1"}


@pytest.mark.parametrize(("path", "plain", "protocol"), [
    (CLASSIC, "/chat/completions", "openai_chat"), ("/openai/v1/chat/completions", "/chat/completions", "openai_chat"),
    ("/openai/responses", "/responses", "openai_responses"), ("/openai/v1/responses", "/responses", "openai_responses"),
    ("/anthropic/v1/messages", "/v1/messages", "anthropic_messages"),
    ("/openai/deployments/d/embeddings", None, None), ("/openai/v1/models", None, None),
    ("/openai/responses/resp_1", None, None)])
def test_each_path_stands_for_its_vendors_own_call(path, plain, protocol):
    assert azure.plain_of(path) == plain
    if protocol is not None:
        assert protocols.detect("POST", azure.sample_path(path)).name == protocol


def test_a_classic_call_opens_with_the_deployments_model_and_goes_back_to_the_clients_deployment():
    envelope = azure.envelope(MODELS)

    path, plain = envelope.opened(CLASSIC, CHAT_BODY)

    assert (path, plain["model"]) == ("/chat/completions", "gpt-5.1")
    assert envelope.envelope_path(CLASSIC, path, plain) == CLASSIC
    assert envelope.envelope_path(CLASSIC, path, {**plain, "model": "gpt-4o"}) == \
        "/openai/deployments/gpt-4o/chat/completions"
    assert json.loads(envelope.enveloped(CHAT_BODY, path, json.dumps(plain).encode()))["model"] == "prod-a"


def test_without_a_deployments_map_the_deployment_is_the_model():
    path, plain = azure.ENVELOPE.opened(CLASSIC, {"messages": []})

    assert plain == {"messages": [], "model": "prod-a"}
    assert azure.ENVELOPE.envelope_path(CLASSIC, path, plain) == CLASSIC
    assert azure.ENVELOPE.enveloped(None, path, b'{"model":"prod-a"}') == b'{"model":"prod-a"}'


def test_a_responses_call_keeps_its_path_and_writes_its_model_as_the_clients_deployment():
    envelope = azure.envelope(MODELS)
    body = {"model": "prod-eu", "input": "hi", "stream": True}

    path, plain = envelope.opened("/openai/responses", body)

    assert (path, plain["model"]) == ("/responses", "gpt-5.1")
    assert envelope.envelope_path("/openai/responses", path, plain) == "/openai/responses"
    assert json.loads(envelope.enveloped(body, path, json.dumps({**plain, "store": False}).encode())) == \
        {**body, "store": False}


def test_a_call_made_for_azure_by_another_client_goes_to_the_v1_api_or_foundry():
    assert azure.ENVELOPE.envelope_path("", "/chat/completions", {}) == "/openai/v1/chat/completions"
    assert azure.ENVELOPE.envelope_path("", "/responses", {}) == "/openai/v1/responses"
    assert azure.ENVELOPE.envelope_path("", "/v1/messages", {}) == "/anthropic/v1/messages"


def test_a_429_names_its_wait_in_words_when_no_header_does():
    body = json.dumps({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation ... have "
                                 "exceeded token rate limit. Please retry after 37 seconds."}}).encode()
    reader = errors("openai", "openai_chat").with_dialects(azure.retry_in_words)

    assert reader.read(429, [], body, 0.0).delay == 37
    headed = reader.read(429, [("retry-after-ms", "6000"), ("retry-after", "6")], body, 0.0)
    assert (headed.kind, headed.delay) == (ErrorKind.RATE_LIMITED, 6)


def test_remaining_of_minus_one_is_no_window():
    said = [("x-ratelimit-remaining-requests", "-1"), ("x-ratelimit-remaining-tokens", "-1"),
            ("x-ratelimit-limit-tokens", "250000")]

    assert windows("openai", "openai_responses").read(200, said, b"", 0.0) == ()
    [tokens] = windows("openai", "openai_chat").read(200, [("x-ratelimit-remaining-tokens", "249000"),
                                                           ("x-ratelimit-limit-tokens", "250000")], b"", 0.0)
    assert tokens.remaining == 249000


# --- what the Chat and Responses readers know of Azure's streams


def sse(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def feed(reader, data: bytes) -> bytes:
    return b"".join(reader.feed(e) for e in SSEParser().feed(data))


FILTER_FRAME = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": PROMPT_FILTER}


def chunk(delta: dict, finish: str | None = None, results: dict | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-11-20",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                         "content_filter_results": results if results is not None else SAFE}]}


def test_the_prompt_filter_frame_and_annotation_frames_are_no_first_token():
    repairer = protocols.get("openai_chat").repairer({"model": "prod-a"})
    note = {"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": None, "content_filter_results": SAFE,
                                             "content_filter_offsets": {"check_offset": 0, "start_offset": 0,
                                                                        "end_offset": 0}}]}

    feed(repairer, sse(FILTER_FRAME) + sse(chunk({"role": "assistant", "content": ""}, results={})) + sse(note))

    assert not repairer.started
    feed(repairer, sse(chunk({"content": "Hello"})))
    assert repairer.started and not repairer.complete


def test_a_content_filter_ending_is_the_answer_even_without_done():
    repairer = protocols.get("openai_chat").repairer({"model": "prod-a"})
    aggregator = protocols.get("openai_chat").aggregator({"model": "prod-a"})
    stream = sse(FILTER_FRAME) + sse(chunk({"content": "Hello"})) + sse(chunk({}, "content_filter", FILTERED))

    out = feed(repairer, stream)
    for e in SSEParser().feed(stream):
        aggregator.feed(e)

    assert out == stream and repairer.complete and not repairer.failed
    assert repairer.end() == b""  # (nothing to end: no truncation written)
    assert not aggregator.truncated
    assert aggregator.result()["choices"][0]["finish_reason"] == "content_filter"


def test_a_content_filter_of_one_choice_of_two_is_no_end_yet():
    repairer = protocols.get("openai_chat").repairer({"model": "m", "n": 2})

    feed(repairer, sse(chunk({}, "content_filter", FILTERED)))

    assert not repairer.complete


def test_a_responses_failure_for_the_filter_is_the_answer_after_content_and_before_it():
    def failed(seq: int) -> bytes:
        payload = {"type": "response.failed", "sequence_number": seq, "response": {
            "id": "resp_1", "status": "failed", "error": {"code": "content_filter", "message": "filtered"}}}
        return b"event: response.failed\n" + sse(payload)

    created = b"event: response.created\n" + sse({"type": "response.created", "sequence_number": 0,
                                                   "response": {"id": "resp_1", "status": "in_progress"}})
    after = protocols.get("openai_responses").repairer({})
    feed(after, created + b"event: response.output_text.delta\n" + sse(
        {"type": "response.output_text.delta", "sequence_number": 1, "output_index": 0, "content_index": 0,
         "delta": "Hel"}) + failed(2))
    before = protocols.get("openai_responses").repairer({})
    feed(before, created + failed(1))

    assert after.started and after.complete and after.end() == b""
    assert not before.started and before.early_error[0] == 400  # (the request's: the client gets it as it came)
