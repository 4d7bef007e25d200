"""How a continuation is asked, as the engine records it (`protocols.resume.method_for`), is how its request really
asks (as the fake vendor reads it, tests/support/continuation.py), in every protocol: a prefill only where the
request and the partial answer can carry one, in words where the partial carries (or ends in) a tool call or the
request has thinking on or structured output; and an answer whose request asked for JSON is not continued once its
JSON began."""

from __future__ import annotations

import pytest

import protocols.resume
from protocols.capabilities import Capabilities
from protocols.resume.asking import STRUCTURED
from tests.support import continuation
from tests.support.continuation import NAMES, REQUESTS
from tests.support.fake_vendor import Fault, split_text
from tests.support.resume_runs import cut_and_resume, through_delta, vendor_stream
from tests.support.streams import payloads

JSON_ASKED = {  # each protocol's request for structured output
    "chat": {"response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}},
    "responses": {"text": {"format": {"type": "json_object"}}},
    "anthropic": {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
    "gemini": {"generationConfig": {"responseMimeType": "application/json"}},
}
PREFILL = Capabilities(prefill=True)
CALL_TEXT, AFTER = "Let me check.", " All done here."
JSON = '{"city": "Paris", "unit": "celsius"}'


def delivered_after_a_call(protocol: str, text: str = CALL_TEXT, request: dict | None = None):
    """The partial answer of a stream cut right after its tool call was complete (Chat: and one word after it)."""
    name = NAMES[protocol]
    fault = Fault.tool_call(text=text, after=AFTER)
    stream = vendor_stream(name, fault)
    events = payloads(stream)
    if protocol == "chat":
        _, k = through_delta(name, fault, len(split_text(text)) + 4 + 1)  # (the text, the 4 fragments, a word)
    elif protocol == "gemini":
        _, k = through_delta(name, fault, len(split_text(text)) + 1)  # (the call arrives in one chunk)
    elif protocol == "responses":
        k = len(events) - 1  # all but response.completed
    else:
        k = next(i for i, e in enumerate(events) if e["type"] == "message_delta")
    delivered = cut_and_resume(name, stream, k, None, request=request).delivered
    assert delivered.resumable and delivered.carried(), delivered
    return delivered


def asked(protocol: str, request: dict, delivered, caps: Capabilities = PREFILL) -> tuple[str, str | None]:
    """(how the engine says it asks, how the request it builds asks)."""
    resumer = protocols.registered(NAMES[protocol]).resumer
    method = protocols.resume.method_for(resumer, request, delivered, caps)
    body = protocols.resume.continuation_body(resumer, request, delivered, method, caps)
    said = continuation.asked(protocol, body)
    return method, said[0] if said else None


@pytest.mark.parametrize("protocol", list(NAMES))
def test_a_text_partial_goes_by_prefill_where_the_model_takes_one_and_in_words_elsewhere(protocol):
    name = NAMES[protocol]
    stream, k = through_delta(name, Fault(), 2)
    delivered = cut_and_resume(name, stream, k, None).delivered
    assert asked(protocol, REQUESTS[protocol], delivered) == ("prefill", "prefill")
    assert asked(protocol, REQUESTS[protocol], delivered, Capabilities()) == ("instruction", "instruction")


@pytest.mark.parametrize("protocol", list(NAMES))
def test_a_partial_with_a_tool_call_is_asked_in_words_though_the_model_takes_a_prefill(protocol):
    # (Chat and Anthropic carry the call inside the assistant's turn; Responses and Gemini end the partial with it,
    # and its result after it: a "prefill" there was neither a prefill nor an instruction.)
    assert asked(protocol, REQUESTS[protocol], delivered_after_a_call(protocol)) == ("instruction", "instruction")


def test_an_anthropic_request_with_thinking_on_is_asked_in_words():
    stream, k = through_delta(NAMES["anthropic"], Fault(), 2)
    delivered = cut_and_resume(NAMES["anthropic"], stream, k, None).delivered
    for thinking in ({"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}):
        request = {**REQUESTS["anthropic"], "thinking": thinking}
        assert asked("anthropic", request, delivered) == ("instruction", "instruction")


@pytest.mark.parametrize("protocol", list(NAMES))
def test_a_json_answer_is_not_continued_once_its_json_began(protocol):
    name, request = NAMES[protocol], {**REQUESTS[protocol], **JSON_ASKED[protocol]}
    stream, k = through_delta(name, Fault().ok(JSON), 2)
    delivered = cut_and_resume(name, stream, k, None, request=request).delivered
    assert delivered.text == '{"city": "Paris",'
    assert not delivered.resumable and delivered.why_not == STRUCTURED
    plain = cut_and_resume(name, stream, k, None, request=REQUESTS[protocol]).delivered
    assert plain.resumable  # (the same text, not asked as JSON: continued)


@pytest.mark.parametrize("protocol", ["responses", "anthropic", "gemini"])  # (Chat: a call is whole once text follows)
def test_a_json_request_whose_partial_is_only_a_tool_call_is_asked_in_words(protocol):
    request = {**REQUESTS[protocol], **JSON_ASKED[protocol]}
    delivered = delivered_after_a_call(protocol, text="", request=request)
    assert asked(protocol, request, delivered) == ("instruction", "instruction")


@pytest.mark.parametrize("protocol", list(NAMES))
def test_a_json_request_is_never_prefilled(protocol):
    """Whatever the partial (here one of whitespace alone, before the JSON), a request for JSON takes no prefill:
    Anthropic refuses one with structured output, and a constrained answer starts its document anew anyway."""
    name, request = NAMES[protocol], {**REQUESTS[protocol], **JSON_ASKED[protocol]}
    stream, k = through_delta(name, Fault().in_pieces("\n", JSON), 1)
    delivered = cut_and_resume(name, stream, k, None, request=request).delivered
    assert delivered.resumable and delivered.text == "\n"
    resumer = protocols.registered(name).resumer
    assert protocols.resume.method_for(resumer, request, delivered, PREFILL) == "instruction"


def test_gemini_asks_for_json_by_its_mime_type_or_a_schema_in_either_case():
    name = NAMES["gemini"]
    stream, k = through_delta(name, Fault().ok(JSON), 2)
    for config in ({"responseSchema": {"type": "OBJECT"}}, {"response_json_schema": {"type": "object"}},
                   {"response_mime_type": "text/x.enum"}):
        request = {**REQUESTS["gemini"], "generationConfig": config}
        assert not cut_and_resume(name, stream, k, None, request=request).delivered.resumable, config
    request = {**REQUESTS["gemini"], "generationConfig": {"responseMimeType": "text/plain"}}
    delivered = cut_and_resume(name, stream, k, None, request=request).delivered
    assert asked("gemini", request, delivered) == ("prefill", "prefill")
