"""Anthropic Messages resume: a stream cut anywhere in its text, spliced with a continuation (overlapping or exact),
reads in the official SDK's stream accumulator as one message with the uncut text, one id and stop_reason
end_turn; a tool_use block is held until it is whole."""

from __future__ import annotations

import json

from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols.resume
from protocols.capabilities import Capabilities
from protocols.resume.asking import INSTRUCTION, NOT_RUN
from tests.support.fake_vendor import TOOL_ARGUMENTS, Fault, split_text
from tests.support.resume_runs import cut_and_resume, vendor_stream
from tests.support.streams import parse, payloads

MESSAGES = "anthropic_messages"
ANSWER = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun by the river."
FIRST = vendor_stream(MESSAGES, Fault().ok(ANSWER))
PRELUDE = 2  # message_start, content_block_start


def message(out: bytes):
    snapshot, bufs = None, {}
    events = payloads(out)
    for payload in events:
        snapshot = accumulate_event(event=payload, current_snapshot=snapshot, json_bufs=bufs)  # as the SDK reads them
    return snapshot, events


def resumed(k: int, overlap: int, *, exact: bool = False, first: bytes = FIRST):
    run = cut_and_resume(MESSAGES, first, k, None, exact=exact)
    start = len(run.delivered.text) - overlap
    more = vendor_stream(MESSAGES, Fault().ok(ANSWER[start:]), 1)
    return run, cut_and_resume(MESSAGES, first, k, more, exact=exact)


def assert_one_message(out: bytes, text: str = ANSWER) -> None:
    final, events = message(out)
    assert [block.text for block in final.content] == [text]
    assert final.stop_reason == "end_turn" and final.id == "msg_fake0"
    kinds = [e["type"] for e in events]
    assert kinds.count("message_start") == 1 and kinds.count("message_stop") == 1
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1


def test_a_cut_mid_word_joins_an_overlapping_continuation_into_one_message():
    run, spliced = resumed(PRELUDE + 5, overlap=12)
    assert run.delivered.resumable and ANSWER.startswith(run.delivered.text)
    assert not spliced.failed
    assert_one_message(spliced.out)


def test_an_exact_prefill_continuation_joins_without_an_overlap():
    _, spliced = resumed(PRELUDE + 3, overlap=0, exact=True)
    assert_one_message(spliced.out)


def test_usage_is_the_first_input_and_the_output_of_both():
    run = cut_and_resume(MESSAGES, FIRST, PRELUDE + 5, None, exact=True)
    more = vendor_stream(MESSAGES, Fault().ok(ANSWER[len(run.delivered.text):]), 1)
    final, _ = message(cut_and_resume(MESSAGES, FIRST, PRELUDE + 5, more, exact=True).out)
    first_start = payloads(FIRST)[0]["message"]["usage"]
    later = [p for p in payloads(more) if p["type"] == "message_delta"][-1]
    assert final.usage.input_tokens == first_start["input_tokens"]
    delivered = len(split_text(run.delivered.text))  # the first attempt's deltas the client got
    assert final.usage.output_tokens == delivered + later["usage"]["output_tokens"]


def test_a_continuation_that_started_over_reaches_the_client_not_at_all():
    run = cut_and_resume(MESSAGES, FIRST, PRELUDE + 12, None, exact=False)
    again = vendor_stream(MESSAGES, Fault().ok(ANSWER), 1)
    spliced = cut_and_resume(MESSAGES, FIRST, PRELUDE + 12, again, exact=False)
    assert spliced.failed
    final, _ = message(spliced.out)
    assert [block.text for block in final.content] == [run.delivered.text] and final.stop_reason == "max_tokens"


TOOL_FIRST = vendor_stream(MESSAGES, Fault().tool_call(text="Let me look that up for you right now."))


def test_a_cut_inside_a_tool_call_is_not_resumable_and_a_completed_one_is_asked_again_with_its_result():
    events = payloads(TOOL_FIRST)
    inside = next(i for i, e in enumerate(events) if (e.get("delta") or {}).get("type") == "input_json_delta") + 1
    cut_inside = cut_and_resume(MESSAGES, TOOL_FIRST, inside, None, exact=False).delivered
    assert not cut_inside.resumable and "tool call" in cut_inside.why_not
    stopped = next(i for i, e in enumerate(events) if e["type"] == "message_delta")
    completed = cut_and_resume(MESSAGES, TOOL_FIRST, stopped, None, exact=False).delivered
    assert completed.resumable
    resumer, caps = protocols.registered(MESSAGES).resumer, Capabilities(prefill=True, prefill_strip=True)
    request = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "tools": [{"name": "t"}]}
    method = protocols.resume.method_for(resumer, request, completed, caps)
    assert method == "instruction"  # (a tool result must follow a call)
    body = resumer.continuation_body(request, completed, method, caps)
    said, asked = body["messages"][1:]
    text, call = said["content"]
    assert text == {"type": "text", "text": "Let me look that up for you right now."}
    assert call["type"] == "tool_use" and call["input"] == TOOL_ARGUMENTS
    assert asked["content"] == [{"type": "tool_result", "tool_use_id": call["id"], "content": NOT_RUN},
                                {"type": "text", "text": INSTRUCTION}]


def test_continuation_body_prefill_ends_with_the_partial_stripped_and_thinking_asks_in_words():
    resumer = protocols.registered(MESSAGES).resumer
    delivered = cut_and_resume(MESSAGES, FIRST, PRELUDE + 4, None, exact=True).delivered
    request = {"model": "m", "max_tokens": 100, "system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]}
    body = resumer.continuation_body(request, delivered, "prefill", Capabilities(prefill=True, prefill_strip=True))
    assert body["messages"][-1] == {"role": "assistant", "content": delivered.text.rstrip()}
    assert body["system"] == "Be brief." and body["stream"] is True
    thinking = {**request, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    method = protocols.resume.method_for(resumer, thinking, delivered, Capabilities(prefill=True))
    assert method == "instruction"
    asked = resumer.continuation_body(thinking, delivered, method, Capabilities(prefill=True))
    assert asked["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": INSTRUCTION}]}


def test_the_holder_sends_a_tool_use_block_whole_or_not_at_all():
    events = [e.raw for e in parse(TOOL_FIRST)]
    start = next(i for i, raw in enumerate(events) if b'"content_block_start"' in raw and b'"tool_use"' in raw)
    stop = next(i for i in range(start, len(events)) if b'"content_block_stop"' in events[i])
    holder = protocols.registered(MESSAGES).resumer.holder()
    sent = [holder.feed(raw) for raw in events]
    assert sent[:start] == events[:start]
    assert all(s == b"" for s in sent[start:stop])
    assert sent[stop] == b"".join(events[start:stop + 1]) and sent[stop + 1:] == events[stop + 1:]
    cut = protocols.registered(MESSAGES).resumer.holder()
    assert b"".join(cut.feed(raw) for raw in events[:start + 2]) == b"".join(events[:start]) and cut.holding


def test_a_cut_between_blocks_goes_on_in_a_new_block_after_them():
    events = payloads(TOOL_FIRST)
    k = next(i for i, e in enumerate(events) if e["type"] == "content_block_stop") + 1  # after the text block
    run = cut_and_resume(MESSAGES, TOOL_FIRST, k, None, exact=False)
    more = vendor_stream(MESSAGES, Fault().ok("for you right now. Here it is."), 1)
    spliced = cut_and_resume(MESSAGES, TOOL_FIRST, k, more, exact=False)
    final, out = message(spliced.out)
    assert [block.text for block in final.content] == [run.delivered.text, " Here it is."]
    assert [e["index"] for e in out if e["type"] == "content_block_start"] == [0, 1]
    assert json.dumps([e["type"] for e in out]).count("message_start") == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(PRELUDE + 1, PRELUDE + 18), st.integers(0, 40), st.booleans())
def test_any_cut_in_the_text_and_any_overlap_gives_the_uncut_answer(k, overlap, exact):
    run = cut_and_resume(MESSAGES, FIRST, k, None, exact=exact)
    overlap = 0 if exact else max(0, min(overlap, len(run.delivered.text) - 1))  # all of it repeated: a restart
    if 0 < overlap < 8:
        overlap = 0
    _, spliced = resumed(k, overlap, exact=exact)
    assert not spliced.failed
    assert_one_message(spliced.out)
