"""Adapters from the YAML config change what the vendor receives, through the real proxy and the official SDKs.

The three providers' adapters are in one config, so the tests share one mitmdump.
"""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai

from tests.support.clients import WEATHER_SCHEMA
from tests.support.fake_vendor import TEXT

pytestmark = pytest.mark.e2e

ADAPTERS = {
    "anthropic": {
        "adapters": [
            {"drop_tool_types": ["custom", "web_search_20250305"]},
            {"headers": {"set": {"anthropic-beta": "rotator-adapted"}, "remove": ["x-stainless-os"]}},
        ],
        "models": {"claude-haiku-4-5": {"adapters": [{"force": {"temperature": 1.0}}, {"cap": {"max_tokens": 32}}]}},
    },
    "openai": {
        "adapters": [
            "developer_to_system",
            {"reasoning_field": "reasoning"},
            {"default": {"metadata.tier": "adapted"}},
            {"drop": ["logprobs"]},
            {"clamp": {"temperature": {"min": 0.5, "max": 1}}},
        ],
    },
    "gemini": {"models": {"gemini-2.5-flash": {"adapters": [{"rename_model": "gemini-2.5-pro"}]}}},
}
CUSTOM_TOOL = {"type": "custom", "name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}
SERVER_TOOL = {"type": "web_search_20250305", "name": "web_search"}


@pytest.fixture
def adapted(rotator):
    return rotator(providers=ADAPTERS)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_provider_and_model_adapters(fake_vendor, adapted, stream):
    client = anthropic.Anthropic()
    kwargs = dict(model="claude-haiku-4-5", max_tokens=4000, extra_body={"temperature": 0.2},
                  tools=[CUSTOM_TOOL, SERVER_TOOL], messages=[{"role": "user", "content": "hi"}])
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.content[0].text == TEXT

    [req] = fake_vendor.wait_for(1)
    assert req.body["temperature"] == 1.0
    assert req.body["max_tokens"] == 32
    assert req.body["tools"] == [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}]
    assert req.headers["anthropic-beta"] == "rotator-adapted"
    assert "x-stainless-os" not in req.headers
    assert req.stream  # after a non-stream call was turned into an upstream stream
    assert req.credential.startswith("sk-ant-pool-")  # the credential is still the pool's


def test_model_adapters_apply_to_their_model_only(fake_vendor, adapted):
    anthropic.Anthropic().messages.create(model="claude-opus-4-6", max_tokens=4000, extra_body={"temperature": 0.2},
                                          messages=[{"role": "user", "content": "hi"}])
    [req] = fake_vendor.wait_for(1)
    assert (req.body["max_tokens"], req.body["temperature"]) == (4000, 0.2)
    assert req.headers["anthropic-beta"] == "rotator-adapted"  # the provider's adapters still apply


def test_chat_adapters(fake_vendor, adapted):
    completion = openai.OpenAI().chat.completions.create(
        model="gpt-4o-mini",
        temperature=1.8,
        logprobs=True,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", "reasoning_content": "greet back"},  # type: ignore[typeddict-unknown-key]
            {"role": "user", "content": "again"},
        ],
    )
    assert completion.choices[0].message.content == TEXT

    [req] = fake_vendor.wait_for(1)
    assert [m["role"] for m in req.body["messages"]] == ["system", "user", "assistant", "user"]
    assert req.body["messages"][2] == {"role": "assistant", "content": "hello", "reasoning": "greet back"}
    assert req.body["metadata"] == {"tier": "adapted"}
    assert "logprobs" not in req.body
    assert req.body["temperature"] == 1


def test_responses_developer_messages_become_system(fake_vendor, adapted):
    openai.OpenAI().responses.create(model="gpt-4o-mini", input=[{"role": "developer", "content": "Be brief."},
                                                                  {"role": "user", "content": "hi"}])
    [req] = fake_vendor.wait_for(1)
    assert [item["role"] for item in req.body["input"]] == ["system", "user"]


def test_gemini_rename_model_goes_into_the_path(fake_vendor, adapted):
    client = genai.Client()  # (kept: the SDK closes its HTTP client when the Client object goes)
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert answer.text == TEXT

    [req] = fake_vendor.wait_for(1)
    assert req.path == "/v1/models/gemini-2.5-pro:streamGenerateContent"  # (google-genai 3.x calls v1)
    assert req.model == "gemini-2.5-pro"
    assert "model" not in req.body
