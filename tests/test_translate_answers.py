"""Non-stream answer and error translation, read back by each client protocol's official SDK."""

import json

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

import protocols.translate as translate
from protocols.unified import Request
from tests.support import fake_vendor
from tests.support import translate_samples as S
from tests.support.streams import parse
from tests.support.translate_sdk import read, view

PROTOCOLS = tuple(S.ANSWERS)
PAIRS = [(a, b) for a in PROTOCOLS for b in PROTOCOLS if a != b]
REQUEST = Request(model="client-model")
CALLS = [("get_weather", S.WEATHER_ARGS), ("get_time", S.TIME_ARGS)]
# The same usage in every protocol: prompt 1200 with 1000 read from cache, output 90: counted once everywhere.
USAGE = (S.PROMPT_TOKENS, S.CACHE_READ, S.OUTPUT_TOKENS)


def served(upstream: str, client: str, body: dict):
    """The client SDK's view of the upstream's answer translated for it."""
    out = translate.translate_answer(body, upstream, client, REQUEST)
    return view(client, read(client, json.dumps(out).encode())), out


@pytest.mark.parametrize(("upstream", "client"), PAIRS)
def test_an_answer_with_reasoning_text_and_parallel_calls_reaches_the_client_whole(upstream, client):
    seen, _ = served(upstream, client, S.ANSWERS[upstream])
    assert seen["text"] == S.ANSWER_TEXT
    assert seen["reasoning"] == S.THINKING
    assert [(name, args) for _, name, args in seen["calls"]] == CALLS
    assert all(call_id for call_id, _, _ in seen["calls"])
    assert seen["finish"] == "tool_calls"  # in the client's own terms (tool_use, STOP with calls, ...)
    assert seen["usage"] == USAGE


@pytest.mark.parametrize("client", PROTOCOLS)
def test_tool_call_ids_survive_and_gemini_gets_stable_ones(client):
    for upstream in PROTOCOLS:
        if upstream == client:
            continue
        ids = [call_id for call_id, _, _ in served(upstream, client, S.ANSWERS[upstream])[0]["calls"]]
        if upstream == "gemini":  # Gemini gave none: stable ids, the same for the same calls
            assert ids == [call_id for call_id, _, _ in served(upstream, client, S.ANSWERS[upstream])[0]["calls"]]
            assert len(set(ids)) == 2
        else:
            expected = [c["id"] for c in (S.ANSWERS["anthropic_messages"]["content"]) if c["type"] == "tool_use"]
            if upstream != "anthropic_messages":
                expected = ["call_Wd3Yq7uB1", "call_Xk9Lm2cQ4"]
            assert ids == expected


@pytest.mark.parametrize("client", PROTOCOLS)
def test_tool_use_is_decided_by_the_calls_not_the_finish_reason(client):
    # OpenAI says "stop" for a named tool_choice even with tool calls; Gemini always says STOP.
    chat = json.loads(json.dumps(S.CHAT_ANSWER))
    chat["choices"][0]["finish_reason"] = "stop"
    if client != "openai_chat":
        assert served("openai_chat", client, chat)[0]["finish"] == "tool_calls"
    text_only = {**S.ANTHROPIC_ANSWER, "content": [{"type": "text", "text": "hi"}], "stop_reason": "tool_use"}
    if client != "anthropic_messages":
        assert served("anthropic_messages", client, text_only)[0]["finish"] == "stop"


@pytest.mark.parametrize(("upstream", "client"), PAIRS)
def test_a_token_capped_answer_says_so_in_the_client_protocol(upstream, client):
    body = {
        "openai_chat": {**S.CHAT_ANSWER, "choices": [{"index": 0, "finish_reason": "length",
                                                       "message": {"role": "assistant", "content": "partial"}}]},
        "openai_responses": {**S.RESPONSES_ANSWER, "status": "incomplete",
                             "incomplete_details": {"reason": "max_output_tokens"}, "output": [
                                 {"id": "msg_1", "type": "message", "status": "incomplete", "role": "assistant",
                                  "content": [{"type": "output_text", "text": "partial", "annotations": []}]}]},
        "anthropic_messages": {**S.ANTHROPIC_ANSWER, "content": [{"type": "text", "text": "partial"}],
                               "stop_reason": "max_tokens"},
        "gemini": {**S.GEMINI_ANSWER, "candidates": [{"content": {"role": "model", "parts": [{"text": "partial"}]},
                                                      "finishReason": "MAX_TOKENS", "index": 0}]},
    }[upstream]
    seen, _ = served(upstream, client, body)
    assert (seen["text"], seen["finish"]) == ("partial", "length")


def test_a_gemini_safety_stop_and_a_blocked_prompt_read_as_filtered():
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "I can"}]}, "finishReason": "SAFETY"}]}
    assert served("gemini", "openai_chat", body)[0]["finish"] == "content_filter"
    assert served("gemini", "anthropic_messages", body)[0]["finish"] == "content_filter"  # stop_reason refusal
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 5}}
    assert served("gemini", "openai_responses", blocked)[0]["finish"] == "content_filter"


@pytest.mark.parametrize("client", PROTOCOLS)
def test_the_fake_vendors_own_answers_translate(client):
    """The fake vendor's non-stream bodies (what the end-to-end tests get) read in every other protocol."""
    for upstream, make in (("openai_chat", fake_vendor.chat_body), ("openai_responses", fake_vendor.responses_body),
                           ("anthropic_messages", fake_vendor.anthropic_body), ("gemini", fake_vendor.gemini_body)):
        if upstream == client:
            continue
        for fault in (fake_vendor.Fault(), fake_vendor.Fault().tool_call(text="Checking.")):
            ctx = fake_vendor.Ctx(0, "m", 1761000000, {"model": "m"}, fault)
            seen, _ = served(upstream, client, make(ctx))
            assert seen["text"] == fault.text
            assert [(n, a) for _, n, a in seen["calls"]] == ([(fault.tool[0], json.loads(fault.tool[1]))]
                                                             if fault.tool else [])
            assert seen["usage"][0] == fake_vendor.INPUT_TOKENS


def test_anthropic_answers_keep_their_signature_only_for_anthropic_and_show_others_as_thinking():
    _, out = served("gemini", "anthropic_messages", S.GEMINI_ANSWER)
    thinking = out["content"][0]
    assert thinking == {"type": "thinking", "thinking": S.THINKING, "signature": ""}
    _, out = served("anthropic_messages", "gemini", S.ANTHROPIC_ANSWER)
    assert S.ANTHROPIC_SIGNATURE not in json.dumps(out)
    _, out = served("gemini", "openai_responses", S.GEMINI_ANSWER)
    assert S.GEMINI_SIGNATURE not in json.dumps(out) and "encrypted_content" not in json.dumps(out)


# --- errors

ERROR_CASES = [
    # (upstream, status, upstream body) -> (status the client sees, what its SDK raises)
    ("anthropic_messages", 429, fake_vendor.error_body("anthropic", 429, "Number of request tokens has exceeded")),
    ("anthropic_messages", 529, fake_vendor.error_body("anthropic", 529, "Overloaded")),
    ("gemini", 429, fake_vendor.error_body("gemini", 429, "Resource has been exhausted")),
    ("openai_chat", 400, fake_vendor.error_body("chat", 400, "Invalid value for 'model'")),
    ("openai_chat", 503, fake_vendor.error_body("chat", 503, "The server is overloaded")),
]
RAISES = {
    "openai_chat": {400: openai.BadRequestError, 401: openai.AuthenticationError, 429: openai.RateLimitError,
                    503: openai.InternalServerError, 529: openai.InternalServerError},
    "openai_responses": {400: openai.BadRequestError, 401: openai.AuthenticationError, 429: openai.RateLimitError,
                         503: openai.InternalServerError, 529: openai.InternalServerError},
    "anthropic_messages": {400: anthropic.BadRequestError, 401: anthropic.AuthenticationError,
                           429: anthropic.RateLimitError, 503: anthropic.InternalServerError,
                           529: anthropic.OverloadedError},
    "gemini": {400: genai_errors.ClientError, 401: genai_errors.ClientError, 429: genai_errors.ClientError,
               503: genai_errors.ServerError, 529: genai_errors.ServerError},
}


@pytest.mark.parametrize(("upstream", "status", "body"), ERROR_CASES)
@pytest.mark.parametrize("client", PROTOCOLS)
def test_a_vendor_error_reaches_the_client_in_its_shape_and_status(upstream, status, body, client):
    sent_status, sent = translate.translate_error(status, json.dumps(body).encode(), client)
    assert sent_status == (503 if status == 529 and client == "gemini" else status)  # Gemini has no 529
    with pytest.raises(RAISES[client][status]) as raised:
        read(client, sent, sent_status)
    message = (body.get("error") or {}).get("message")
    assert message in str(raised.value)


@pytest.mark.parametrize("client", PROTOCOLS)
def test_a_context_overflow_keeps_the_meaning_clients_branch_on(client):
    body = {"type": "error", "error": {"type": "invalid_request_error",
                                       "message": "prompt is too long: 213462 tokens > 200000 maximum"}}
    status, sent = translate.translate_error(400, json.dumps(body).encode(), client)
    error = json.loads(sent)["error"]
    assert status == 400
    if client.startswith("openai"):
        assert error["code"] == "context_length_exceeded"  # what Codex and the OpenAI agents check
    openai_body = fake_vendor.error_body("chat", 400, "This model's maximum context length is 128000 tokens.")
    openai_body["error"]["code"] = "context_length_exceeded"
    _, sent = translate.translate_error(400, json.dumps(openai_body).encode(), "anthropic_messages")
    assert json.loads(sent)["error"]["message"].startswith("prompt is too long")  # what Claude Code checks


def test_a_bad_gemini_key_is_an_authentication_error_elsewhere_and_plain_text_errors_survive():
    body = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                      "status": "INVALID_ARGUMENT", "details": [
                          {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}
    status, sent = translate.translate_error(400, json.dumps(body).encode(), "anthropic_messages")
    assert status == 401 and json.loads(sent)["error"]["type"] == "authentication_error"
    status, sent = translate.translate_error(502, b"<html>Bad gateway</html>", "openai_chat")
    assert status == 502 and json.loads(sent)["error"]["message"] == "<html>Bad gateway</html>"


# --- a stream folded into a non-stream answer (a non-stream client served by a streamed upstream)


@pytest.mark.parametrize("client", PROTOCOLS)
def test_a_stream_folds_into_the_clients_answer(client):
    from tests.support import samples
    for name, (upstream, body) in samples.STREAMS.items():
        if upstream == client:
            continue
        folder = translate.stream_folder(upstream, client, REQUEST)
        for event in parse(body):
            folder.feed(event)
        assert not folder.truncated and folder.error is None
        seen = view(client, read(client, json.dumps(folder.result()).encode()))
        assert seen["finish"] == ("tool_calls" if "tool" in name or "function" in name else "stop"), name


@pytest.mark.parametrize("client", PROTOCOLS)
def test_a_cut_stream_folds_into_a_truncated_answer_without_the_half_written_call(client):
    from tests.support import samples
    events = parse(samples.ANTHROPIC_TOOL_USE)
    cut = next(i for i, e in enumerate(events) if b'\\"Pa"' in e.raw) + 1  # inside the tool call's arguments
    if client == "anthropic_messages":
        return
    folder = translate.stream_folder("anthropic_messages", client, REQUEST)
    for event in events[:cut]:
        folder.feed(event)
    assert folder.truncated
    seen = view(client, read(client, json.dumps(folder.result()).encode()))
    assert (seen["text"], seen["calls"], seen["finish"]) == ("Let me check.", [], "length")


def test_an_error_in_a_folded_stream_is_reported():
    folder = translate.stream_folder("gemini", "openai_chat", REQUEST)
    for event in parse(fake_vendor.stream_error_event("gemini", 0)):
        folder.feed(event)
    assert folder.error == {"message": "The model is overloaded.", "status": 503}
