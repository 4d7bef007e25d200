"""Request translation: the same conversation, said in each protocol, survives every translation pair."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols.translate as translate
from protocols.registry import model_capabilities
from protocols.unified import (
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    GENERATED_TOOL_ID_PREFIX,
    Image,
    Message,
    Reasoning,
    ReasoningConfig,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    instructions,
)
from tests.support import translate_samples as S
from tests.support.sdk_requests import sdk_accepts

PROTOCOLS = tuple(S.REQUESTS)
PAIRS = [(a, b) for a in PROTOCOLS for b in PROTOCOLS]
MODEL_IN_PATH = {"gemini": S.GEMINI_MODEL}
# Per target protocol, a model that takes sampling parameters and thinking budgets (the fixtures' own models are
# each of one vendor: as the model of another vendor they would be unknown, and fitted conservatively).
SAMPLING_MODELS = {"openai_chat": ("openai", "gpt-4.1"), "openai_responses": ("openai", "gpt-4.1"),
                   "anthropic_messages": ("anthropic", "claude-sonnet-4-5"), "gemini": ("gemini", "gemini-2.5-pro")}


def takes_sampling(target: str):
    return model_capabilities(*SAMPLING_MODELS[target])


def to_ir(protocol: str, body: dict) -> Request:
    return translate.request_to_ir(protocol, body, MODEL_IN_PATH.get(protocol, ""))


def portable(request: Request) -> dict:
    """What every protocol can say: instructions, turns (consecutive same-role turns merged), text, images, tool
    calls with parsed arguments, results (an error flag as the "Error: " prefix the OpenAI protocols use), tools,
    tool_choice and sampling. Tool call ids become labels in order of appearance: what matters is that a result
    names the call it answers."""
    labels: dict[str, str] = {}

    def label(call_id: str) -> str:
        return labels.setdefault(call_id, f"call{len(labels)}")

    def part(p):
        if isinstance(p, Text):
            return ("text", p.text)
        if isinstance(p, Image):
            return ("image", p.url) if p.url else ("image", p.media_type, p.data)
        if isinstance(p, ToolCall):
            return ("call", label(p.id), p.name, json.loads(p.arguments or "{}"))
        if isinstance(p, ToolResult):
            text = p.text()
            return ("result", label(p.call_id), f"Error: {text}" if p.is_error else text)
        return None

    turns: list[list] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            continue
        parts = [x for x in map(part, message.parts) if x is not None]
        if turns and turns[-1][0] == message.role:
            turns[-1][1] += parts
        elif parts:
            turns.append([message.role, parts])
    return {
        "instructions": instructions(request),
        "turns": turns,
        "tools": [(t.name, t.description, t.parameters) for t in request.tools],
        "tool_choice": request.tool_choice,
        "sampling": (request.max_tokens, request.temperature, request.top_p),
    }


EXPECTED = {
    "instructions": S.SYSTEM,
    "turns": [
        ["user", [("text", S.QUESTION), ("image", S.IMAGE_URL), ("image", "image/png", S.PNG_B64)]],
        ["assistant", [("text", S.PREAMBLE), ("call", "call0", "get_weather", S.WEATHER_ARGS),
                       ("call", "call1", "get_time", S.TIME_ARGS)]],
        ["tool", [("result", "call0", S.WEATHER_RESULT), ("result", "call1", f"Error: {S.TIME_ERROR}")]],
        ["user", [("text", S.FOLLOW_UP)]],
    ],
    "tools": [("get_weather", "Current weather", S.WEATHER_SCHEMA), ("get_time", "Local time", S.TIME_SCHEMA)],
    "tool_choice": ToolChoice("auto"),
    "sampling": (512, 0.2, 0.9),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_fixture_reads_as_the_same_conversation(protocol):
    assert portable(to_ir(protocol, S.REQUESTS[protocol])) == EXPECTED


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_a_request_survives_translation_and_the_target_sdk_accepts_it(source, target):
    body = translate.translate_request(S.REQUESTS[source], source, target, MODEL_IN_PATH.get(source, ""),
                                       caps=takes_sampling(target))
    sdk_accepts(target, body)
    assert portable(to_ir(target, body)) == EXPECTED


@pytest.mark.parametrize("target", PROTOCOLS)
def test_tool_call_ids_pass_through_and_stay_paired(target):
    body = translate.translate_request(S.CHAT_REQUEST, "openai_chat", target)
    again = to_ir(target, body)
    calls = [p for m in again.messages for p in m.parts if isinstance(p, ToolCall)]
    results = [p for m in again.messages for p in m.parts if isinstance(p, ToolResult)]
    assert [c.id for c in calls] == ["call_Wd3Yq7uB1", "call_Xk9Lm2cQ4"]
    assert [r.call_id for r in results] == ["call_Wd3Yq7uB1", "call_Xk9Lm2cQ4"]
    assert [r.name for r in results] == ["get_weather", "get_time"]  # Gemini's functionResponse needs it


def test_gemini_calls_without_ids_get_stable_ids_that_match_their_results():
    first = to_ir("gemini", S.GEMINI_REQUEST)
    second = to_ir("gemini", json.loads(json.dumps(S.GEMINI_REQUEST)))
    calls = [p for m in first.messages for p in m.parts if isinstance(p, ToolCall)]
    results = [p for m in first.messages for p in m.parts if isinstance(p, ToolResult)]
    assert all(c.id.startswith(GENERATED_TOOL_ID_PREFIX) for c in calls)
    assert len({c.id for c in calls}) == 2
    assert [r.call_id for r in results] == [c.id for c in calls]
    assert [c.id for c in calls] == [p.id for m in second.messages for p in m.parts if isinstance(p, ToolCall)]
    # Ids Rotator made up never reach Gemini: it matches by order and name, as it did.
    body = translate.translate_request(S.GEMINI_REQUEST, "gemini", "gemini", S.GEMINI_MODEL)
    assert "id" not in json.dumps([p for c in body["contents"] for p in c["parts"] if "functionCall" in p or
                                   "functionResponse" in p]).replace('"tz"', "")


def test_anthropic_rejects_other_id_characters_so_calls_and_results_are_rewritten_alike():
    body = json.loads(json.dumps(S.CHAT_REQUEST).replace("call_Wd3Yq7uB1", "call:Wd3/Yq7"))
    out = translate.translate_request(body, "openai_chat", "anthropic_messages")
    blocks = [b for m in out["messages"] for b in m["content"]]
    assert next(b for b in blocks if b["type"] == "tool_use")["id"] == "call_Wd3_Yq7"
    assert next(b for b in blocks if b["type"] == "tool_result")["tool_use_id"] == "call_Wd3_Yq7"


def signatures(request: Request) -> list[tuple[str | None, str | None]]:
    return [(p.origin, p.signature) for m in request.messages for p in m.parts
            if isinstance(p, (Reasoning, ToolCall)) and p.signature]


@pytest.mark.parametrize(("source", "signature"), [
    ("anthropic_messages", S.ANTHROPIC_SIGNATURE),
    ("gemini", S.GEMINI_SIGNATURE),
    ("openai_responses", S.RESPONSES_ENCRYPTED),
])
@pytest.mark.parametrize("target", PROTOCOLS)
def test_reasoning_signatures_go_back_only_to_their_issuer(source, signature, target):
    body = translate.translate_request(S.REQUESTS[source], source, target, MODEL_IN_PATH.get(source, ""))
    sent = json.dumps(body)
    assert (signature in sent) is (source == target)
    if source == target:
        assert (source, signature) in signatures(to_ir(target, body))


def test_anthropic_thinking_stays_thinking_with_its_signature_only_for_anthropic():
    body = translate.translate_request(S.ANTHROPIC_REQUEST, "anthropic_messages", "anthropic_messages")
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": S.THINKING,
                                                 "signature": S.ANTHROPIC_SIGNATURE}
    # Thinking without a signature (another vendor's, shown to an Anthropic client) is dropped, never forged.
    unsigned = json.loads(json.dumps(S.ANTHROPIC_REQUEST))
    unsigned["messages"][1]["content"][0]["signature"] = ""
    body = translate.translate_request(unsigned, "anthropic_messages", "anthropic_messages")
    assert [b["type"] for b in body["messages"][1]["content"]] == ["text", "tool_use", "tool_use"]


def test_a_chat_clients_own_reasoning_content_goes_back_to_chat():
    body = json.loads(json.dumps(S.CHAT_REQUEST))
    body["messages"][2]["reasoning_content"] = S.THINKING
    assert translate.translate_request(body, "openai_chat", "openai_chat")["messages"][2]["reasoning_content"] == S.THINKING
    assert "reasoning" not in json.dumps(translate.translate_request(body, "openai_chat", "anthropic_messages"))


def test_instructions_are_hoisted_in_order_for_single_system_protocols():
    body = {"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
    ]}
    assert translate.translate_request(body, "openai_chat", "anthropic_messages")["system"] == "Be brief.\n\nAnswer in French."
    gemini = translate.translate_request(body, "openai_chat", "gemini")
    assert gemini["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nAnswer in French."}]}
    assert gemini["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    responses = translate.translate_request(body, "openai_chat", "openai_responses")
    assert [i["role"] for i in responses["input"]] == ["system", "user", "developer"]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    (ToolChoice("auto"), None, ("auto", {"type": "auto"}, {"mode": "AUTO"}, "auto")),
    (ToolChoice("none"), None, ("none", {"type": "none"}, {"mode": "NONE"}, "none")),
    (ToolChoice(CHOICE_REQUIRED), None, ("required", {"type": "any"}, {"mode": "ANY"}, "required")),
    (ToolChoice(CHOICE_TOOL, "get_time"), None, (
        {"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"},
        {"mode": "ANY", "allowedFunctionNames": ["get_time"]}, {"type": "function", "name": "get_time"})),
    (None, False, (None, {"type": "auto", "disable_parallel_tool_use": True}, None, None)),
])
def test_tool_choice_in_every_protocol(choice, parallel, expected):
    request = Request(model="m", messages=[Message("user", [Text("hi")])], tools=[Tool("get_time", None, S.TIME_SCHEMA)],
                      tool_choice=choice, parallel_tool_calls=parallel)
    chat, anthropic, gemini, responses = (translate.get(p).request_from_ir(request) for p in
                                          ("openai_chat", "anthropic_messages", "gemini", "openai_responses"))
    assert chat.get("tool_choice") == expected[0]
    assert anthropic.get("tool_choice") == expected[1]
    assert (gemini.get("toolConfig") or {}).get("functionCallingConfig") == expected[2]
    assert responses.get("tool_choice") == expected[3]
    if parallel is False:
        assert chat["parallel_tool_calls"] is False and responses["parallel_tool_calls"] is False
    for protocol, body in (("openai_chat", chat), ("anthropic_messages", anthropic), ("gemini", gemini),
                           ("openai_responses", responses)):
        back = to_ir(protocol, body).tool_choice
        assert back == (choice if choice is not None else (ToolChoice("auto") if protocol == "anthropic_messages"
                                                           else None))


BUDGET_CLAUDE = model_capabilities("anthropic", "claude-sonnet-4-5")
BUDGET_GEMINI = model_capabilities("gemini", "gemini-2.5-pro")


def test_reasoning_effort_and_budgets_translate_to_each_others_terms():
    chat = {"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high",
            "max_completion_tokens": 40000}
    anthropic = translate.translate_request(chat, "openai_chat", "anthropic_messages", caps=BUDGET_CLAUDE)
    assert anthropic["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    gemini = translate.translate_request(chat, "openai_chat", "gemini", caps=BUDGET_GEMINI)
    assert gemini["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576, "includeThoughts": True}
    claude = {"model": "c", "max_tokens": 16000, "messages": [{"role": "user", "content": "hi"}],
              "thinking": {"type": "enabled", "budget_tokens": 6000}, "temperature": 0.5}
    assert translate.translate_request(claude, "anthropic_messages", "openai_chat")["reasoning_effort"] == "medium"
    assert translate.translate_request(claude, "anthropic_messages", "openai_responses")["reasoning"] == {
        "effort": "medium", "summary": "auto"}
    # A budget that does not fit under max_tokens is lowered; thinking forbids temperature on Anthropic.
    small = {**chat, "max_completion_tokens": 4000, "temperature": 0.3}
    anthropic = translate.translate_request(small, "openai_chat", "anthropic_messages", caps=BUDGET_CLAUDE)
    assert anthropic["thinking"]["budget_tokens"] == 3999 and "temperature" not in anthropic
    tiny = {**chat, "max_completion_tokens": 600}
    assert "thinking" not in translate.translate_request(tiny, "openai_chat", "anthropic_messages",
                                                          caps=BUDGET_CLAUDE)


def test_anthropic_gets_a_max_tokens_and_non_empty_turns():
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""},
                                             {"role": "user", "content": "again"}]}
    out = translate.translate_request(body, "openai_chat", "anthropic_messages")
    assert out["max_tokens"] > 0
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}]


def test_structured_output_translates_where_the_target_has_it():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}}
    assert translate.translate_request(chat, "openai_chat", "openai_responses")["text"] == {
        "format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}}
    config = translate.translate_request(chat, "openai_chat", "gemini")["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_gemini_reads_snake_case_and_openapi_schemas():
    body = {"system_instruction": {"parts": [{"text": "sys"}]},
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"function_declarations": [{"name": "f", "parameters": {
                "type": "OBJECT", "properties": {"x": {"type": "STRING"}}}}]}],
            "generation_config": {"max_output_tokens": 64, "thinking_config": {"thinking_budget": 0}}}
    request = to_ir("gemini", body)
    assert request.system == "sys" and request.max_tokens == 64
    assert request.tools[0].parameters == {"type": "object", "properties": {"x": {"type": "string"}}}
    assert request.reasoning == ReasoningConfig(enabled=False)


def test_stream_flag_asks_each_target_to_stream_with_usage():
    chat = translate.translate_request(S.ANTHROPIC_REQUEST, "anthropic_messages", "openai_chat")
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert translate.translate_request(S.CHAT_REQUEST, "openai_chat", "anthropic_messages")["stream"] is True
    assert translate.translate_request(S.CHAT_REQUEST, "openai_chat", "openai_responses")["stream"] is True
    assert "stream" not in translate.translate_request(S.CHAT_REQUEST, "openai_chat", "gemini")
    assert translate.get("gemini").endpoint("models/gemini-2.5-pro", True) == (
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent", "alt=sse")
    assert translate.get("gemini").endpoint("gemini-2.5-pro", False) == (
        "/v1beta/models/gemini-2.5-pro:generateContent", "")
    assert translate.request_to_ir("gemini", S.GEMINI_REQUEST, "g", stream=True).stream is True


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["role", "content", "type", "text", "messages", "input", "contents", "parts", "tools",
                         "tool_calls", "function", "system", "tool_choice", "image_url", "source", "functionCall",
                         "thinking", "generationConfig", "reasoning", "stream_options", "output", "args"]),
        inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(body=JSON, protocol=st.sampled_from(PROTOCOLS))
def test_a_malformed_client_body_is_refused_cleanly(body, protocol):
    try:
        request = translate.request_to_ir(protocol, body)
    except translate.TranslationError:
        return
    for target in PROTOCOLS:
        translate.get(target).request_from_ir(request)


def test_a_request_translation_error_names_the_protocol():
    with pytest.raises(translate.TranslationError, match="malformed anthropic_messages request"):
        translate.request_to_ir("anthropic_messages", {"messages": [{"role": "user", "content": [3]}]})


@pytest.mark.parametrize("target", PROTOCOLS)
def test_a_tool_choice_without_tools_is_not_sent(target):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}
    sent = translate.translate_request(body, "openai_chat", target)
    assert "tool_choice" not in sent and "toolConfig" not in sent
