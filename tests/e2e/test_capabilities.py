"""The model capability table end to end: an official SDK calls its own vendor's host through a real mitmdump, a
route hands the call to another vendor's model, and that vendor receives only what the model accepts, thinking
shaped the way it wants it, the client's effort and structured output, and the API version the model is sent."""

from __future__ import annotations

import anthropic
import pytest
from google.genai import types as gtypes

from tests.support.clients import FINISH, PROMPT, call, make_client
from tests.support.fake_vendor import TEXT
from tests.support.sdk_requests import sdk_accepts

pytestmark = pytest.mark.e2e

STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}


@pytest.fixture
def routed(rotator, fake_vendor):
    return rotator({
        "providers": {"deepseek": {"kind": "openai", "base_url": f"{fake_vendor.url}/v1", "keys": ["sk-deepseek-1"]}},
        "routes": [{"models": ["via-opus"], "targets": ["anthropic/claude-opus-4-8"]},
                   {"models": ["via-nova"], "targets": ["anthropic/claude-nova-9"]},
                   {"models": ["via-gpt"], "targets": ["deepseek/gpt-5.4"]}],
    })


def gemini_cli_call(model: str, stream: bool) -> str:
    """A call with Gemini CLI's generation config: sampling, and a thinking budget."""
    config = gtypes.GenerateContentConfig(temperature=1, top_p=0.95, top_k=64, thinking_config=gtypes.ThinkingConfig(
        include_thoughts=True, thinking_budget=8192))
    client = make_client("gemini")  # kept: the SDK closes its connection when the client goes
    models = client.models
    if stream:
        return "".join(c.text or "" for c in models.generate_content_stream(model=model, contents=PROMPT, config=config))
    return models.generate_content(model=model, contents=PROMPT, config=config).text


@STREAMS
def test_a_gemini_client_routed_to_a_current_claude_sends_no_sampling(fake_vendor, routed, stream):
    assert gemini_cli_call("via-opus", stream) == TEXT

    [req] = fake_vendor.wait_for(1)
    assert (req.protocol, req.model) == ("anthropic", "claude-opus-4-8")
    assert not {"temperature", "top_p", "top_k"} & req.body.keys()
    assert req.body["thinking"] == {"type": "adaptive"} and req.body["output_config"] == {"effort": "medium"}
    assert req.headers["anthropic-version"] == "2026-10-21"


def test_an_unknown_claude_is_sent_conservatively_and_logged_once(fake_vendor, routed):
    for n in (1, 2):
        assert gemini_cli_call("via-nova", stream=True) == TEXT
        req = fake_vendor.wait_for(n)[n - 1]
        assert not {"temperature", "top_p", "top_k"} & req.body.keys()
        assert req.headers["anthropic-version"] == "2023-06-01"
    log = routed.wait_log("model claude-nova-9 is not in the capability table")
    assert log.count("not in the capability table") == 1


@STREAMS
def test_claude_codes_effort_and_structured_output_reach_a_chat_target(fake_vendor, routed, stream):
    client = anthropic.Anthropic()
    args = dict(model="via-gpt", max_tokens=8000, messages=[{"role": "user", "content": PROMPT}],
                thinking={"type": "adaptive"}, output_config={"effort": "max", "format": {
                    "type": "json_schema", "schema": SCHEMA}})
    if stream:
        with client.messages.stream(**args) as events:
            text = events.get_final_text()
    else:
        text = client.messages.create(**args).content[0].text
    assert text == TEXT

    [req] = fake_vendor.wait_for(1)
    assert (req.protocol, req.model) == ("chat", "gpt-5.4")
    assert req.body["reasoning_effort"] == "xhigh"  # max, as the nearest effort gpt-5.4 takes
    assert req.body["response_format"]["type"] == "json_schema"
    assert req.body["response_format"]["json_schema"]["schema"] == SCHEMA


@pytest.fixture
def overridden(rotator, fake_vendor):
    """Claudes as a config's overrides describe them: one moved to API version 2026-10-21 (which refuses sampling),
    one given OpenAI's effort levels."""
    return rotator({
        "providers": {"anthropic": {"models": {
            "claude-haiku-4-5": {"capabilities": {"anthropic_version": "2026-10-21"}},
            "claude-opus-4-8": {"capabilities": {"efforts": ["minimal", "low", "medium", "high"]}}}}},
        "routes": [{"models": ["via-haiku"], "targets": ["anthropic/claude-haiku-4-5"]},
                   {"models": ["via-opus"], "targets": ["anthropic/claude-opus-4-8"]}],
    })


@STREAMS
def test_a_chat_clients_json_object_reaches_claude_asked_for_in_words_without_sampling(fake_vendor, overridden,
                                                                                        stream):
    result = call("chat", make_client("chat"), stream, model="via-haiku", response_format={"type": "json_object"},
                  temperature=0.2)
    assert (result.text, result.finish) == (TEXT, FINISH["chat"]["text"])

    [req] = fake_vendor.wait_for(1)
    assert (req.protocol, req.model) == ("anthropic", "claude-haiku-4-5")
    assert "JSON object" in req.body["system"]  # Anthropic has no JSON mode without a schema: asked in words
    assert not {"temperature", "top_p", "top_k"} & req.body.keys()
    assert req.headers["anthropic-version"] == "2026-10-21"
    sdk_accepts("anthropic_messages", req.body)


def test_a_responses_clients_minimal_effort_reaches_claude_as_an_effort_its_api_has(fake_vendor, overridden):
    result = call("responses", make_client("responses"), False, model="via-opus", reasoning={"effort": "minimal"})
    assert result.finish == FINISH["responses"]["text"]

    [req] = fake_vendor.wait_for(1)
    assert req.body["thinking"] == {"type": "adaptive"} and req.body["output_config"] == {"effort": "low"}
    sdk_accepts("anthropic_messages", req.body)
