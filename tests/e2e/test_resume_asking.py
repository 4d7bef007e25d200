"""How the rest of a cut answer is asked for, as a user sees it through a real mitmdump with the official SDKs: the
method the flow records and the log says is the one the continuation request really uses (a prefill only where the
request and the partial answer can carry one), decided by the model the host is asked for (after a `rename_model`
adapter), and an answer the request constrained to JSON is not continued once its JSON began.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from google.genai import types as gtypes

from tests.support import continuation as asking
from tests.support.clients import FINISH, MODELS, TRUNCATED, WEATHER_SCHEMA, call, make_client
from tests.support.fake_vendor import (
    TEXT,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    Ctx,
    Ev,
    Fault,
    anthropic_events,
    responses_events,
    split_arguments,
    split_text,
)
from tests.support.reliability import DELTAS, FAMILY, UNHURRIED, warmed
from tests.support.routing import model_via, routing_config

pytestmark = pytest.mark.e2e

CALL_TEXT, AFTER = "Let me check.", " All done here."
FRAGMENTS = len(split_arguments(json.dumps(TOOL_ARGUMENTS)))


def _through_the_call(events: Callable[[Ctx], list[Ev]], ending: str) -> int:
    """How many events of an answer with text and a call go up to the call's end: all before `ending`."""
    sent = events(Ctx(0, "m", 0, {}, Fault.tool_call(text=CALL_TEXT)))
    return next(i for i, ev in enumerate(sent) if (ev.payload or {}).get("type") == ending)


# How each protocol's partial answer comes to carry (or end in) a whole tool call, on a model that takes a prefill:
# (the model, the cut answer, what the client had of its text). Chat and Gemini tell a call is whole only by what
# follows it: the cut falls after it (Chat: one word after; Gemini: the call is the partial's last part); Anthropic
# and Responses close it (the cut falls before the answer's end).
CALLED = {
    "chat": ("mistral-small-latest",  # (Mistral says the prefill again first: a seam that expects that refuses words)
             Fault.tool_call(text=CALL_TEXT, after=AFTER).cut_after(
                 deltas=len(split_text(CALL_TEXT)) + FRAGMENTS + 1, how="reset"), CALL_TEXT + " All"),
    "responses": ("deepseek-chat", Fault.tool_call(text=CALL_TEXT).cut_after(
        _through_the_call(responses_events, "response.completed"), "reset"), CALL_TEXT),
    "anthropic": (MODELS["anthropic"], Fault.tool_call(text=CALL_TEXT).cut_after(
        _through_the_call(anthropic_events, "message_delta"), "reset"), CALL_TEXT),
    "gemini": (MODELS["gemini"], Fault.tool_call(text=CALL_TEXT, after=AFTER).cut_after(
        deltas=len(split_text(CALL_TEXT)) + 1, how="reset"), CALL_TEXT),
}


@pytest.mark.parametrize("protocol", list(CALLED))
def test_a_partial_with_a_tool_call_is_asked_in_words_and_recorded_so(fake_vendor, rotator, protocol):
    """Before, the method came from the model alone: "prefill", so the log and the flow said so, the seam expected a
    prefill's continuation (Mistral's echo of it first: the words were refused), and Responses and Gemini sent the
    partial ending in its call's result with no instruction at all (the model answered from the start: refused)."""
    model, cut, had = CALLED[protocol]
    proxy = warmed(rotator, fake_vendor, protocol, streaming=UNHURRIED)
    fake_vendor.script(cut, Fault().ok(CALL_TEXT + AFTER).continuing())

    result = call(protocol, make_client(protocol), stream=True, tools=True, model=model)

    assert result.text == CALL_TEXT + AFTER, result
    assert result.tool_calls == [(TOOL_NAME, TOOL_ARGUMENTS)]
    assert result.finish == FINISH[protocol]["text"]
    first, continued = fake_vendor.calls()
    assert continued.continued == "instruction"  # the request asked in words (as the fake vendor reads it)
    assert asking.asked(continued.protocol, continued.body) == ("instruction", had)
    proxy.wait_log(f"continued at character {len(had)} by instruction on {FAMILY[protocol]}/{model}")


def test_an_anthropic_request_with_thinking_on_is_asked_in_words_and_recorded_so(fake_vendor, rotator):
    """Claude Haiku 4.5 takes a prefill, but not with thinking on: the continuation goes in words, and the flow and
    the log say so (they said "by prefill", and the seam treated the words as a prefill's exact continuation)."""
    proxy = warmed(rotator, fake_vendor, "anthropic", streaming=UNHURRIED)
    fake_vendor.script(Fault().cut_after(deltas=DELTAS, how="reset"), Fault().continuing())

    result = call("anthropic", make_client("anthropic"), stream=True, max_tokens=2048,
                  thinking={"type": "enabled", "budget_tokens": 1024})

    assert result.text == TEXT, result
    assert result.finish == FINISH["anthropic"]["text"]
    first, continued = fake_vendor.calls()
    assert continued.continued == "instruction"
    log = proxy.wait_log(f"by instruction on anthropic/{MODELS['anthropic']}")
    assert "by prefill" not in log


# ------------------------------------------------------------------------------------------------------------------
# The capabilities of the model the host is asked for: a `rename_model` adapter renames the client's.

RENAMED = {"anthropic": "claude-sonnet-4-6", "gemini": "gemini-3.6-flash"}  # (these take no prefill: 400)


@pytest.mark.parametrize("protocol", list(RENAMED))
def test_a_model_renamed_to_one_without_prefill_is_asked_in_words_the_first_time(fake_vendor, rotator, protocol):
    provider, asked = FAMILY[protocol], MODELS[protocol]  # (the client's model takes a prefill)
    proxy = rotator(streaming=UNHURRIED, fresh=True,
                    providers={provider: {"models": {asked: {"adapters": [{"rename_model": RENAMED[protocol]}]}}}})
    refusing = Fault().continuing().refusing_prefill()
    fake_vendor.script(Fault().cut_after(deltas=DELTAS, how="reset"), refusing, refusing)

    result = call(protocol, make_client(protocol), stream=True)

    assert result.text == TEXT, result
    calls = fake_vendor.calls()
    assert [(c.model, c.status) for c in calls] == [(RENAMED[protocol], 200)] * 2  # no refused prefill first
    assert calls[1].continued == "instruction"
    log = proxy.wait_log(f"by instruction on {provider}/{asked}")
    assert "refused the prefill" not in log


# ------------------------------------------------------------------------------------------------------------------
# Structured output: the vendors write it by constrained decoding from the document's start, so a continuation
# (however asked) writes a whole new document; Anthropic refuses a prefill with it outright. A JSON answer cut after
# its JSON began ends honestly, at once, and costs no further request.

JSON = '{"city": "Paris", "unit": "celsius"}'
JSON_CUT = "".join(split_text(JSON)[:2])  # '{"city": "Paris",'
SCHEMA = {**WEATHER_SCHEMA, "additionalProperties": False}
ASKING_JSON = {
    "chat": {"response_format": {"type": "json_schema",
                                 "json_schema": {"name": "weather", "schema": SCHEMA, "strict": False}}},
    "responses": {"text": {"format": {"type": "json_schema", "name": "weather", "schema": SCHEMA}}},
    "anthropic": {"extra_body": {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}},
    "gemini": {"config": gtypes.GenerateContentConfig(response_mime_type="application/json",
                                                      response_json_schema=SCHEMA)},
}
STRUCTURED_CASES = [("chat", "chat", True), ("chat", "chat", False), ("responses", "responses", True),
                    ("anthropic", "anthropic", True), ("gemini", "gemini", True), ("chat", "anthropic", True)]


@pytest.mark.parametrize(("client", "upstream", "streamed"), STRUCTURED_CASES,
                         ids=[f"{c}-via-{u}-{'stream' if s else 'whole'}" for c, u, s in STRUCTURED_CASES])
def test_a_json_answer_cut_after_its_json_began_ends_honestly_without_a_continuation(fake_vendor, rotator, client,
                                                                                   upstream, streamed):
    if client == upstream:
        proxy = warmed(rotator, fake_vendor, client, streamed=streamed, streaming=UNHURRIED)
        model = MODELS[client]
    else:
        proxy = rotator(routing_config(fake_vendor.url))
        model = model_via(upstream)
    fake_vendor.script(Fault().ok(JSON).cut_after(deltas=2, how="reset"), Fault().ok(JSON).continuing(),
                       Fault().ok(JSON).continuing(), Fault().ok(JSON).continuing())

    result = call(client, make_client(client), stream=streamed, model=model, **ASKING_JSON[client])

    assert result.text == JSON_CUT  # what the client had, as it had it: no other document after it
    assert result.finish == TRUNCATED[client]
    assert len(fake_vendor.calls()) == 1  # (it was asked again, and again: each a whole new JSON, refused)
    proxy.wait_log("not continued: structured output")

