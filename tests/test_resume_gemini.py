"""Gemini resume: a stream cut anywhere in its text, spliced with a continuation (overlapping or exact prefill),
reads with google-genai's types as one answer: the uncut text, one responseId, one STOP, the counts of both."""

from __future__ import annotations

import json

from google.genai import types as genai_types
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols
from protocols.capabilities import Capabilities
from protocols.resume.asking import INSTRUCTION, NOT_RUN
from tests.support.fake_vendor import TOOL_ARGUMENTS, Fault
from tests.support.resume_runs import cut_and_resume, vendor_stream
from tests.support.streams import payloads

ANSWER = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun by the river."
FIRST = vendor_stream("gemini", Fault().ok(ANSWER))


def chunks(out: bytes) -> list[genai_types.GenerateContentResponse]:
    return [genai_types.GenerateContentResponse.model_validate(p) for p in payloads(out)]


def resumed(k: int, overlap: int, *, exact: bool = False, first: bytes = FIRST):
    run = cut_and_resume("gemini", first, k, None, exact=exact)
    start = len(run.delivered.text) - overlap
    continuation = vendor_stream("gemini", Fault().ok(ANSWER[start:]), 1)
    return cut_and_resume("gemini", first, k, continuation, exact=exact)


def assert_one_answer(out: bytes, text: str = ANSWER) -> list[genai_types.GenerateContentResponse]:
    got = chunks(out)
    assert "".join(c.text or "" for c in got) == text
    assert {c.response_id for c in got} == {"fakeresp0"}
    finishes = [c.candidates[0].finish_reason for c in got if c.candidates and c.candidates[0].finish_reason]
    assert finishes == [genai_types.FinishReason.STOP]
    return got


def test_a_cut_mid_word_joins_an_overlapping_continuation_into_one_answer():
    spliced = resumed(4, overlap=10)
    assert not spliced.failed
    got = assert_one_answer(spliced.out)
    first_usage = payloads(FIRST)[3]["usageMetadata"]
    last = got[-1].usage_metadata
    assert last.prompt_token_count == first_usage["promptTokenCount"]
    assert last.candidates_token_count > first_usage["candidatesTokenCount"]
    assert last.total_token_count == last.prompt_token_count + last.candidates_token_count


def test_an_exact_prefill_continuation_joins_without_an_overlap():
    assert_one_answer(resumed(6, overlap=0, exact=True).out)


def test_no_continuation_token_reaches_the_client():
    run = cut_and_resume("gemini", FIRST, 4, None, exact=False)
    more = payloads(vendor_stream("gemini", Fault().ok(ANSWER[len(run.delivered.text) - 10:]), 1))
    more[0]["candidates"][0]["continuationToken"] = "Y2hlY2twb2ludA=="
    body = b"".join(b"data: %s\r\n\r\n" % json.dumps(p).encode() for p in more)
    spliced = cut_and_resume("gemini", FIRST, 4, body, exact=False)
    assert b"continuationToken" not in spliced.out
    assert_one_answer(spliced.out)


def test_a_continuation_that_started_over_reaches_the_client_not_at_all():
    run = cut_and_resume("gemini", FIRST, 10, None, exact=False)
    spliced = cut_and_resume("gemini", FIRST, 10, vendor_stream("gemini", Fault().ok(ANSWER), 1), exact=False)
    assert spliced.failed
    got = chunks(spliced.out)
    assert "".join(c.text or "" for c in got) == run.delivered.text
    assert got[-1].candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS


TOOL_FIRST = vendor_stream("gemini", Fault().tool_call(text="Let me look that up for you right now."))


def test_after_a_whole_function_call_the_continuation_keeps_it_a_call():
    events = payloads(TOOL_FIRST)
    del events[-1]["candidates"][0]["finishReason"]  # the call came whole; the stream stopped before its end
    unfinished = b"".join(b"data: %s\r\n\r\n" % json.dumps(p).encode() for p in events)
    run = cut_and_resume("gemini", unfinished, len(events), None, exact=False)
    assert run.delivered.resumable and run.delivered.text == "Let me look that up for you right now."
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": [{"functionDeclarations": []}],
               "systemInstruction": {"parts": [{"text": "Be brief."}]}}
    resumer = protocols.registered("gemini").resumer
    body = resumer.continuation_body(request, run.delivered, "instruction", Capabilities())
    model_turn = body["contents"][1]
    assert model_turn["role"] == "model" and model_turn["parts"][-1]["functionCall"]["args"] == TOOL_ARGUMENTS
    assert "".join(p.get("text", "") for p in model_turn["parts"]) == run.delivered.text
    name = model_turn["parts"][-1]["functionCall"]["name"]
    assert body["contents"][2:] == [{"role": "user", "parts": [
        {"functionResponse": {"name": name, "response": {"result": NOT_RUN}}}, {"text": INSTRUCTION}]}]
    assert body["tools"] == request["tools"] and body["systemInstruction"] == request["systemInstruction"]


def test_a_cut_inside_reasoning_is_not_resumable():
    thinking = b"data: %s\r\n\r\n" % (
        b'{"candidates":[{"content":{"role":"model","parts":[{"text":"Hmm","thought":true}]},"index":0}]}')
    delivered = cut_and_resume("gemini", thinking, 1, None, exact=False).delivered
    assert not delivered.resumable and "reasoning" in delivered.why_not


def test_continuation_body_prefill_ends_with_the_partial_as_a_model_turn():
    run = cut_and_resume("gemini", FIRST, 5, None, exact=True)
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"temperature": 0.2},
               "continuationToken": "old"}
    body = protocols.registered("gemini").resumer.continuation_body(request, run.delivered, "prefill",
                                                            Capabilities(prefill=True, prefill_strip=True))
    assert body["contents"][-1] == {"role": "model", "parts": [{"text": run.delivered.text.rstrip()}]}
    assert body["generationConfig"] == {"temperature": 0.2} and "continuationToken" not in body


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 18), st.integers(0, 40), st.booleans())
def test_any_cut_in_the_text_and_any_overlap_gives_the_uncut_answer(k, overlap, exact):
    run = cut_and_resume("gemini", FIRST, k, None, exact=exact)
    overlap = 0 if exact else min(overlap, len(run.delivered.text) - 1)  # all of it repeated is a restart
    if 0 < overlap < 8:
        overlap = 0
    spliced = resumed(k, overlap, exact=exact)
    assert not spliced.failed
    assert_one_answer(spliced.out)
