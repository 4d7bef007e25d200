"""Conversation state across protocols, through the real proxy and the official SDKs: what a client of another
protocol cannot carry between turns is put back by Rotator on the next turn.

- The field cache: a Gemini thoughtSignature and an Anthropic signed thinking block, which a Chat client never
  sees, reach the vendor again with the replayed tool call; thinking without a signature is never forged.
- Responses continuity: a `previous_response_id` served by a Chat Completions target carries the whole
  conversation to it.

The routes for all of these are in one config, so the tests share one mitmdump.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.support.clients import WEATHER_SCHEMA
from tests.support.fake_vendor import TEXT, TOOL_ARGUMENTS, TOOL_NAME, Fault, split_text

pytestmark = pytest.mark.e2e

GEMINI_SIGNATURE = "Z2VtaW5pLXRob3VnaHQtc2lnbmF0dXJl"  # base64, as Gemini's are
ANTHROPIC_THINKING = "The user wants the weather: call the tool."
ANTHROPIC_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"
QUESTION = "What is the weather in Paris?"
RESULT = "18C, cloudy"
ANSWER = "It is 18C and cloudy."
FOLLOW_UP = "And tomorrow?"

CHAT_TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "parameters": WEATHER_SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": TOOL_NAME, "parameters": WEATHER_SCHEMA}]


@pytest.fixture
def routed(rotator, fake_vendor):
    return rotator(
        providers={"deepseek": {"kind": "openai", "base_url": f"{fake_vendor.url}/v1", "keys": ["sk-deepseek-1"]}},
        routes=[
            {"models": ["chat-via-gemini"], "targets": ["gemini/gemini-3-pro-preview"]},
            {"models": ["chat-via-claude"], "targets": ["anthropic/claude-opus-4-6"]},
            {"models": ["responses-via-chat"], "targets": ["deepseek/deepseek-chat"]},
            {"models": ["responses-with-fallback"], "targets": ["openai", "deepseek/deepseek-chat"]},
        ],
    )


def chat_turn(model: str, messages: list[dict], stream: bool, **extra) -> dict:
    """One Chat call; the assistant message as the client sends it back on its next turn."""
    client = openai.OpenAI()
    kwargs = dict(model=model, messages=messages, tools=CHAT_TOOLS, **extra)
    if stream:
        with client.chat.completions.stream(**kwargs) as s:
            completion = s.get_final_completion()
    else:
        completion = client.chat.completions.create(**kwargs)
    message = completion.choices[0].message
    return {"role": "assistant", "content": message.content, "tool_calls": [
        {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in message.tool_calls or ()]}


def tool_turn(model: str, stream: bool, **extra) -> tuple[dict, str]:
    """Turn one answered with a tool call, turn two with its result: what the vendor received on turn two, and
    everything the client saw of turn one."""
    question = [{"role": "user", "content": QUESTION}]
    assistant = chat_turn(model, question, stream, **extra)
    [call] = assistant["tool_calls"]
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == (TOOL_NAME, TOOL_ARGUMENTS)
    result = {"role": "tool", "tool_call_id": call["id"], "content": RESULT}
    chat_turn(model, [*question, assistant, result], stream, **extra)
    return assistant, call["id"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_gemini_thought_signature_comes_back_with_its_function_call(fake_vendor, routed, stream):
    fake_vendor.script(Fault.tool_call().signed_thinking(signature=GEMINI_SIGNATURE), Fault.ok(ANSWER))

    assistant, _ = tool_turn("chat-via-gemini", stream)

    assert GEMINI_SIGNATURE not in json.dumps(assistant)  # the Chat client never saw it
    first, second = fake_vendor.wait_for(2)
    assert first.protocol == second.protocol == "gemini"
    model_turn = next(c for c in second.body["contents"] if c["role"] == "model")
    [call] = [p for p in model_turn["parts"] if "functionCall" in p]
    assert call["functionCall"]["name"] == TOOL_NAME
    assert call["thoughtSignature"] == GEMINI_SIGNATURE


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_anthropic_thinking_block_comes_back_before_its_tool_use(fake_vendor, routed, stream):
    thinking = Fault.tool_call().signed_thinking(ANTHROPIC_THINKING, ANTHROPIC_SIGNATURE)
    fake_vendor.script(thinking, Fault.ok(ANSWER))

    assistant, call_id = tool_turn("chat-via-claude", stream, reasoning_effort="medium")

    assert ANTHROPIC_SIGNATURE not in json.dumps(assistant)
    first, second = fake_vendor.wait_for(2)
    assert second.protocol == "anthropic" and second.body["thinking"]["type"] == "adaptive"  # opus 4.6
    replayed = next(m for m in second.body["messages"] if m["role"] == "assistant")
    assert replayed["content"][0] == {"type": "thinking", "thinking": ANTHROPIC_THINKING,
                                      "signature": ANTHROPIC_SIGNATURE}
    assert [b["type"] for b in replayed["content"]] == ["thinking", "tool_use"]
    assert replayed["content"][1]["id"] == call_id


def test_thinking_without_a_signature_is_not_forged_for_anthropic(fake_vendor, routed):
    """A tool call Rotator never served (no signed thinking kept for it): the Chat client's reasoning text is not
    sent as thinking, and the request goes with thinking off, which Anthropic accepts."""
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": None, "reasoning_content": "I should call the tool.",
         "tool_calls": [{"id": "call_never_served", "type": "function",
                         "function": {"name": TOOL_NAME, "arguments": json.dumps(TOOL_ARGUMENTS)}}]},
        {"role": "tool", "tool_call_id": "call_never_served", "content": RESULT},
    ]
    completion = openai.OpenAI().chat.completions.create(model="chat-via-claude", messages=history,
                                                         tools=CHAT_TOOLS, reasoning_effort="medium")
    assert completion.choices[0].finish_reason == "stop"

    [sent] = fake_vendor.wait_for(1)
    assert sent.body["thinking"] == {"type": "disabled"}  # said, not left out: some models think when it is
    assert all(block["type"] != "thinking" for m in sent.body["messages"] if isinstance(m["content"], list)
               for block in m["content"])


def responses_turn(stream: bool, model: str = "responses-via-chat", **kwargs):
    client = openai.OpenAI()
    if stream:
        with client.responses.stream(model=model, tools=RESPONSES_TOOLS, **kwargs) as s:
            return s.get_final_response()
    return client.responses.create(model=model, tools=RESPONSES_TOOLS, **kwargs)


@pytest.mark.parametrize("store", [True, False], ids=["stored", "store-false"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_previous_response_id_served_by_a_chat_target_carries_the_whole_conversation(fake_vendor, routed, stream,
                                                                                     store):
    fake_vendor.script(Fault.tool_call(), Fault.ok(ANSWER), Fault.ok())

    first = responses_turn(stream, input=QUESTION, instructions="Be brief.", store=store)
    [call] = [item for item in first.output if item.type == "function_call"]
    second = responses_turn(stream, previous_response_id=first.id, store=store,
                            input=[{"type": "function_call_output", "call_id": call.call_id, "output": RESULT}])
    assert second.output_text == ANSWER
    responses_turn(stream, previous_response_id=second.id, input=FOLLOW_UP, store=store)

    requests = fake_vendor.wait_for(3)
    assert {r.protocol for r in requests} == {"chat"}
    assert all(r.model == "deepseek-chat" for r in requests)
    messages = requests[2].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[0]["content"] in (QUESTION, [{"type": "text", "text": QUESTION}])
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert json.loads(messages[1]["tool_calls"][0]["function"]["arguments"]) == TOOL_ARGUMENTS
    assert (messages[2]["tool_call_id"], messages[2]["content"]) == (call.call_id, RESULT)
    assert messages[3]["content"] == ANSWER
    assert FOLLOW_UP in json.dumps(messages[4]["content"])
    # Instructions are not inherited through previous_response_id (as with OpenAI): turn one's only.
    assert requests[0].body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_an_unknown_previous_response_id_is_openais_400_without_a_vendor_call(fake_vendor, routed):
    with pytest.raises(openai.BadRequestError) as caught:
        responses_turn(False, previous_response_id="resp_never_served", input=FOLLOW_UP)
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"
    assert not fake_vendor.requests


def test_a_conversation_begun_on_a_responses_provider_continues_on_its_fallback(fake_vendor, routed):
    """Turn one is served by OpenAI's Responses API itself; on turn two OpenAI does not know the model any more
    (404) and the route falls back to a Chat target, which gets turn one's items from Rotator."""
    fake_vendor.script(Fault.tool_call(), Fault.status(404), Fault.ok(ANSWER))

    first = responses_turn(True, "responses-with-fallback", input=QUESTION)
    [call] = [item for item in first.output if item.type == "function_call"]
    second = responses_turn(True, "responses-with-fallback", previous_response_id=first.id,
                            input=[{"type": "function_call_output", "call_id": call.call_id, "output": RESULT}])
    assert second.output_text == ANSWER

    native, refused, fallback = fake_vendor.wait_for(3)
    assert (native.protocol, refused.protocol, fallback.protocol) == ("responses", "responses", "chat")
    assert refused.body["previous_response_id"] == first.id  # OpenAI itself resolves its own response
    messages = fallback.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2]["content"] == RESULT


def test_a_large_turn_served_natively_is_kept_whole_for_the_fallback_of_the_next(fake_vendor, routed):
    """Turn one's request is 4 MiB or more, served by OpenAI's Responses API itself (a body of that size goes
    upstream as the pieces it came in, unless Rotator must read it whole); turn two falls back to a Chat target,
    which gets turn one's input from Rotator: the whole text, not the stand-ins of a large body's skeleton."""
    big = "All work and no play makes Jack a dull boy. " * (5 * (1 << 20) // 44)
    fake_vendor.script(Fault.ok(), Fault.status(404), Fault.ok(ANSWER))

    first = responses_turn(False, "gpt-5", input=big)  # (no route names gpt-5: OpenAI serves it)
    second = responses_turn(False, "responses-with-fallback", previous_response_id=first.id, input=FOLLOW_UP)
    assert second.output_text == ANSWER

    native, refused, fallback = fake_vendor.wait_for(3)
    assert (native.protocol, refused.protocol, fallback.protocol) == ("responses", "responses", "chat")
    messages = fallback.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] in (big, [{"type": "text", "text": big}])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_previous_response_cut_and_continued_carries_the_whole_answer_to_the_next_turn(fake_vendor, routed,
                                                                                        stream):
    """Turn one's answer is cut after its first words and continued (a second vendor call); turn two names it by
    its id: the vendor gets the answer the client got, whole, not the part before the cut."""
    cut_after = 2
    prefix = "".join(split_text(TEXT)[:cut_after])
    fake_vendor.script(Fault.cut_after(deltas=cut_after, how="reset"), Fault().ok(TEXT[len(prefix):]), Fault.ok())

    first = responses_turn(stream, input=QUESTION, store=True)
    assert first.output_text == TEXT
    responses_turn(stream, previous_response_id=first.id, input=FOLLOW_UP, store=True)

    *_, follow_up = fake_vendor.wait_for(3)
    messages = follow_up.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == TEXT
