"""Bedrock Converse translated both ways with Chat, Responses, Anthropic Messages and Gemini: the same conversation
survives every translation and each side's SDK takes the body (botocore serializes exactly the Converse body Rotator
writes); answers, reasoning signatures, stop reasons, usage and errors reach each client in its own terms."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols.translate as translate
from protocols.registry import get as protocol
from protocols.registry import model_capabilities
from protocols.unified import (
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    Image,
    Message,
    ReasoningConfig,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    instructions,
)
from tests.support import bedrock_sdk as sdk
from tests.support import converse_samples as C
from tests.support import translate_samples as S
from tests.support.sdk_requests import sdk_accepts
from tests.support.translate_sdk import read, view

OTHERS = tuple(S.REQUESTS)
MODEL_IN_PATH = {"gemini": S.GEMINI_MODEL, C.NAME: C.MODEL}
SAMPLING_MODELS = {"openai_chat": "gpt-4.1", "openai_responses": "gpt-4.1", "anthropic_messages": "claude-sonnet-4-5",
                   "gemini": "gemini-2.5-pro", C.NAME: C.MODEL}
CLAUDE_ON_BEDROCK = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ADAPTIVE_ON_BEDROCK = "global.anthropic.claude-opus-4-6-v1"
LLAMA = "meta.llama3-70b-instruct-v1:0"


def to_ir(protocol: str, body: dict) -> Request:
    return translate.request_to_ir(protocol, body, MODEL_IN_PATH.get(protocol, ""))


def across(body: dict, source: str, target: str) -> dict:
    caps = model_capabilities(protocol(target).family, SAMPLING_MODELS[target])
    return translate.translate_request(body, source, target, MODEL_IN_PATH.get(source, ""), caps=caps)


def portable(request: Request) -> dict:
    """What every protocol can say (as tests/test_translate_requests.py reads it): instructions, turns, text, images,
    calls with parsed arguments, results (an error flagged), tools, tool_choice, sampling. Call ids become labels."""
    labels: dict[str, str] = {}

    def part(p):
        if isinstance(p, Text):
            return ("text", p.text)
        if isinstance(p, ToolCall):
            return ("call", labels.setdefault(p.id, f"call{len(labels)}"), p.name, json.loads(p.arguments or "{}"))
        if isinstance(p, ToolResult):
            return ("result", labels.setdefault(p.call_id, f"call{len(labels)}"),
                    f"Error: {p.text()}" if p.is_error else p.text())
        if isinstance(p, Image):
            return ("image", p.url) if p.url else ("image", p.media_type, p.data)
        return None

    turns: list[list] = []
    for message in request.messages:
        parts = [x for x in map(part, message.parts) if x is not None]
        if message.role in ("system", "developer") or not parts:
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1] += parts
        else:
            turns.append([message.role, parts])
    return {"instructions": instructions(request), "turns": turns,
            "tools": [(t.name, t.description, t.parameters) for t in request.tools],
            "tool_choice": request.tool_choice, "sampling": (request.max_tokens, request.temperature, request.top_p)}


def conversation(first_image: tuple) -> dict:
    return {
        "instructions": S.SYSTEM,
        "turns": [
            ["user", [("text", S.QUESTION), first_image, ("image", "image/png", S.PNG_B64)]],
            ["assistant", [("text", S.PREAMBLE), ("call", "call0", "get_weather", S.WEATHER_ARGS),
                           ("call", "call1", "get_time", S.TIME_ARGS)]],
            ["tool", [("result", "call0", S.WEATHER_RESULT), ("result", "call1", f"Error: {S.TIME_ERROR}")]],
            ["user", [("text", S.FOLLOW_UP)]],
        ],
        "tools": [("get_weather", "Current weather", S.WEATHER_SCHEMA), ("get_time", "Local time", S.TIME_SCHEMA)],
        "tool_choice": ToolChoice("auto"),
        "sampling": (512, 0.2, 0.9),
    }


IN_S3 = conversation(("image", C.S3_IMAGE))  # the Converse conversation, its first image in S3
# Another protocol's conversation through Converse: an image by URL is told in words (Converse takes none).
BY_URL_IN_WORDS = conversation(("text", f"[image: {S.IMAGE_URL}]"))


def test_the_converse_conversation_reads_as_the_others_do_and_is_what_boto3_sends():
    assert portable(to_ir(C.NAME, C.REQUEST)) == IN_S3
    assert sdk.sent_body(C.REQUEST) == C.REQUEST


@pytest.mark.parametrize("target", OTHERS)
def test_a_converse_request_survives_translation_and_the_target_sdk_accepts_it(target):
    body = across(C.REQUEST, C.NAME, target)
    sdk_accepts(target, body)
    assert portable(to_ir(target, body)) == IN_S3


@pytest.mark.parametrize("source", (*OTHERS, C.NAME))
def test_a_request_to_converse_is_one_boto3_sends_and_says_the_same(source):
    body = across(C.REQUEST if source == C.NAME else S.REQUESTS[source], source, C.NAME)
    assert sdk.sent_body(body, C.MODEL) == body  # valid by the service model, and serialized as written
    expected = IN_S3 if source == C.NAME else BY_URL_IN_WORDS
    assert portable(to_ir(C.NAME, body)) == expected


@pytest.mark.parametrize(("source", "signature"), [(C.NAME, C.SIGNATURE), ("anthropic_messages", S.ANTHROPIC_SIGNATURE),
                                                   ("gemini", S.GEMINI_SIGNATURE)])
@pytest.mark.parametrize("target", (*OTHERS, C.NAME))
def test_reasoning_signatures_go_back_only_to_their_issuer(source, signature, target):
    body = C.REQUEST if source == C.NAME else S.REQUESTS[source]
    sent = json.dumps(translate.translate_request(body, source, target, MODEL_IN_PATH.get(source, "")))
    assert (signature in sent) is (source == target)


def test_converse_reasoning_is_replayed_to_converse_with_its_signature():
    body = translate.translate_request(C.REQUEST, C.NAME, C.NAME, C.MODEL)
    assert body["messages"][1]["content"][0] == {"reasoningContent": {"reasoningText": {
        "text": S.THINKING, "signature": C.SIGNATURE}}}
    unsigned = json.loads(json.dumps(C.REQUEST))
    del unsigned["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]["signature"]
    body = translate.translate_request(unsigned, C.NAME, C.NAME, C.MODEL)
    assert "reasoningContent" not in json.dumps(body)  # never forged


def test_tool_ids_other_vendors_write_become_ones_converse_takes_alike_in_call_and_result():
    long_id = "call_" + "x" * 80
    chat = json.loads(json.dumps(S.CHAT_REQUEST).replace("call_Wd3Yq7uB1", "call/Wd3 Yq7").replace(
        "call_Xk9Lm2cQ4", long_id))
    body = translate.translate_request(chat, "openai_chat", C.NAME)
    sdk.sent_body(body)  # the service model's pattern and length
    blocks = [b for m in body["messages"] for b in m["content"]]
    uses = [b["toolUse"]["toolUseId"] for b in blocks if "toolUse" in b]
    results = [b["toolResult"]["toolUseId"] for b in blocks if "toolResult" in b]
    assert uses == results and uses[0] == "call_Wd3_Yq7" and len(uses[1]) == 64


@pytest.mark.parametrize(("choice", "converse"), [
    (ToolChoice("auto"), {"auto": {}}), (ToolChoice(CHOICE_REQUIRED), {"any": {}}),
    (ToolChoice(CHOICE_TOOL, "get_time"), {"tool": {"name": "get_time"}}), (None, None), (ToolChoice("none"), None),
])
def test_tool_choice_both_ways(choice, converse):
    request = Request(model=C.MODEL, messages=[Message("user", [Text("hi")])], tools=[Tool("get_time", None, S.TIME_SCHEMA)],
                      tool_choice=choice)
    body = translate.get(C.NAME).request_from_ir(request)
    assert body["toolConfig"].get("toolChoice") == converse
    assert to_ir(C.NAME, body).tool_choice == (choice if converse is not None else None)


def test_reasoning_goes_to_an_anthropic_model_in_its_own_fields_and_to_no_other():
    chat = {"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high",
            "max_completion_tokens": 40000, "temperature": 0.3}
    budget = translate.translate_request({**chat, "model": CLAUDE_ON_BEDROCK}, "openai_chat", C.NAME)
    assert budget["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 24576}}
    assert "temperature" not in budget["inferenceConfig"]  # Claude refuses it with thinking on
    adaptive = translate.translate_request({**chat, "model": ADAPTIVE_ON_BEDROCK}, "openai_chat", C.NAME)
    assert adaptive["additionalModelRequestFields"] == {"thinking": {"type": "adaptive"}}
    assert adaptive["outputConfig"] == {"effort": "high"}
    llama = translate.translate_request({**chat, "model": LLAMA}, "openai_chat", C.NAME)
    assert "additionalModelRequestFields" not in llama and llama["inferenceConfig"]["temperature"] == 0.3
    for body in (budget, adaptive, llama):
        sdk.sent_body(body)
    assert to_ir(C.NAME, budget).reasoning == ReasoningConfig(None, 24576, include_thoughts=True)
    assert to_ir(C.NAME, adaptive).reasoning == ReasoningConfig("high", include_thoughts=True)


def test_structured_output_and_stop_sequences_translate_both_ways():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    chat = {"model": LLAMA, "messages": [{"role": "user", "content": "hi"}], "stop": ["END"],
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}}
    body = translate.translate_request(chat, "openai_chat", C.NAME)
    assert body["outputConfig"]["textFormat"] == {"type": "json_schema", "structure": {"jsonSchema": {
        "schema": json.dumps(schema), "name": "out"}}}
    assert body["inferenceConfig"]["stopSequences"] == ["END"]
    sdk.sent_body(body)
    back = translate.translate_request(body, C.NAME, "openai_chat", LLAMA)
    assert back["response_format"]["json_schema"]["schema"] == schema and back["stop"] == ["END"]


def test_the_endpoint_names_the_model_as_boto3_does():
    endpoint = translate.get(C.NAME).endpoint
    assert endpoint(C.MODEL, True) == ("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream", "")
    assert endpoint("arn:aws:bedrock:us-east-1:1:inference-profile/x", False) == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse", "")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["role", "content", "text", "messages", "system", "toolUse", "toolResult", "input", "image",
                         "source", "bytes", "format", "reasoningContent", "reasoningText", "toolConfig", "tools",
                         "toolSpec", "inferenceConfig", "additionalModelRequestFields", "thinking", "outputConfig"]),
        inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(body=JSON)
def test_a_malformed_converse_body_is_refused_cleanly(body):
    try:
        request = translate.request_to_ir(C.NAME, body, C.MODEL)
    except translate.TranslationError:
        return
    for target in (*OTHERS, C.NAME):
        translate.get(target).request_from_ir(request)


# --- answers and errors ----------------------------------------------------------------------------------------

REQUEST = Request(model="client-model")
CALLS = [("get_weather", S.WEATHER_ARGS), ("get_time", S.TIME_ARGS)]
USAGE = (S.PROMPT_TOKENS, S.CACHE_READ, S.OUTPUT_TOKENS)


def converse_client_view(body: dict) -> dict:
    return sdk.answer_view(sdk.converse(json.dumps(body).encode()))


@pytest.mark.parametrize("client", OTHERS)
def test_a_converse_answer_reaches_each_client_whole(client):
    out = translate.translate_answer(C.ANSWER, C.NAME, client, REQUEST)
    seen = view(client, read(client, json.dumps(out).encode()))
    assert (seen["text"], seen["reasoning"], seen["finish"], seen["usage"]) == (
        S.ANSWER_TEXT, S.THINKING, "tool_calls", USAGE)
    assert [(name, args) for _, name, args in seen["calls"]] == CALLS
    if client != "gemini":
        assert [c[0] for c in seen["calls"]] == [C.WEATHER_ID, C.TIME_ID]


@pytest.mark.parametrize("upstream", (*OTHERS, C.NAME))
def test_each_vendors_answer_reaches_a_converse_client_as_boto3_reads_it(upstream):
    body = C.ANSWER if upstream == C.NAME else S.ANSWERS[upstream]
    seen = converse_client_view(translate.translate_answer(body, upstream, C.NAME, REQUEST))
    assert (seen["text"], seen["reasoning"], seen["finish"], seen["usage"]) == (
        S.ANSWER_TEXT, S.THINKING, "tool_calls", USAGE)
    assert [(name, args) for _, name, args in seen["calls"]] == CALLS


@pytest.mark.parametrize(("stop", "finish"), [("end_turn", "stop"), ("max_tokens", "length"),
                                              ("model_context_window_exceeded", "length"),
                                              ("guardrail_intervened", "content_filter"),
                                              ("content_filtered", "content_filter"), ("stop_sequence", "stop")])
@pytest.mark.parametrize("client", OTHERS)
def test_stop_reasons_reach_each_client_in_its_terms(stop, finish, client):
    body = {**C.ANSWER, "stopReason": stop, "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}}
    out = translate.translate_answer(body, C.NAME, client, REQUEST)
    assert view(client, read(client, json.dumps(out).encode()))["finish"] == finish


@pytest.mark.parametrize("upstream", OTHERS)
def test_a_capped_answer_of_another_vendor_says_max_tokens_to_a_converse_client(upstream):
    capped = {"openai_chat": {**S.CHAT_ANSWER, "choices": [{"index": 0, "finish_reason": "length", "message": {
                  "role": "assistant", "content": "partial"}}]},
              "openai_responses": {**S.RESPONSES_ANSWER, "status": "incomplete",
                                   "incomplete_details": {"reason": "max_output_tokens"}},
              "anthropic_messages": {**S.ANTHROPIC_ANSWER, "stop_reason": "max_tokens"},
              "gemini": {**S.GEMINI_ANSWER, "candidates": [{**S.GEMINI_ANSWER["candidates"][0],
                                                            "finishReason": "MAX_TOKENS"}]}}[upstream]
    out = translate.translate_answer(capped, upstream, C.NAME, REQUEST)
    assert sdk.converse(json.dumps(out).encode())["stopReason"] == "max_tokens"


@pytest.mark.parametrize("client", OTHERS)
def test_bedrock_throttling_is_a_rate_limit_for_every_client_never_a_context_overflow(client):
    body = json.dumps({"message": C.THROTTLED}).encode()
    status, out = translate.translate_error(429, body, client)
    assert status == 429 and json.loads(out)["error"]["message"] == C.THROTTLED  # AWS's message, read out
    assert b"context_length" not in out and b"prompt is too long" not in out


@pytest.mark.parametrize(("status", "code"), [(429, "ThrottlingException"), (400, "ValidationException"),
                                              (529, "ServiceUnavailableException"), (401, "AccessDeniedException"),
                                              (500, "InternalServerException")])
def test_another_vendors_error_reaches_a_converse_client_as_the_exception_boto3_raises(status, code):
    vendor = json.dumps({"type": "error", "error": {"type": "x", "message": "nope"}}).encode()
    sent_status, body = translate.translate_error(status, vendor, C.NAME)
    with pytest.raises(ClientError) as raised:
        sdk.converse(body, status=sent_status)
    assert raised.value.response["Error"] == {"Code": code, "Message": "nope"}
