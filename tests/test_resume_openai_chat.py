"""Chat Completions resume: a stream cut anywhere in its text, spliced with a continuation (overlapping or exact),
reads in the official SDK's stream accumulator as one completion with the uncut text, one id and finish "stop"; a
tool call is held until it is whole."""

from __future__ import annotations

import json

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat._completions import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

import protocols.resume
from protocols.capabilities import Capabilities
from protocols.resume.asking import INSTRUCTION, NOT_RUN
from tests.support.fake_vendor import TOOL_ARGUMENTS, Fault
from tests.support.resume_runs import cut_and_resume, vendor_stream
from tests.support.streams import parse, payloads

CHAT = "openai_chat"
ANSWER = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun by the river."
FIRST = vendor_stream(CHAT, Fault().ok(ANSWER))
PRELUDE = 1  # the role chunk


def completion(out: bytes):
    state = ChatCompletionStreamState()
    chunks = payloads(out)
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))  # as the SDK reads them
    return state.get_final_completion(), chunks


def resumed(k: int, overlap: int, *, exact: bool = False, continuation: Fault | None = None):
    run = cut_and_resume(CHAT, FIRST, k, None, exact=exact)
    start = len(run.delivered.text) - overlap
    more = vendor_stream(CHAT, (continuation or Fault()).ok(ANSWER[start:]), 1)
    return run, cut_and_resume(CHAT, FIRST, k, more, exact=exact)


def assert_one_completion(out: bytes, text: str = ANSWER) -> None:
    final, chunks = completion(out)
    assert final.choices[0].message.content == text
    assert final.choices[0].finish_reason == "stop"
    assert {c["id"] for c in chunks} == {"chatcmpl-fake0"} and {c["created"] for c in chunks} == {chunks[0]["created"]}
    roles = [c["choices"][0]["delta"].get("role") for c in chunks if c["choices"]]
    assert roles.count("assistant") == 1
    assert out.count(b"data: [DONE]") == 1


def test_a_cut_mid_word_joins_an_overlapping_continuation_into_one_completion():
    run, spliced = resumed(PRELUDE + 5, overlap=12)
    assert run.delivered.resumable and ANSWER.startswith(run.delivered.text)
    assert not spliced.failed
    assert_one_completion(spliced.out)


def test_an_exact_prefill_continuation_joins_without_an_overlap():
    _, spliced = resumed(PRELUDE + 3, overlap=0, exact=True)
    assert_one_completion(spliced.out)


def test_a_continuation_that_started_over_reaches_the_client_not_at_all():
    run = cut_and_resume(CHAT, FIRST, PRELUDE + 12, None, exact=False)
    again = vendor_stream(CHAT, Fault().ok(ANSWER), 1)
    spliced = cut_and_resume(CHAT, FIRST, PRELUDE + 12, again, exact=False)
    assert spliced.failed
    with pytest.raises(openai.LengthFinishReasonError) as ended:  # the SDK's word for an honest "length"
        completion(spliced.out)
    assert ended.value.completion.choices[0].message.content == run.delivered.text


def test_the_usage_chunk_counts_the_output_the_client_got_of_both():
    request = {"model": "fake-model", "stream": True, "stream_options": {"include_usage": True}}
    first = vendor_stream(CHAT, Fault().ok(ANSWER), body=request)
    run = cut_and_resume(CHAT, first, PRELUDE + 5, None, exact=True, request=request)
    more = vendor_stream(CHAT, Fault().ok(ANSWER[len(run.delivered.text):]), 1, body=request)
    spliced = cut_and_resume(CHAT, first, PRELUDE + 5, more, exact=True, request=request)
    later = [p for p in payloads(more) if p.get("usage")][-1]["usage"]
    usage = [p for p in payloads(spliced.out) if p.get("usage")][-1]["usage"]
    assert usage["completion_tokens"] == 5 + later["completion_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


TOOL_FIRST = vendor_stream(CHAT, Fault().tool_call(text="Let me look that up for you right now."))


def test_a_cut_inside_a_tool_call_is_not_resumable_and_a_completed_one_is_asked_again_with_its_result():
    events = payloads(TOOL_FIRST)
    inside = next(i for i, e in enumerate(events) if e["choices"] and e["choices"][0]["delta"].get("tool_calls")) + 2
    cut_inside = cut_and_resume(CHAT, TOOL_FIRST, inside, None, exact=False).delivered
    assert not cut_inside.resumable and "tool call" in cut_inside.why_not
    finished = next(i for i, e in enumerate(events) if e["choices"] and e["choices"][0].get("finish_reason"))
    completed = cut_and_resume(CHAT, TOOL_FIRST, finished, None, exact=False).delivered
    assert completed.resumable
    resumer, caps = protocols.registered(CHAT).resumer, Capabilities(prefill=True)
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}
    method = protocols.resume.method_for(resumer, request, completed, caps)
    assert method == "instruction"  # (a prefill cannot follow a tool call: asked in words)
    body = resumer.continuation_body(request, completed, method, caps)
    said, result, ask = body["messages"][1:]
    assert said["content"] == "Let me look that up for you right now."
    assert json.loads(said["tool_calls"][0]["function"]["arguments"]) == TOOL_ARGUMENTS
    assert result == {"role": "tool", "tool_call_id": said["tool_calls"][0]["id"], "content": NOT_RUN}
    assert ask == {"role": "user", "content": INSTRUCTION} and body["tools"] and body["stream"] is True


def test_continuation_body_prefill_ends_with_the_partial_as_an_assistant_turn():
    resumer = protocols.registered(CHAT).resumer
    delivered = cut_and_resume(CHAT, FIRST, PRELUDE + 4, None, exact=True).delivered
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}
    body = resumer.continuation_body(request, delivered, "prefill", Capabilities(prefill=True, prefill_marker="prefix"))
    assert body["messages"][-1] == {"role": "assistant", "content": delivered.text, "prefix": True}
    assert body["temperature"] == 0.2 and request["messages"] == [{"role": "user", "content": "hi"}]
    asked = resumer.continuation_body(request, delivered, "instruction", Capabilities())
    assert asked["messages"][-2:] == [{"role": "assistant", "content": delivered.text},
                                      {"role": "user", "content": INSTRUCTION}]


def test_several_choices_are_not_resumed():
    run = cut_and_resume(CHAT, FIRST, PRELUDE + 4, None, exact=False, request={"model": "m", "n": 2})
    assert not run.delivered.resumable and run.delivered.why_not == "several choices"


def test_the_holder_sends_a_tool_call_whole_or_not_at_all():
    holder = protocols.registered(CHAT).resumer.holder()
    events = [e.raw for e in parse(TOOL_FIRST)]
    first_call = next(i for i, raw in enumerate(events) if b'"tool_calls"' in raw)
    sent = [holder.feed(raw) for raw in events]
    assert all(s == raw for s, raw in zip(sent[:first_call], events[:first_call], strict=True))  # text: as it came
    finish = next(i for i, raw in enumerate(events) if b'"finish_reason":"tool_calls"' in raw)
    assert all(s == b"" for s in sent[first_call:finish])  # the call's fragments held
    assert sent[finish] == b"".join(events[first_call:finish + 1])  # then all at once, with the finish
    assert sent[finish + 1:] == events[finish + 1:]
    cut = protocols.registered(CHAT).resumer.holder()
    assert b"".join(cut.feed(raw) for raw in events[:first_call + 2]) == b"".join(events[:first_call])
    assert cut.holding


@settings(max_examples=60, deadline=None)
@given(st.integers(PRELUDE + 1, PRELUDE + 18), st.integers(0, 40), st.booleans())
def test_any_cut_in_the_text_and_any_overlap_gives_the_uncut_answer(k, overlap, exact):
    run = cut_and_resume(CHAT, FIRST, k, None, exact=exact)
    overlap = 0 if exact else max(0, min(overlap, len(run.delivered.text) - 1))  # all of it repeated: a restart
    if 0 < overlap < 8:
        overlap = 0
    _, spliced = resumed(k, overlap, exact=exact)
    assert not spliced.failed
    assert_one_completion(spliced.out)
