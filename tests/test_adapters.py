"""The adapter chain: YAML -> config -> provider -> chain -> the request the host gets."""

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols
from rewrite.adapters.registry import ADAPTERS
from rewrite.config import ConfigError, parse
from rewrite.providers import build

ZAI = """
providers:
  zai:
    kind: anthropic
    base_url: https://api.z.ai/api/anthropic
    keys: [k1]
    adapters: [{drop_tool_types: [custom]}, {headers: {set: {anthropic-beta: fine-grained-tool-streaming}}}]
    models:
      glm-4.6: {adapters: [{force: {temperature: 1.0}}, {cap: {max_tokens: 32000}}]}
"""


def provider(text: str, name: str):
    return next(p for p in build(parse(text)) if p.name == name)


def adapted(adapters: str, body: dict, headers=(), model: str = "m", kind: str = "openai"):
    """The request after a chain of `adapters` (YAML flow list) on a provider of `kind`."""
    p = provider(f"providers: {{t: {{kind: {kind}, base_url: 'http://127.0.0.1:1/v1', adapters: {adapters}}}}}", "t")
    return p.adapters.chain_for(model).apply_request(body, list(headers), model)


def test_the_issue_example_applies_provider_then_model_adapters():
    zai = provider(ZAI, "zai")
    body = {
        "model": "glm-4.6",
        "max_tokens": 64000,
        "temperature": 0.2,
        "tools": [{"type": "custom", "name": "Read", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    req = zai.adapters.chain_for("glm-4.6").apply_request(body, [("anthropic-beta", "other"), ("x-keep", "1")],
                                                          "glm-4.6")
    assert req.body["temperature"] == 1.0
    assert req.body["max_tokens"] == 32000 and isinstance(req.body["max_tokens"], int)
    assert req.body["tools"] == [{"name": "Read", "input_schema": {"type": "object"}}]
    assert req.headers == [("x-keep", "1"), ("anthropic-beta", "fine-grained-tool-streaming")]
    # another model gets the provider's adapters only
    other = zai.adapters.chain_for("glm-4.5").apply_request(body, [], "glm-4.5")
    assert other.body["temperature"] == 0.2 and other.body["max_tokens"] == 64000
    assert "type" not in other.body["tools"][0]


def test_the_clients_body_and_headers_are_left_as_they_were():
    body = {"model": "m", "messages": [{"role": "developer", "content": "x"}], "temperature": 2}
    headers = [("a", "1")]
    before = copy.deepcopy(body)
    adapted("[developer_to_system, {force: {temperature: 1}}, {headers: {set: {b: '2'}}}]", body, headers)
    assert body == before and headers == [("a", "1")]


def test_a_provider_without_adapters_has_an_empty_chain():
    assert not provider("", "openai").adapters.chain_for("gpt-5").adapters


def test_whether_a_provider_has_any_adapter_is_decided_once_its_models_included():
    assert not provider("", "openai").adapters.configured  # (its requests never look a chain up)
    per_model = provider("providers: {t: {kind: openai, base_url: 'http://127.0.0.1:1/v1', models: "
                         "{m: {adapters: [developer_to_system]}}}}", "t")
    assert per_model.adapters.configured and not per_model.adapters.chain_for("other").adapters
    assert provider(ZAI, "zai").adapters.configured


def test_force_sets_dotted_paths_and_overrides():
    req = adapted("[{force: {temperature: 1.0, thinking.type: enabled, thinking.budget_tokens: 1024}}]",
                  {"temperature": 0.3, "thinking": "off"})
    assert req.body == {"temperature": 1.0, "thinking": {"type": "enabled", "budget_tokens": 1024}}


def test_force_values_are_not_shared_between_requests():
    p = provider("providers: {t: {kind: openai, base_url: 'http://x/v1', adapters: "
                 "[{force: {metadata: {tier: a}}}, {drop: [metadata.tier]}]}}", "t")
    chain = p.adapters.chain_for("m")
    assert chain.apply_request({}, [], "m").body == {"metadata": {}}
    assert chain.apply_request({}, [], "m").body == {"metadata": {}}
    assert p.adapters.common.adapters[0].options == {"metadata": {"tier": "a"}}


def test_default_sets_only_absent_or_null_fields():
    req = adapted("[{default: {max_tokens: 8192, generationConfig.topK: 40, stream_options.include_usage: true}}]",
                  {"max_tokens": 100, "generationConfig": {"topK": None}})
    assert req.body == {"max_tokens": 100, "generationConfig": {"topK": 40}, "stream_options": {"include_usage": True}}


def test_default_leaves_a_field_under_a_non_mapping_to_the_host():
    body = {"generationConfig": "odd", "thinking": None}
    req = adapted("[{default: {generationConfig.topK: 40, thinking.type: disabled}}]", body)
    assert req.body == {"generationConfig": "odd", "thinking": {"type": "disabled"}}


def test_drop_removes_fields_and_ignores_missing_ones():
    req = adapted("[{drop: [logprobs, metadata.user_id, no.such.field]}]",
                  {"logprobs": True, "metadata": {"user_id": "u", "keep": 1}, "no": 3})
    assert req.body == {"metadata": {"keep": 1}, "no": 3}


def test_cap_lowers_only_numbers_above_the_maximum():
    assert adapted("[{cap: {max_tokens: 32000}}]", {"max_tokens": 64000}).body == {"max_tokens": 32000}
    assert adapted("[{cap: {max_tokens: 32000}}]", {"max_tokens": 1000}).body == {"max_tokens": 1000}
    assert adapted("[{cap: {max_tokens: 32000}}]", {}).body == {}  # absent stays absent
    assert adapted("[{cap: {max_tokens: 32000}}]", {"max_tokens": "lots"}).body == {"max_tokens": "lots"}
    assert adapted("[{cap: {top_p: 0.9}}]", {"top_p": 1}).body == {"top_p": 0.9}


def test_clamp_brings_numbers_into_range():
    chain = "[{clamp: {temperature: {min: 0, max: 1}, generationConfig.topP: {min: 0.1}}}]"
    assert adapted(chain, {"temperature": 1.7, "generationConfig": {"topP": 0}}).body == {
        "temperature": 1, "generationConfig": {"topP": 0.1}}
    assert adapted(chain, {"temperature": -0.5}).body == {"temperature": 0}
    assert adapted(chain, {"temperature": 0.5}).body == {"temperature": 0.5}
    assert adapted(chain, {"temperature": True}).body == {"temperature": True}  # a bool is not a number here


def test_rename_model_in_the_body():
    req = adapted("[{rename_model: glm-4.6-air}]", {"model": "claude-sonnet-4-5", "messages": []},
                  model="claude-sonnet-4-5")
    assert req.body["model"] == "glm-4.6-air" and req.model == "glm-4.6-air"


def test_rename_model_in_a_gemini_path():
    p = provider("providers: {gemini: {adapters: [{rename_model: gemini-2.5-flash}]}}", "gemini")
    body = {"contents": []}
    path, out, _ = p.adapters.chain_for("gemini-2.5-pro").apply_to_path(
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent", body, [], "gemini-2.5-pro", protocols.get("gemini"))
    assert path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert out == {"contents": []}  # no model field is added to a Gemini body


def test_headers_set_and_remove_case_insensitively():
    req = adapted("[{headers: {set: {Anthropic-Beta: x}, remove: [X-Stainless-OS]}}]", {},
                  [("anthropic-beta", "old"), ("x-stainless-os", "Linux"), ("User-Agent", "sdk")])
    assert req.headers == [("User-Agent", "sdk"), ("anthropic-beta", "x")]


def test_drop_tool_types_keeps_custom_user_tools_and_removes_server_tools():
    body = {
        "tools": [
            {"type": "custom", "name": "Read", "input_schema": {}},
            {"type": "web_search_20250305", "name": "web_search"},
            {"name": "Plain", "input_schema": {}},
        ],
        "tool_choice": {"type": "auto"},
    }
    req = adapted("[{drop_tool_types: [custom, web_search_20250305]}]", body, kind="anthropic")
    assert req.body["tools"] == [{"name": "Read", "input_schema": {}}, {"name": "Plain", "input_schema": {}}]
    assert req.body["tool_choice"] == {"type": "auto"}


def test_drop_tool_types_removes_tool_choice_with_the_last_tool():
    body = {"tools": [{"type": "web_search", "search_context_size": "low"}], "tool_choice": "auto", "input": "hi"}
    assert adapted("[{drop_tool_types: [web_search]}]", body).body == {"input": "hi"}


def test_developer_to_system_in_chat_and_responses_bodies():
    chat = {"messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    assert adapted("[developer_to_system]", chat).body["messages"] == [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    responses = {"input": [{"type": "message", "role": "developer", "content": "x"}, {"type": "function_call"}]}
    assert adapted("[{developer_to_system: {}}]", responses).body["input"] == [
        {"type": "message", "role": "system", "content": "x"}, {"type": "function_call"}]
    assert adapted("[developer_to_system]", {"input": "just text"}).body == {"input": "just text"}


def test_reasoning_field_moves_reasoning_in_the_request():
    body = {"messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": "a", "reasoning_content": "thought"}]}
    req = adapted("[{reasoning_field: reasoning}]", body)
    assert req.body["messages"][1] == {"role": "assistant", "content": "a", "reasoning": "thought"}


def test_reasoning_field_moves_reasoning_back_in_the_answer():
    p = provider("providers: {t: {kind: openai, base_url: 'http://x/v1', adapters: [{reasoning_field: reasoning}]}}", "t")
    chain = p.adapters.chain_for("m")
    event = {"choices": [{"index": 0, "delta": {"reasoning": "hmm"}}]}
    assert chain.answer_event(event) == {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}
    body = {"choices": [{"message": {"role": "assistant", "content": "a", "reasoning": "r"}}]}
    assert chain.answer_body(body)["choices"][0]["message"] == {
        "role": "assistant", "content": "a", "reasoning_content": "r"}
    assert chain.answer_event({"choices": [], "usage": {}}) == {"choices": [], "usage": {}}


def test_reasoning_field_the_other_way():
    req = adapted("[{reasoning_field: reasoning_content}]", {"messages": [{"role": "assistant", "reasoning": "r"}]})
    assert req.body["messages"] == [{"role": "assistant", "reasoning_content": "r"}]


def test_adapters_run_in_config_order():
    req = adapted("[{force: {max_tokens: 50000}}, {cap: {max_tokens: 32000}}]", {})
    assert req.body == {"max_tokens": 32000}
    req = adapted("[{cap: {max_tokens: 32000}}, {force: {max_tokens: 50000}}]", {})
    assert req.body == {"max_tokens": 50000}


def test_malformed_bodies_are_left_to_the_host():
    weird = {"messages": "not a list", "tools": {"a": 1}, "input": [1, None, "x"], "choices": 3}
    chain = ("[developer_to_system, {reasoning_field: reasoning}, {drop_tool_types: [custom]}, "
             "{cap: {messages.x: 1}}, {drop: [tools.a.b]}]")
    assert adapted(chain, weird).body == weird


def test_every_built_in_adapter_is_registered():
    assert set(ADAPTERS) == {"force", "default", "drop", "cap", "clamp", "rename_model", "headers",
                             "drop_tool_types", "developer_to_system", "reasoning_field"}


@pytest.mark.parametrize(
    "adapters, message",
    [
        ("{adapters: [{cap: {max_tokens: x}}]}", "providers.zai.adapters.0.cap.max_tokens: Input should be a valid number"),
        ("{models: {glm-4.6: {adapters: [{cap: {max_tokens: x}}]}}}",
         "providers.zai.models.glm-4.6.adapters.0.cap.max_tokens: Input should be a valid number"),
        ("{adapters: [{no_such: 1}]}", "providers.zai.adapters.0: unknown adapter 'no_such'"),
        ("{adapters: [cap]}", "providers.zai.adapters.0.cap:"),
        ("{adapters: [{cap: 3, drop: [a]}]}", "providers.zai.adapters.0: an adapter is a mapping of one"),
        ("{adapters: [{clamp: {temperature: {min: 2, max: 1}}}]}", "adapters.0.clamp.temperature: Value error, min"),
        ("{adapters: [{clamp: {temperature: {}}}]}", "adapters.0.clamp.temperature:"),
        ("{adapters: [{force: {'a..b': 1}}]}", "adapters.0.force:"),
        ("{adapters: [{drop: []}]}", "adapters.0.drop:"),
        ("{adapters: [{headers: {set: {authorization: x}}}]}", "adapters.0.headers.set:"),
        ("{adapters: [{headers: {remove: [x-api-key]}}]}", "adapters.0.headers.remove:"),
        ("{adapters: [{headers: {set: {'bad name': x}}}]}", "adapters.0.headers.set:"),
        ("{adapters: [{headers: {set: {x-a: \"a\\nb\"}}}]}", "adapters.0.headers.set:"),
        ("{adapters: [{headers: {}}]}", "adapters.0.headers:"),
        ("{adapters: [{rename_model: 'a b'}]}", "adapters.0.rename_model:"),
        ("{adapters: [{reasoning_field: thoughts}]}", "adapters.0.reasoning_field:"),
        ("{adapters: [{developer_to_system: {always: true}}]}", "adapters.0.developer_to_system.always:"),
        ("{adapters: [{drop_tool_types: custom}]}", "adapters.0.drop_tool_types:"),
        ("{adapters: {cap: 1}}", "providers.zai.adapters:"),
        ("{adapters: [{force: {metadata.day: 2025-01-01}}]}", "adapters.0.force.metadata.day:"),  # a YAML date
        ("{models: {glm: {adapter: []}}}", "providers.zai.models.glm.adapter:"),
    ],
)
def test_a_bad_adapter_config_is_one_line_naming_the_field(adapters, message):
    text = "providers: {zai: {kind: anthropic, base_url: 'https://api.z.ai/api/anthropic', " + adapters[1:] + "}"
    with pytest.raises(ConfigError) as e:
        build(parse(text))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


EVERY_ADAPTER = (
    "[{force: {a.b: 1}}, {default: {c.d: [1]}}, {drop: [e.f]}, {cap: {g.h: 1}}, {clamp: {i: {min: 0}}}, "
    "{rename_model: x}, {headers: {set: {k: v}}}, {drop_tool_types: [custom, function]}, developer_to_system, "
    "{reasoning_field: reasoning}]"
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["a", "b", "c", "e", "g", "h", "i", "model", "messages", "input", "tools", "role", "type", "input_schema",
         "reasoning_content", "choices", "delta", "message"]), inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "c", "e", "g", "i", "model", "messages", "input", "tools", "choices"]),
                       JSON, max_size=6))
def test_any_json_body_is_adapted_without_an_error(body):
    p = provider(f"providers: {{t: {{kind: openai, base_url: 'http://x/v1', adapters: {EVERY_ADAPTER}}}}}", "t")
    chain = p.adapters.chain_for("m")
    req = chain.apply_request(body, [], "m")
    json.dumps(req.body, allow_nan=False)  # still sendable
    chain.answer_event(copy.deepcopy(body))
    chain.answer_body(copy.deepcopy(body))
