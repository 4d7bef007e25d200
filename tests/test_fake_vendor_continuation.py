"""The fake vendor tells a continuation from the request Rotator's resumers build, in each protocol, and answers
it as a model would: exactly the rest after a prefill, with some overlap after an instruction."""

from __future__ import annotations

import pytest

import protocols.resume
from protocols.capabilities import Capabilities
from tests.support import continuation
from tests.support.continuation import NAMES, REQUESTS
from tests.support.fake_vendor import TEXT, Fault
from tests.support.resume_runs import cut_and_resume, vendor_stream

CUT_AFTER = {"chat": 3, "responses": 6, "anthropic": 5, "gemini": 2}  # events: a few words in


def asked_for_the_rest(protocol: str, method: str, caps: Capabilities) -> tuple[dict, str]:
    name = NAMES[protocol]
    delivered = cut_and_resume(name, vendor_stream(name, Fault()), CUT_AFTER[protocol], None, exact=False).delivered
    assert delivered.text and TEXT.startswith(delivered.text)
    body = protocols.registered(name).resumer.continuation_body(REQUESTS[protocol], delivered, method, caps)
    return body, delivered.text


@pytest.mark.parametrize("protocol", list(NAMES))
def test_a_prefill_is_answered_with_exactly_the_rest(protocol):
    body, partial = asked_for_the_rest(protocol, "prefill", Capabilities(prefill=True, prefill_strip=True))
    method, said = continuation.asked(protocol, body)
    assert method == "prefill" and partial.startswith(said)
    assert said + continuation.rest(TEXT, method, said, 8) == TEXT  # (the stripped whitespace comes back first)


@pytest.mark.parametrize("protocol", list(NAMES))
def test_an_instruction_is_answered_with_the_rest_and_an_overlap(protocol):
    body, partial = asked_for_the_rest(protocol, "instruction", Capabilities())
    method, said = continuation.asked(protocol, body)
    assert (method, said) == ("instruction", partial)
    rest = continuation.rest(TEXT, method, said, 8)
    assert rest == TEXT[len(partial) - 8:] and partial.endswith(rest[:8])


@pytest.mark.parametrize("protocol", list(NAMES))
def test_a_plain_request_is_no_continuation_and_a_refusal_is_in_the_vendors_words(protocol):
    assert continuation.asked(protocol, REQUESTS[protocol]) is None
    assert protocols.resume.refuses_prefill(400, str(continuation.PREFILL_REFUSALS[protocol]).encode())


def test_a_partial_that_is_not_the_answers_start_gets_the_whole_answer():
    assert continuation.rest(TEXT, "instruction", "Something else", 8) == TEXT


@pytest.mark.parametrize("protocol", list(NAMES))
def test_two_user_turns_in_a_row_are_told_from_a_conversation_that_alternates(protocol):
    body, _ = asked_for_the_rest(protocol, "instruction", Capabilities())
    assert not continuation.repeats_user(protocol, body)  # user, assistant (the partial), user (the instruction)
    assert not continuation.repeats_user(protocol, REQUESTS[protocol])
    name = NAMES[protocol]
    nothing = cut_and_resume(name, vendor_stream(name, Fault()), 0, None, exact=False).delivered
    assert nothing.nothing
    resumer = protocols.registered(name).resumer
    body = resumer.continuation_body(REQUESTS[protocol], nothing, "instruction", Capabilities())
    assert continuation.repeats_user(protocol, body)  # what a cut before any text used to be asked with


def test_a_structured_continuation_writes_a_whole_document_and_anthropic_refuses_its_prefill():
    asked_json = {**REQUESTS["anthropic"], "output_config": {"format": {"type": "json_schema", "schema": {}}}}
    assert continuation.structured("anthropic", asked_json) and not continuation.structured("anthropic",
                                                                                             REQUESTS["anthropic"])
    assert continuation.structured("gemini", {"generationConfig": {"responseMimeType": "application/json"}})
    assert continuation.rest(TEXT, "instruction", TEXT[:10], 8, structured=True) == TEXT  # (constrained: anew)
    assert protocols.resume.refuses_prefill(400, str(continuation.PREFILL_WITH_FORMAT).encode())
