"""The model capability table: each column, its globs, the config's overrides, the conservative guess for a model
not in the table, and what a translated request looks like at its target because of it."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

import protocols.translate as translate
from protocols.capabilities import ANTHROPIC_2023, ANTHROPIC_2026, EFFORTS, overridden
from protocols.registry import cache_minimum, model_capabilities
from protocols.translate.common import JSON_INSTRUCTION
from rewrite.config import ConfigError, parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support import samples
from tests.support.engine_harness import FakeResponder, Upstream, sse
from tests.support.sdk_requests import sdk_accepts

CHAT_PATH = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
# Gemini CLI's generation config (a tool follow-up: thinking is off on those turns, the sampling stays).
GEMINI_CLI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
              "generationConfig": {"temperature": 1, "topP": 0.95, "topK": 64.0}}


def chat(model: str, **fields) -> dict:
    return {"model": model, "messages": HI, **fields}


def to(target: str, body: dict, source: str = "openai_chat", model: str = "") -> dict:
    """`body` translated for a target of protocol `target` whose model is the body's (or `model`)."""
    out = translate.translate_request(body, source, target, model)
    sdk_accepts(target, out)
    return out


# -- the columns -------------------------------------------------------------------------------------------------


def test_sampling_reaches_only_models_that_take_it():
    for model in ("claude-opus-4-8", "claude-fable-5", "claude-sonnet-5"):
        out = to("anthropic_messages", GEMINI_CLI, "gemini", model)
        assert not {"temperature", "top_p", "top_k"} & out.keys(), model
    out = to("anthropic_messages", GEMINI_CLI, "gemini", "claude-sonnet-4-5")
    assert (out["temperature"], out["top_p"], out["top_k"]) == (1, 0.95, 64)
    assert type(out["top_k"]) is int  # Gemini CLI's 64.0, as the integer Anthropic wants
    assert to("openai_chat", chat("gpt-5.4", temperature=0.2), "openai_chat").get("temperature") is None
    assert to("openai_chat", chat("gpt-4.1", temperature=0.2), "openai_chat")["temperature"] == 0.2
    assert to("gemini", chat("gemini-3-pro-preview", temperature=0.2))["generationConfig"]["temperature"] == 0.2


@pytest.mark.parametrize(("model", "thinking", "effort"), [
    ("claude-opus-4-8", {"type": "adaptive"}, "high"),
    ("claude-opus-5", {"type": "adaptive"}, "high"),
    ("claude-sonnet-4-5", {"type": "enabled", "budget_tokens": 24576}, None),
    ("claude-haiku-4-5", {"type": "enabled", "budget_tokens": 24576}, None),
])
def test_thinking_is_configured_the_way_each_claude_wants_it(model, thinking, effort):
    out = to("anthropic_messages", chat(model, reasoning_effort="high", max_tokens=32000))
    assert out["thinking"] == thinking
    assert out.get("output_config", {}).get("effort") == effort


@pytest.mark.parametrize(("model", "config"), [
    ("gemini-3-pro-preview", {"includeThoughts": True, "thinkingLevel": "HIGH"}),
    ("gemini-3.1-pro-preview", {"includeThoughts": True, "thinkingLevel": "HIGH"}),
    ("gemini-2.5-flash", {"includeThoughts": True, "thinkingBudget": 24576}),
])
def test_gemini_gets_a_level_or_a_budget_never_both(model, config):
    assert to("gemini", chat(model, reasoning_effort="high"))["generationConfig"]["thinkingConfig"] == config


@pytest.mark.parametrize(("target", "model", "asked", "sent"), [
    ("anthropic_messages", "claude-opus-4-6", "xhigh", "max"),  # 4.6 has no xhigh: the nearest, upwards
    ("anthropic_messages", "claude-opus-4-8", "minimal", "low"),
    ("anthropic_messages", "claude-opus-4-5", "max", "high"),
    ("openai_chat", "gpt-5.4", "max", "xhigh"),
    ("openai_chat", "gpt-5.4", "minimal", "low"),
    ("openai_chat", "gpt-5.6-sol", "max", "max"),
    ("anthropic_messages", "claude-opus-5-5", "max", "max"),
    ("gemini", "gemini-3-pro-preview", "medium", "HIGH"),  # 3 Pro has LOW and HIGH
    ("gemini", "gemini-3-flash-preview", "max", "HIGH"),
])
def test_an_effort_the_model_lacks_becomes_the_nearest_it_takes(target, model, asked, sent):
    out = to(target, chat(model, reasoning_effort=asked, max_tokens=32000))
    if target == "anthropic_messages":
        assert out["output_config"]["effort"] == sent
    elif target == "openai_chat":
        assert out["reasoning_effort"] == sent
    else:
        assert out["generationConfig"]["thinkingConfig"]["thinkingLevel"] == sent


ANTHROPIC_EFFORTS = ("low", "medium", "high", "xhigh", "max")  # output_config.effort, as the SDK types it


@pytest.mark.parametrize(("name", "caps"), [
    # an override listing OpenAI's levels for a Claude
    ("listed minimal", overridden(model_capabilities("anthropic", "claude-opus-4-8"), {"efforts": ["minimal", "low", "high"]})),
    ("lists none", overridden(model_capabilities("anthropic", "claude-haiku-4-5"), {"thinking": "adaptive"})),
    ("cannot turn off", overridden(model_capabilities("anthropic", "claude-haiku-4-5"), {"thinking": "adaptive",
                                                                             "thinking_off": False})),
])
@pytest.mark.parametrize("effort", ["none", *EFFORTS])
def test_anthropic_is_sent_only_the_efforts_its_api_has(name, caps, effort):
    body = {"model": "claude-x", "input": "hi", "reasoning": {"effort": effort}}
    out = translate.translate_request(body, "openai_responses", "anthropic_messages", caps=caps)
    sdk_accepts("anthropic_messages", out)
    sent = out.get("output_config", {}).get("effort")
    if effort == "none" and caps.thinking_off:
        assert out["thinking"] == {"type": "disabled"} and sent is None
    else:  # the nearest it takes that the API has (a tie goes up); thinking that cannot be off at the lowest
        expected = {"none": "low", "minimal": "low"}.get(effort, effort)
        if name == "listed minimal":  # (low and high)
            expected = {"medium": "high", "xhigh": "high", "max": "high"}.get(expected, expected)
        assert sent == expected


def test_a_claude_moved_to_the_2026_api_version_takes_no_sampling_unless_the_override_says():
    moved = overridden(model_capabilities("anthropic", "claude-haiku-4-5"), {"anthropic_version": ANTHROPIC_2026})
    assert moved.sampling == frozenset()
    out = translate.translate_request(chat("claude-haiku-4-5", temperature=0.3, response_format={
        "type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}), "openai_chat",
        "anthropic_messages", caps=moved)
    assert "temperature" not in out and out["output_config"]["format"]["schema"] == SCHEMA
    said = overridden(model_capabilities("anthropic", "claude-haiku-4-5"), {"anthropic_version": ANTHROPIC_2026,
                                                                "sampling": ["temperature"]})
    assert said.sampling == {"temperature"}
    assert overridden(model_capabilities("anthropic", "claude-haiku-4-5"), {"max_output_tokens": 1000}).sampling == \
        model_capabilities("anthropic", "claude-haiku-4-5").sampling


def test_max_effort_keeps_thinking_on_everywhere():
    assert to("anthropic_messages", chat("claude-opus-4-8", reasoning_effort="max"))["thinking"] == {"type": "adaptive"}
    budget = to("anthropic_messages", chat("claude-sonnet-4-5", reasoning_effort="max", max_tokens=20000))
    assert budget["thinking"] == {"type": "enabled", "budget_tokens": 19999}
    gemini = to("gemini", chat("gemini-2.5-pro", reasoning_effort="max"))["generationConfig"]["thinkingConfig"]
    assert gemini["thinkingBudget"] == -1  # the model decides: above every budget


@pytest.mark.parametrize(("target", "model", "expected"), [
    ("anthropic_messages", "claude-opus-4-8", {"thinking": {"type": "disabled"}}),
    ("anthropic_messages", "claude-fable-5", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}),
    ("anthropic_messages", "claude-opus-5-5", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}),
    ("gemini", "gemini-2.5-flash", {"thinkingBudget": 0}),
    ("gemini", "gemini-3-flash-preview", {"includeThoughts": True, "thinkingLevel": "MINIMAL"}),
    ("gemini", "gemini-3-pro-preview", {"includeThoughts": True, "thinkingLevel": "LOW"}),
])
def test_thinking_off_where_the_model_can_else_the_lowest_effort(target, model, expected):
    out = to(target, chat(model, reasoning_effort="none"))
    if target == "gemini":
        assert out["generationConfig"]["thinkingConfig"] == expected
    else:
        assert {k: out[k] for k in ("thinking", "output_config") if k in out} == expected


def test_a_model_that_does_not_reason_gets_no_effort():
    assert "reasoning_effort" not in to("openai_chat", chat("gpt-4.1", reasoning_effort="high"))


def test_max_tokens_is_held_to_the_models_maximum():
    assert to("anthropic_messages", chat("claude-haiku-4-5", max_tokens=200000))["max_tokens"] == 64000
    assert to("anthropic_messages", chat("claude-opus-4-8", max_tokens=1000))["max_tokens"] == 1000


def test_the_columns_without_a_body_field_of_their_own():
    assert model_capabilities("anthropic", "claude-opus-4-8").anthropic_version == ANTHROPIC_2026
    assert model_capabilities("anthropic", "claude-sonnet-4-5").anthropic_version == ANTHROPIC_2023
    assert model_capabilities("anthropic", "claude-sonnet-4-5").prefill and model_capabilities("gemini", "gemini-2.5-pro").prefill
    assert not model_capabilities("anthropic", "claude-opus-4-8").prefill and not model_capabilities("openai", "gpt-5.4").prefill
    assert model_capabilities("anthropic", "claude-opus-4-8").mid_system and model_capabilities("anthropic", "claude-fable-5").mid_system
    assert not model_capabilities("anthropic", "claude-opus-4-7").mid_system
    assert not model_capabilities("anthropic", "claude-sonnet-5").mid_system
    assert model_capabilities("openai", "gpt-5.4").mid_system and not model_capabilities("gemini", "gemini-3-pro-preview").mid_system


@pytest.mark.parametrize(("family", "model", "known_as"), [
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),  # a dated snapshot
    ("anthropic", "CLAUDE-OPUS-4-8", "claude-opus-4-8"),
    ("gemini", "models/gemini-2.5-pro", "gemini-2.5-pro"),
    ("openai", "gpt-5.4-mini", "gpt-5.4"),
])
def test_globs_match_snapshots_prefixes_and_case(family, model, known_as):
    assert model_capabilities(family, model) == model_capabilities(family, known_as) and model_capabilities(family, model).known


@pytest.mark.parametrize(("model", "known_as"), [
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),  # an inference profile
    ("anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),  # a foundation model
    ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
     "claude-haiku-4-5"),
])
def test_a_bedrock_id_of_an_anthropic_model_is_known_as_that_model(model, known_as):
    assert model_capabilities("bedrock", model) == model_capabilities("anthropic", known_as) and model_capabilities("bedrock", model).known
    assert cache_minimum("bedrock", model) == cache_minimum("anthropic", known_as)


def test_another_vendors_model_on_bedrock_gets_converse_sampling_and_no_reasoning():
    for model in ("meta.llama3-70b-instruct-v1:0", "us.amazon.nova-pro-v1:0", "arn:aws:bedrock:us-east-1:1:x/abc"):
        caps = model_capabilities("bedrock", model)
        assert not caps.known and caps.sampling == {"temperature", "top_p"} and caps.thinking == "none"


def test_an_unknown_model_gets_the_conservative_guess():
    claude = model_capabilities("anthropic", "claude-nova-9")
    assert not claude.known and not claude.sampling and claude.anthropic_version == ANTHROPIC_2023
    out = to("anthropic_messages", chat("claude-nova-9", temperature=0.5, reasoning_effort="xhigh"))
    assert "temperature" not in out
    assert out["thinking"] == {"type": "adaptive"} and out["output_config"] == {"effort": "high"}
    assert "thinking" not in to("anthropic_messages", chat("claude-nova-9"))  # adaptive only when asked for
    gemini = to("gemini", chat("gemini-9-ultra", temperature=0.5, reasoning_effort="medium"))["generationConfig"]
    assert gemini["temperature"] == 0.5 and gemini["thinkingConfig"]["thinkingLevel"] in ("LOW", "HIGH")


# -- structured output and effort, both ways ---------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
CLAUDE_CODE = {"model": "claude-opus-4-8", "max_tokens": 64000, "messages": HI, "thinking": {"type": "adaptive"},
               "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": SCHEMA}}}


@pytest.mark.parametrize("source", ["openai_chat", "openai_responses", "gemini"])
def test_structured_output_reaches_anthropic_as_output_config_format(source):
    bodies = {
        "openai_chat": chat("claude-opus-4-8", response_format={"type": "json_schema", "json_schema": {
            "name": "place", "schema": SCHEMA, "strict": True}}),
        "openai_responses": {"model": "claude-opus-4-8", "input": "hi", "text": {"format": {
            "type": "json_schema", "name": "place", "schema": SCHEMA, "strict": True}}},
        "gemini": {"contents": GEMINI_CLI["contents"], "generationConfig": {
            "responseMimeType": "application/json", "responseJsonSchema": SCHEMA}},
    }
    out = to("anthropic_messages", bodies[source], source, "claude-opus-4-8")
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}


FORMATS = {
    "openai_chat": chat("m", response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}),
    "openai_responses": {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "place",
                                                                          "schema": SCHEMA}}},
    "anthropic_messages": {"model": "m", "max_tokens": 100, "messages": HI, "output_config": {
        "format": {"type": "json_schema", "schema": SCHEMA}}},
    "gemini": {"contents": GEMINI_CLI["contents"], "generationConfig": {"responseMimeType": "application/json",
                                                                        "responseJsonSchema": SCHEMA}},
}


@pytest.mark.parametrize("target", list(FORMATS))
@pytest.mark.parametrize("source", list(FORMATS))
def test_a_json_schema_survives_every_translation(source, target):
    out = to(target, FORMATS[source], source, "m")
    assert translate.request_to_ir(target, out, "m").response_format.schema == SCHEMA


JSON_OBJECT = {  # JSON without a schema, in each client protocol's words; no prompt says "json"
    "openai_chat": chat("m", response_format={"type": "json_object"}),
    "openai_responses": {"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}},
    "gemini": {"contents": GEMINI_CLI["contents"], "generationConfig": {"responseMimeType": "application/json"}},
}


@pytest.mark.parametrize("source", list(JSON_OBJECT))
def test_json_without_a_schema_is_asked_of_anthropic_in_words(source):
    out = to("anthropic_messages", JSON_OBJECT[source], source, "claude-opus-4-8")
    assert "output_config" not in out  # Anthropic's format takes a schema, and closes every object it names
    assert out["system"] == JSON_INSTRUCTION


@pytest.mark.parametrize("source", list(JSON_OBJECT))
def test_json_without_a_schema_keeps_its_mode_elsewhere_and_says_json_to_openai(source):
    chat_out = to("openai_chat", JSON_OBJECT[source], source, "gpt-4.1")
    assert chat_out["response_format"] == {"type": "json_object"}
    assert source == "openai_chat" or chat_out["messages"][0] == {"role": "system", "content": JSON_INSTRUCTION}
    responses = to("openai_responses", JSON_OBJECT[source], source, "gpt-4.1")
    assert responses["text"] == {"format": {"type": "json_object"}}
    assert source == "openai_responses" or responses["instructions"] == JSON_INSTRUCTION
    if source != "gemini":
        assert to("gemini", JSON_OBJECT[source], source)["generationConfig"] == {
            "responseMimeType": "application/json"}


def test_a_request_that_says_json_is_not_told_again_by_openai_targets():
    body = {"model": "m", "input": "List three colours as a JSON object.", "text": {"format": {"type": "json_object"}}}
    assert to("openai_chat", body, "openai_responses")["messages"] == [
        {"role": "user", "content": "List three colours as a JSON object."}]
    claude = to("anthropic_messages", {**body, "instructions": "Be brief."}, "openai_responses", "claude-opus-4-8")
    assert claude["system"] == f"Be brief.\n\n{JSON_INSTRUCTION}"  # no JSON mode at all: always said


def test_claude_codes_effort_and_format_reach_every_other_target():
    chat_out = to("openai_chat", CLAUDE_CODE, "anthropic_messages", "gpt-5.4")
    assert chat_out["reasoning_effort"] == "high"
    assert chat_out["response_format"]["json_schema"]["schema"] == SCHEMA
    responses = to("openai_responses", CLAUDE_CODE, "anthropic_messages")
    assert responses["reasoning"]["effort"] == "high"
    assert responses["text"]["format"]["type"] == "json_schema" and responses["text"]["format"]["schema"] == SCHEMA
    gemini = to("gemini", CLAUDE_CODE, "anthropic_messages")["generationConfig"]
    assert gemini["thinkingConfig"]["thinkingLevel"] == "HIGH"
    assert (gemini["responseMimeType"], gemini["responseJsonSchema"]) == ("application/json", SCHEMA)


def test_an_effort_without_thinking_still_travels():
    body = {**CLAUDE_CODE, "output_config": {"effort": "low"}}
    del body["thinking"]
    assert to("openai_chat", body, "anthropic_messages")["reasoning_effort"] == "low"


@pytest.mark.parametrize("effort", ["xhigh", "max"])
def test_efforts_above_high_from_the_openai_protocols_reach_claude(effort):
    responses = {"model": "claude-opus-4-8", "input": "hi", "reasoning": {"effort": effort}}
    out = to("anthropic_messages", responses, "openai_responses")
    assert out["thinking"] == {"type": "adaptive"} and out["output_config"] == {"effort": effort}


def test_a_gemini_level_reaches_the_others():
    body = {"contents": GEMINI_CLI["contents"], "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}}
    assert to("openai_chat", body, "gemini", "gpt-5.4")["reasoning_effort"] == "low"
    assert to("anthropic_messages", body, "gemini", "claude-opus-4-8")["output_config"] == {"effort": "low"}


# -- the engine: overrides, notes in the flow, the version header, the one log line ---------------------------

CONFIG = """
providers:
  anthropic:
    base_url: 'http://anthropic.test'
    keys: [sk-ant-a1]
    models:
      'claude-house-*': {capabilities: {sampling: [temperature], thinking: budget, anthropic_version: '2026-10-21'}}
routes:
  - {models: [to-opus], targets: [anthropic/claude-opus-4-8]}
  - {models: [to-house], targets: [anthropic/claude-house-2]}
  - {models: [to-unknown], targets: [anthropic/claude-nova-9]}
"""


def routed(model: str, body: dict, rt: Router | None = None) -> tuple[httpx.Request, Job]:
    rt = rt or Router(parse(CONFIG))
    upstream = Upstream([lambda r: sse([samples.ANTHROPIC_TEXT])])
    route = rt.route("api.openai.com", "POST", CHAT_PATH)
    assert route is not None
    job = Job("job-0001", route, route.provider)
    raw = json.dumps({**body, "model": model, "stream": True}).encode()
    cfg = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30, first_token_retries=0)

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
            headers = [("content-type", "application/json"), ("authorization", "Bearer sk-client")]
            await Exchange(client, cfg, job, LoopbackRequest("POST", CHAT_PATH, headers, raw), FakeResponder(),
                           router=rt).run()

    asyncio.run(go())
    [sent] = upstream.seen
    return sent, job


def test_a_routed_request_is_fitted_and_the_flow_says_so():
    sent, job = routed("to-opus", chat("", temperature=0.3, top_p=0.9, reasoning_effort="minimal"))
    body = json.loads(sent.content)
    assert "temperature" not in body and "top_p" not in body
    assert body["output_config"] == {"effort": "low"}
    assert sent.headers["anthropic-version"] == ANTHROPIC_2026
    [step] = job.records["steps"]
    assert "temperature dropped: claude-opus-4-8 does not accept it" in step["changes"]
    assert "top_p dropped: claude-opus-4-8 does not accept it" in step["changes"]
    assert "effort minimal sent as low, the nearest claude-opus-4-8 accepts" in step["changes"]


def test_a_config_glob_overrides_the_table():
    sent, _ = routed("to-house", chat("", temperature=0.3, top_p=0.9, max_tokens=4000))
    body = json.loads(sent.content)
    assert body["temperature"] == 0.3 and "top_p" not in body
    assert sent.headers["anthropic-version"] == "2026-10-21"
    sent, _ = routed("to-house", chat("", reasoning_effort="high", max_tokens=4000))
    assert json.loads(sent.content)["thinking"] == {"type": "enabled", "budget_tokens": 3999}


def test_a_translated_request_is_fitted_to_the_model_a_rename_asks_for():
    alias = "      claude-alias: {adapters: [{rename_model: claude-opus-4-8}]}\n"
    config = CONFIG.replace("    models:\n", f"    models:\n{alias}")
    config += "  - {models: [to-alias], targets: [anthropic/claude-alias]}\n"
    sent, _ = routed("to-alias", chat("", temperature=0.3, reasoning_effort="xhigh"), Router(parse(config)))
    body = json.loads(sent.content)
    assert body["model"] == "claude-opus-4-8" and "temperature" not in body
    assert body["output_config"] == {"effort": "xhigh"}  # an unknown Claude would get high
    assert sent.headers["anthropic-version"] == ANTHROPIC_2026


def test_an_unknown_model_is_logged_once_per_provider(caplog):
    caplog.set_level(logging.INFO, "rotator")
    rt = Router(parse(CONFIG))
    for model in ("to-unknown", "to-unknown", "to-opus"):
        sent, _ = routed(model, chat("", temperature=0.3), rt)
        assert "temperature" not in json.loads(sent.content)
    assert [r.getMessage() for r in caplog.records if "capability table" in r.getMessage()] == [
        "rotator: anthropic: model claude-nova-9 is not in the capability table: sent as an unknown anthropic model "
        "(docs/capabilities.md)"]


@pytest.mark.parametrize(("columns", "problem"), [
    ("{sampling: [seed]}", "sampling"),
    ("{thinking: sometimes}", "thinking"),
    ("{efforts: [extreme]}", "efforts"),
    ("{anthropic_version: latest}", "anthropic_version"),
    ("{prefil: true}", "prefil"),
])
def test_a_bad_capability_override_is_refused_at_its_place(columns, problem):
    config = f"providers:\n  anthropic:\n    models:\n      'claude-*': {{capabilities: {columns}}}\n"
    with pytest.raises(ConfigError, match=rf"providers\.anthropic\.models\.claude-\*\.capabilities\.{problem}"):
        parse(config)


@pytest.mark.parametrize("family, model, prefill, strip, marker, echo", [
    ("anthropic", "claude-sonnet-4-5-20250929", True, True, None, False),  # trailing whitespace: 400
    ("anthropic", "claude-opus-4-6", False, False, None, False),  # prefill removed in 4.6
    ("openai", "mistral-large-latest", True, False, "prefix", True),  # repeats the prefix
    ("openai", "deepseek-chat", True, False, "prefix", False),
    ("gemini", "gemini-3.1-pro-preview", True, False, None, False),
    ("gemini", "gemini-3.5-flash", True, False, None, False),
    ("gemini", "gemini-3.5-flash-lite", False, False, None, False),  # "Requests ending with a model turn ..."
    ("gemini", "gemini-3.6-flash", False, False, None, False),
    ("openai", "gpt-5.4", False, False, None, False),  # a trailing assistant turn makes it start over
    ("anthropic", "claude-nova-9", False, False, None, False),  # unknown: asked in words
])
def test_the_table_says_how_a_model_takes_a_prefill(family, model, prefill, strip, marker, echo):
    caps = model_capabilities(family, model)
    assert (caps.prefill, caps.prefill_strip, caps.prefill_marker, caps.prefill_echo) == (prefill, strip, marker, echo)


def test_mistral_and_deepseek_keep_what_an_unknown_openai_model_gets_besides_prefill():
    known, unknown = model_capabilities("openai", "deepseek-chat"), model_capabilities("openai", "some-model")
    assert (known.thinking, known.efforts, known.mid_system) == (unknown.thinking, unknown.efforts, unknown.mid_system)
