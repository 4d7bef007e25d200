"""Responses resume: a stream cut anywhere in its text, spliced with a continuation (overlapping or exact), reads
in the official SDK's stream accumulator as one response with the uncut text, one id and a normal completion."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from openai import omit
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

import protocols
from protocols.capabilities import Capabilities
from protocols.resume.asking import INSTRUCTION, NOT_RUN
from tests.support.fake_vendor import TOOL_ARGUMENTS, Fault
from tests.support.resume_runs import cut_and_resume, vendor_stream
from tests.support.streams import parse, payloads

ANSWER = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun by the river."
FIRST = vendor_stream("openai_responses", Fault().ok(ANSWER))
PRELUDE = 4  # created, in_progress, output_item.added, content_part.added


def accumulated(out: bytes):
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for payload in payloads(out):
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=payload))  # as the SDK reads them
    return state, payloads(out)


def resumed(k: int, overlap: int, *, exact: bool = False, fault: Fault | None = None, first: bytes = FIRST):
    run = cut_and_resume("openai_responses", first, k, None, exact=exact)
    start = len(run.delivered.text) - overlap
    continuation = vendor_stream("openai_responses", (fault or Fault()).ok(ANSWER[start:]), 1)
    return run, cut_and_resume("openai_responses", first, k, continuation, exact=exact)


def assert_one_response(out: bytes, text: str = ANSWER) -> None:
    state, events = accumulated(out)
    final = state._completed_response
    assert final is not None and final.status == "completed" and final.output_text == text
    assert final.id == "resp_fake0" and final.created_at == 1761000000
    assert [e["type"] for e in events].count("response.created") == 1
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert {e.get("item_id") for e in events if "item_id" in e} == {"msg_fake0"}
    done = [e for e in events if e["type"] == "response.output_text.done"]
    assert [d["text"] for d in done] == [text]


def test_a_cut_mid_word_joins_an_overlapping_continuation_into_one_response():
    run, spliced = resumed(PRELUDE + 5, overlap=12)
    assert run.delivered.resumable and ANSWER.startswith(run.delivered.text)
    assert not spliced.failed
    assert_one_response(spliced.out)


def test_a_vendors_own_event_in_the_continuation_leaves_the_overlap_to_be_found():
    """The Codex backend's `codex.rate_limits` comes before the continuation's text: passed on, the seam open."""
    run = cut_and_resume("openai_responses", FIRST, PRELUDE + 5, None, exact=False)
    start = len(run.delivered.text) - 12
    plain = vendor_stream("openai_responses", Fault().ok(ANSWER[start:]), 1)
    limits = b'event: codex.rate_limits\ndata: {"type":"codex.rate_limits","rate_limits":{}}\n\n'
    head, sep, rest = plain.partition(b"event: response.output_item.added")
    spliced = cut_and_resume("openai_responses", FIRST, PRELUDE + 5, head + limits + sep + rest, exact=False)
    assert not spliced.failed
    assert [e["type"] for e in payloads(spliced.out)].count("codex.rate_limits") == 1
    assert "".join(e.get("delta", "") for e in payloads(spliced.out)
                   if e["type"] == "response.output_text.delta") == ANSWER


def test_an_exact_prefill_continuation_joins_without_an_overlap():
    _, spliced = resumed(PRELUDE + 3, overlap=0, exact=True)
    assert_one_response(spliced.out)


def test_usage_is_the_output_the_client_received_of_both_attempts():
    _, spliced = resumed(PRELUDE + 5, overlap=12)
    usage = payloads(spliced.out)[-1]["response"]["usage"]
    continuation_usage = payloads(vendor_stream("openai_responses", Fault().ok("x " * 3), 1))[-1]["response"]
    assert usage["output_tokens"] > 5 and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens"] == continuation_usage["usage"]["input_tokens"]


def test_a_continuation_that_started_over_reaches_the_client_not_at_all():
    run = cut_and_resume("openai_responses", FIRST, PRELUDE + 12, None, exact=False)
    again = vendor_stream("openai_responses", Fault().ok(ANSWER), 1)
    spliced = cut_and_resume("openai_responses", FIRST, PRELUDE + 12, again, exact=False)
    assert spliced.failed
    ending = payloads(spliced.out)[-1]
    assert ending["type"] == "response.incomplete"
    assert ending["response"]["output"][0]["content"][0]["text"] == run.delivered.text


TOOL_FIRST = vendor_stream("openai_responses", Fault().tool_call(text="Let me look that up for you right now."))


def test_a_cut_between_items_goes_on_in_a_new_item_after_them():
    events = payloads(TOOL_FIRST)
    k = next(i for i, e in enumerate(events) if e["type"] == "response.output_item.done") + 1
    run = cut_and_resume("openai_responses", TOOL_FIRST, k, None, exact=False)
    assert run.delivered.resumable and run.delivered.text == "Let me look that up for you right now."
    more = vendor_stream("openai_responses", Fault().ok("for you right now. Here it is."), 1)
    spliced = cut_and_resume("openai_responses", TOOL_FIRST, k, more, exact=False)
    state, out = accumulated(spliced.out)
    final = state._completed_response
    assert final is not None and final.output_text == "Let me look that up for you right now. Here it is."
    assert [item.id for item in final.output] == ["msg_fake0", "msg_fake1"]
    assert {e["output_index"] for e in out if e["type"] == "response.output_text.delta"} == {0, 1}


def test_a_cut_inside_a_function_call_is_not_resumable_and_a_completed_one_is():
    events = payloads(TOOL_FIRST)
    inside = next(i for i, e in enumerate(events) if e["type"] == "response.function_call_arguments.delta") + 1
    cut_inside = cut_and_resume("openai_responses", TOOL_FIRST, inside, None, exact=False).delivered
    assert not cut_inside.resumable and "function_call" in cut_inside.why_not
    after = len(events) - 1
    completed = cut_and_resume("openai_responses", TOOL_FIRST, after, None, exact=False).delivered
    assert completed.resumable
    body = protocols.registered("openai_responses").resumer.continuation_body(
        {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "get_weather"}]}, completed,
        "instruction", Capabilities())
    call, result = body["input"][2:4]
    assert call["type"] == "function_call" and json.loads(call["arguments"]) == TOOL_ARGUMENTS
    assert result == {"type": "function_call_output", "call_id": call["call_id"], "output": NOT_RUN}
    assert body["input"][-1] == {"role": "user", "content": INSTRUCTION} and body["tools"]


def test_a_cut_inside_reasoning_is_not_resumable():
    reasoning = b"".join(
        b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode()) for e in [
            {"type": "response.created", "sequence_number": 0, "response": {"id": "r", "output": []}},
            {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
             "item": {"id": "rs_1", "type": "reasoning", "summary": []}},
            {"type": "response.reasoning_summary_text.delta", "sequence_number": 2, "item_id": "rs_1",
             "output_index": 0, "summary_index": 0, "delta": "Thinking"}])
    delivered = cut_and_resume("openai_responses", reasoning, 3, None, exact=False).delivered
    assert not delivered.resumable and "reasoning" in delivered.why_not


def test_continuation_body_prefill_ends_with_the_partial_as_an_assistant_turn():
    resumer = protocols.registered("openai_responses").resumer
    delivered = cut_and_resume("openai_responses", FIRST, PRELUDE + 4, None, exact=True).delivered
    request = {"model": "m", "instructions": "Be brief.", "input": [{"role": "user", "content": "hi"}],
               "temperature": 0.2}
    body = resumer.continuation_body(request, delivered, "prefill", Capabilities(prefill=True, prefill_strip=True))
    assert body["input"][-1] == {"role": "assistant", "content": delivered.text.rstrip()}
    assert body["instructions"] == "Be brief." and body["temperature"] == 0.2 and body["stream"] is True
    marked = resumer.continuation_body(request, delivered, "prefill", Capabilities(prefill=True, prefill_marker="prefix"))
    assert marked["input"][-1] == {"role": "assistant", "content": delivered.text, "prefix": True}


@settings(max_examples=60, deadline=None)
@given(st.integers(PRELUDE + 1, PRELUDE + 18), st.integers(0, 40), st.booleans())
def test_any_cut_in_the_text_and_any_overlap_gives_the_uncut_answer(k, overlap, exact):
    run = cut_and_resume("openai_responses", FIRST, k, None, exact=exact)
    overlap = 0 if exact else min(overlap, len(run.delivered.text) - 1)  # all of it repeated is a restart
    if 0 < overlap < 8:
        overlap = 0
    _, spliced = resumed(k, overlap, exact=exact)
    assert not spliced.failed
    assert_one_response(spliced.out)


def test_the_holder_sends_a_function_call_whole_or_not_at_all():
    events = [e.raw for e in parse(TOOL_FIRST)]
    added = next(i for i, raw in enumerate(events) if b'"response.output_item.added"' in raw and b'"function_call"' in raw)
    done = next(i for i, raw in enumerate(events) if b'"response.output_item.done"' in raw and b'"function_call"' in raw)
    holder = protocols.registered("openai_responses").resumer.holder()
    sent = [holder.feed(raw) for raw in events]
    assert sent[:added] == events[:added]  # the text before it: as it came
    assert all(s == b"" for s in sent[added:done])  # the call's events held
    assert sent[done] == b"".join(events[added:done + 1]) and sent[done + 1:] == events[done + 1:]
    cut = protocols.registered("openai_responses").resumer.holder()
    assert b"".join(cut.feed(raw) for raw in events[:added + 2]) == b"".join(events[:added]) and cut.holding
