"""The wire changes through 2026-11 (docs: wire-2026-11.md) that the translators and repairers must follow: each test
is one item of that addendum a client would otherwise see go wrong."""

import json

import pytest

import protocols.translate as translate
from protocols.families.anthropic import CREDENTIAL as ANTHROPIC_CREDENTIAL
from protocols.openai_responses.stream import ResponsesAggregator, ResponsesRepairer
from protocols.unified import Request
from tests.support.streams import parse

CHAT_REQUEST = {"model": "m", "messages": [{"role": "user", "content": "Write the whole report."}]}


def sse(*payloads: dict, named: bool = False) -> bytes:
    return b"".join((f"event: {p['type']}\n".encode() if named else b"") + b"data: " + json.dumps(p).encode() + b"\n\n"
                    for p in payloads)


# --- Gemini's CONTINUATION stop (a cut of the per-request token limit, resumable only by a Gemini client's token)

def _continuation_chunk() -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": "The first half"}]},
                            "finishReason": "CONTINUATION", "continuationToken": "Q0FGRQ==", "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}}


@pytest.mark.parametrize(("client", "cap"), [("openai_chat", "length"), ("anthropic_messages", "max_tokens"),
                                             ("openai_responses", "max_output_tokens")])
def test_a_gemini_continuation_stop_reaches_another_protocols_client_as_a_token_cap_not_a_filter(client, cap):
    request = translate.request_to_ir("openai_chat", CHAT_REQUEST)
    answer = translate.translate_answer(_continuation_chunk(), "gemini", client, request)
    said = {"openai_chat": lambda a: a["choices"][0]["finish_reason"],
            "anthropic_messages": lambda a: a["stop_reason"],
            "openai_responses": lambda a: (a.get("incomplete_details") or {}).get("reason")}[client](answer)
    assert said == cap

    tr = translate.stream_translator("gemini", client, Request(model="m", stream=True))
    out = b"".join(tr.feed(e) for e in parse(sse(_continuation_chunk())))
    assert tr.complete and cap.encode() in out and b"content_filter" not in out and b"refusal" not in out


# --- Gemini 3 rejects a replayed function call without a thought signature

TOOL_LOOP = {
    "model": "claude-opus-4-8", "max_tokens": 1000,
    "tools": [{"name": "read_file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
    "messages": [
        {"role": "user", "content": "Read a.txt and b.txt"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Reading both."},
            {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a.txt"}},
            {"type": "tool_use", "id": "toolu_2", "name": "read_file", "input": {"path": "b.txt"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "A"},
                                     {"type": "tool_result", "tool_use_id": "toolu_2", "content": "B"}]},
    ],
}


def test_a_tool_loop_another_vendor_began_falls_back_to_gemini_3_with_its_first_call_signed_by_the_skip_value():
    body = translate.translate_request(dict(TOOL_LOOP, model="gemini-3-flash-preview"), "anthropic_messages", "gemini")
    model_turn = next(c for c in body["contents"] if c["role"] == "model")
    calls = [p for p in model_turn["parts"] if "functionCall" in p]
    assert calls[0].get("thoughtSignature") == "skip_thought_signature_validator"
    assert "thoughtSignature" not in calls[1]  # only the first call of a step carries one


def test_a_gemini_signature_of_its_own_is_sent_back_as_it_came():
    gemini = {"contents": [
        {"role": "user", "parts": [{"text": "Read a.txt"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "read_file", "args": {"path": "a.txt"}},
                                     "thoughtSignature": "c2lnbmVk"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "read_file", "response": {"output": "A"}}}]}],
        "tools": [{"functionDeclarations": [{"name": "read_file"}]}]}
    ir = translate.request_to_ir("gemini", gemini, "gemini-3-flash-preview")
    body = translate.request_from_ir("gemini", ir, translate.model_capabilities("gemini", "gemini-3-flash-preview"))[0]
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == "c2lnbmVk"


# --- Responses `configuration_update` input items (Codex): in force from there on, so for the request's answer

CONFIGURED = {
    "model": "gpt-6.1-sol", "reasoning": {"effort": "low"},
    "input": [
        {"role": "user", "content": "Plan it."},
        {"type": "configuration_update", "reasoning": {"effort": "high"},
         "text": {"format": {"type": "json_schema", "name": "plan", "schema": {"type": "object"}}}},
        {"role": "user", "content": "Now the plan, as JSON."},
    ],
}


def test_a_responses_configuration_update_sets_the_effort_and_format_a_translated_request_asks_for():
    chat = translate.translate_request(dict(CONFIGURED, model="gpt-5.5"), "openai_responses", "openai_chat")
    assert chat["reasoning_effort"] == "high"
    assert chat["response_format"]["json_schema"]["schema"] == {"type": "object"}
    claude = translate.translate_request(dict(CONFIGURED, model="claude-opus-4-8"), "openai_responses",
                                         "anthropic_messages")
    assert claude["output_config"] == {"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}}


# --- Claude Code's billing line (system[0], a new hash on every request) is Anthropic's business only

def _claude_code(cch: str) -> dict:
    return {"model": "claude-opus-4-8", "max_tokens": 64000, "messages": [{"role": "user", "content": "hi"}],
            "system": [{"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli; "
                                                f"cch={cch};"},
                       {"type": "text", "text": "You are Claude Code."}]}


@pytest.mark.parametrize("target", ["openai_chat", "openai_responses", "gemini"])
def test_claude_codes_billing_line_does_not_reach_another_vendor_nor_break_its_prompt_cache(target):
    first = translate.translate_request(_claude_code("0a1b2c"), "anthropic_messages", target)
    second = translate.translate_request(_claude_code("9f8e7d"), "anthropic_messages", target)
    assert "x-anthropic-billing-header" not in json.dumps(first)
    assert first == second
    assert "You are Claude Code." in json.dumps(first)


# --- a Responses custom call (Codex's `exec`) cut mid-input is not an answer to run

CUT_CUSTOM_CALL = sse(
    {"type": "response.created", "sequence_number": 0,
     "response": {"id": "resp_1", "object": "response", "status": "in_progress", "model": "gpt-5.6", "output": []}},
    {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
     "item": {"id": "ctc_1", "type": "custom_tool_call", "call_id": "call_1", "name": "exec", "input": "",
              "status": "in_progress"}},
    {"type": "response.custom_tool_call_input.delta", "sequence_number": 2, "output_index": 0, "item_id": "ctc_1",
     "delta": "rm -rf build/tmp && make"},
    named=True,
)


def test_a_custom_call_cut_mid_input_is_left_out_of_the_folded_answer_as_a_cut_function_call_is():
    aggregator = ResponsesAggregator({"model": "gpt-5.6"})
    for event in parse(CUT_CUSTOM_CALL):
        aggregator.feed(event)
    assert aggregator.truncated
    assert aggregator.result()["output"] == []


def test_a_custom_call_cut_mid_input_ends_the_stream_incomplete_with_the_input_streamed_so_far():
    repairer = ResponsesRepairer({"model": "gpt-5.6"})
    for event in parse(CUT_CUSTOM_CALL):
        repairer.feed(event)
    ending = json.loads(parse(repairer.length_ending())[-1].data)
    item = ending["response"]["output"][0]
    assert item["status"] == "incomplete" and item["input"] == "rm -rf build/tmp && make"
    assert ending["response"]["usage"]["output_tokens"] >= 1


# --- the SDK's workspace and user-profile headers name the client's own Anthropic account

def test_a_pooled_anthropic_key_goes_without_the_clients_workspace_and_user_profile_headers():
    client = [("x-api-key", "sk-ant-api03-client"), ("anthropic-workspace-id", "wrkspc_client"),
              ("anthropic-user-profile-id", "uprof_client"), ("anthropic-version", "2026-10-21")]
    headers, _ = ANTHROPIC_CREDENTIAL.apply(client, "", "sk-ant-api03-pooled")
    names = {name.lower() for name, _ in headers}
    assert "anthropic-workspace-id" not in names and "anthropic-user-profile-id" not in names
    assert ("x-api-key", "sk-ant-api03-pooled") in headers and ("anthropic-version", "2026-10-21") in headers


# --- output caps other vendors refuse

@pytest.mark.parametrize("target", ["openai_chat", "openai_responses", "gemini", "bedrock_converse"])
def test_an_anthropic_cache_warm_up_is_not_sent_to_another_vendor_as_a_zero_token_answer(target):
    warm_up = {"model": "claude-opus-4-8", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}
    body = translate.translate_request(warm_up, "anthropic_messages", target)
    cap = (body.get("max_tokens") or body.get("max_output_tokens")
           or body.get("generationConfig", {}).get("maxOutputTokens") or body.get("inferenceConfig", {}).get("maxTokens"))
    assert cap == (16 if target == "openai_responses" else 1)


@pytest.mark.parametrize(("asked", "sent"), [(1, 16), (15, 16), (16, 16), (900, 900)])
def test_a_responses_target_is_never_asked_for_fewer_output_tokens_than_it_takes(asked, sent):
    chat = {**CHAT_REQUEST, "max_tokens": asked}
    assert translate.translate_request(chat, "openai_chat", "openai_responses")["max_output_tokens"] == sent
    assert translate.translate_request(chat, "openai_chat", "gemini")["generationConfig"]["maxOutputTokens"] == asked


# --- a client's trailing assistant turn (Chat, Responses and Gemini take one; Claude 4.6 and later refuse prefill)

def _prefilled(model: str, text: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Name a colour."},
                                         {"role": "assistant", "content": text}]}


@pytest.mark.parametrize("model", ["claude-opus-4-8", "claude-sonnet-4-6", "claude-some-future-model"])
def test_a_trailing_assistant_turn_to_a_claude_that_refuses_prefill_is_followed_by_a_note_asking_to_continue_it(model):
    body = translate.translate_request(_prefilled(model, "The colour is"), "openai_chat", "anthropic_messages")
    *_, turn, note = body["messages"]
    assert turn == {"role": "assistant", "content": [{"type": "text", "text": "The colour is"}]}
    assert note["role"] == "user" and "Continue your last message" in note["content"][0]["text"]


def test_a_trailing_assistant_turn_to_a_claude_that_takes_prefill_is_sent_as_a_prefill_without_trailing_whitespace():
    body = translate.translate_request(_prefilled("claude-sonnet-4-5", "The colour is \n"), "openai_chat",
                                       "anthropic_messages")
    assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "The colour is"}]}
    blank = translate.translate_request(_prefilled("claude-sonnet-4-5", "  "), "openai_chat", "anthropic_messages")
    assert blank["messages"][-1]["role"] == "user"  # (nothing left to prefill: Anthropic refuses an empty turn)


def test_a_trailing_tool_call_is_not_taken_for_a_prefill():
    chat = {"model": "claude-opus-4-8", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}]}
    body = translate.translate_request(chat, "openai_chat", "anthropic_messages")
    assert body["messages"][-1]["role"] == "assistant"


# --- Gemini ends that say the request or the answer was broken

def _broken_chunk(reason: str) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": "The first"}]}, "finishReason": reason}]}


@pytest.mark.parametrize("reason", ["MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE"])
@pytest.mark.parametrize("client", ["openai_chat", "anthropic_messages", "openai_responses"])
def test_a_gemini_stream_ended_as_broken_reaches_another_protocols_client_as_an_error_not_a_stop(reason, client):
    tr = translate.stream_translator("gemini", client, Request(model="m", stream=True))
    out = b"".join(tr.feed(e) for e in parse(sse(_broken_chunk(reason))))
    assert tr.failed and b"content_filter" not in out and b"refusal" not in out and b"end_turn" not in out
    assert reason.encode() in out  # (the client is told why)


@pytest.mark.parametrize("reason", ["MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE"])
def test_a_gemini_answer_ended_as_broken_is_no_answer_for_another_protocols_client(reason):
    request = translate.request_to_ir("openai_chat", CHAT_REQUEST)
    with pytest.raises(translate.TranslationError, match=reason):
        translate.translate_answer(_broken_chunk(reason), "gemini", "openai_chat", request)
