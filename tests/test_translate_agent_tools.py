"""What today's agents send, across protocols: Codex's tools inside the input (`additional_tools`, namespaces,
custom freeform tools), Claude Code's `system`-role messages, and answers judged by the SDKs' own types."""

import json

import pydantic
import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response, ResponseStreamEvent

import protocols.translate as translate
from protocols.translate.tools import MAX_NAME, flat_name
from tests.support import fake_vendor, samples
from tests.support import translate_samples as S
from tests.support.sdk_requests import sdk_accepts
from tests.support.sdk_types import model_extras
from tests.support.streams import parse, payloads

EMULATING = ("anthropic_messages", "gemini", "openai_chat")
GRAMMAR = "start: /.+/"
CODEX_REQUEST = {
    "model": "gpt-6.1-sol", "stream": True, "store": False, "tool_choice": "auto", "parallel_tool_calls": False,
    "input": [
        {"type": "additional_tools", "role": "developer", "tools": [
            {"type": "namespace", "name": "functions", "description": "Local tools.", "tools": [
                {"type": "custom", "name": "exec", "description": "Run a shell command.",
                 "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}},
                {"type": "function", "name": "view_image", "description": "Show an image.", "strict": False,
                 "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}]},
            {"type": "namespace", "name": "clock", "description": "Time.", "tools": [
                {"type": "function", "name": "now", "description": "The time.", "strict": False,
                 "parameters": {"type": "object", "properties": {}}}]}]},
        {"type": "message", "role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files."}]},
        {"type": "custom_tool_call", "call_id": "call_1", "name": "exec", "namespace": "functions", "input": "ls"},
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "a.txt"},
        {"type": "function_call", "call_id": "call_2", "name": "now", "namespace": "clock", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_2", "output": "12:00"},
    ],
}
CHAT_CUSTOM_REQUEST = {
    "model": "gpt-5.6", "messages": [{"role": "user", "content": "List the files."}],
    "tools": [{"type": "custom", "custom": {"name": "exec", "description": "Run a shell command.", "format": {
        "type": "grammar", "grammar": {"syntax": "lark", "definition": GRAMMAR}}}}],
}
STREAM_EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)


def tools_of(protocol: str, body: dict) -> dict:
    """name -> (description, schema) of the tools a target request offers."""
    if protocol == "openai_chat":
        return {t["function"]["name"]: (t["function"].get("description"), t["function"].get("parameters"))
                for t in body["tools"]}
    if protocol == "anthropic_messages":
        return {t["name"]: (t.get("description"), t["input_schema"]) for t in body["tools"]}
    return {d["name"]: (d.get("description"), d.get("parametersJsonSchema"))
            for d in body["tools"][0]["functionDeclarations"]}


def calls_of(protocol: str, body: dict) -> list[tuple[str, dict]]:
    """(name, arguments) of every tool call in a target request's history."""
    if protocol == "openai_chat":
        return [(c["function"]["name"], json.loads(c["function"]["arguments"]))
                for m in body["messages"] for c in m.get("tool_calls") or ()]
    if protocol == "anthropic_messages":
        return [(b["name"], b["input"]) for m in body["messages"] if isinstance(m["content"], list)
                for b in m["content"] if b["type"] == "tool_use"]
    return [(p["functionCall"]["name"], p["functionCall"]["args"]) for c in body["contents"] for p in c["parts"]
            if "functionCall" in p]


# --- requests


@pytest.mark.parametrize("target", EMULATING)
def test_codex_tools_in_its_input_reach_every_target_flattened_with_the_custom_tool_as_a_string_function(target):
    body = translate.translate_request(CODEX_REQUEST, "openai_responses", target)

    sdk_accepts(target, body)
    tools = tools_of(target, body)
    assert sorted(tools) == ["clock__now", "functions__exec", "functions__view_image"]
    description, schema = tools["functions__exec"]
    assert schema == {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
    assert "Local tools." in description and "Run a shell command." in description and GRAMMAR in description
    assert tools["functions__view_image"][1] == {"type": "object", "properties": {"path": {"type": "string"}}}
    assert calls_of(target, body) == [("functions__exec", {"input": "ls"}), ("clock__now", {})]
    assert "a.txt" in json.dumps(body) and "12:00" in json.dumps(body)


def test_a_namespaced_name_too_long_for_the_vendors_stays_within_their_limit_and_distinct():
    long_a, long_b = flat_name("n" * 40, "a" * 40), flat_name("n" * 40, "a" * 39 + "b")

    assert len(long_a) <= MAX_NAME and len(long_b) <= MAX_NAME and long_a != long_b
    assert flat_name("mcp.server", "read file") == "mcp_server__read_file"


def test_a_chat_clients_custom_tool_and_its_calls_reach_anthropic_as_a_string_function():
    request = {**CHAT_CUSTOM_REQUEST, "messages": [
        *CHAT_CUSTOM_REQUEST["messages"],
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "custom",
                                              "custom": {"name": "exec", "input": "ls"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"}]}

    body = translate.translate_request(request, "openai_chat", "anthropic_messages")

    sdk_accepts("anthropic_messages", body)
    [(name, (description, schema))] = tools_of("anthropic_messages", body).items()
    assert name == "exec" and GRAMMAR in description and schema["required"] == ["input"]
    assert calls_of("anthropic_messages", body) == [("exec", {"input": "ls"})]


# --- answers


def anthropic_tool_answer(name: str, arguments: dict) -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": arguments}],
            "usage": {"input_tokens": 10, "output_tokens": 5}}


def gemini_tool_answer(name: str, arguments: dict) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": name, "args": arguments}}]},
                            "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}}


UPSTREAM_ANSWERS = {"anthropic_messages": anthropic_tool_answer, "gemini": gemini_tool_answer}


@pytest.mark.parametrize("upstream", sorted(UPSTREAM_ANSWERS))
def test_a_call_of_codexs_custom_tool_comes_back_as_a_custom_call_in_its_namespace(upstream):
    request = translate.request_to_ir("openai_responses", CODEX_REQUEST)
    answer = UPSTREAM_ANSWERS[upstream]("functions__exec", {"input": "echo hi"})

    response = Response.model_validate(translate.translate_answer(answer, upstream, "openai_responses", request))

    [call] = response.output
    assert (call.type, call.name, call.namespace, call.input) == ("custom_tool_call", "exec", "functions", "echo hi")
    assert model_extras(response) == []


@pytest.mark.parametrize("upstream", sorted(UPSTREAM_ANSWERS))
def test_a_call_of_a_namespaced_function_comes_back_with_its_own_name_and_namespace(upstream):
    request = translate.request_to_ir("openai_responses", CODEX_REQUEST)
    answer = UPSTREAM_ANSWERS[upstream]("functions__view_image", {"path": "a.png"})

    response = Response.model_validate(translate.translate_answer(answer, upstream, "openai_responses", request))

    [call] = response.output
    assert (call.type, call.name, call.namespace, json.loads(call.arguments)) == (
        "function_call", "view_image", "functions", {"path": "a.png"})


def test_a_custom_call_whose_model_ignored_the_input_shape_carries_its_whole_arguments():
    request = translate.request_to_ir("openai_responses", CODEX_REQUEST)
    answer = anthropic_tool_answer("functions__exec", {"cmd": "ls"})

    response = translate.translate_answer(answer, "anthropic_messages", "openai_responses", request)

    assert json.loads(response["output"][0]["input"]) == {"cmd": "ls"}


def test_a_chat_clients_custom_tool_is_answered_with_the_custom_call_it_expects():
    request = translate.request_to_ir("openai_chat", CHAT_CUSTOM_REQUEST)

    completion = ChatCompletion.model_validate(translate.translate_answer(
        anthropic_tool_answer("exec", {"input": "ls -l"}), "anthropic_messages", "openai_chat", request))

    [call] = completion.choices[0].message.tool_calls
    assert (call.type, call.custom.name, call.custom.input) == ("custom", "exec", "ls -l")
    assert model_extras(completion) == []


def upstream_tool_stream(protocol: str, name: str, arguments: dict) -> bytes:
    """The fake vendor's own stream of a tool call (its arguments in several fragments where the protocol does)."""
    events = {"anthropic_messages": fake_vendor.anthropic_events, "gemini": fake_vendor.gemini_events}[protocol]
    fault = fake_vendor.Fault().tool_call(name, arguments)
    return b"".join(e.data for e in events(fake_vendor.Ctx(0, "fake-model", 1761000000, {}, fault)))


def responses_stream(upstream: str, body: bytes, request) -> list:
    """A translated stream as the SDK types read each event."""
    tr = translate.stream_translator(upstream, "openai_responses", request)
    out = b"".join(tr.feed(e) for e in parse(body)) + tr.end()
    return [STREAM_EVENTS.validate_python(p) for p in payloads(out)]


@pytest.mark.parametrize("upstream", sorted(UPSTREAM_ANSWERS))
def test_a_streamed_custom_call_comes_to_codex_as_custom_tool_call_input_events(upstream):
    request = translate.request_to_ir("openai_responses", CODEX_REQUEST)

    events = responses_stream(upstream, upstream_tool_stream(upstream, "functions__exec", {"input": "echo hi"}),
                              request)

    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" not in kinds
    assert "".join(e.delta for e in events if e.type == "response.custom_tool_call_input.delta") == "echo hi"
    [done] = [e for e in events if e.type == "response.custom_tool_call_input.done"]
    assert done.input == "echo hi"
    [item] = [e.item for e in events if e.type == "response.output_item.done"]
    assert (item.type, item.name, item.namespace, item.input) == ("custom_tool_call", "exec", "functions", "echo hi")
    [added] = [e.item for e in events if e.type == "response.output_item.added"]
    assert (added.type, added.name, added.namespace) == ("custom_tool_call", "exec", "functions")
    assert [f for e in events for f in model_extras(e)] == []


def test_a_streamed_namespaced_function_call_comes_to_codex_with_its_namespace():
    request = translate.request_to_ir("openai_responses", CODEX_REQUEST)

    events = responses_stream("anthropic_messages", upstream_tool_stream(
        "anthropic_messages", "clock__now", {"zone": "UTC"}), request)

    [item] = [e.item for e in events if e.type == "response.output_item.done"]
    assert (item.type, item.name, item.namespace, json.loads(item.arguments)) == (
        "function_call", "now", "clock", {"zone": "UTC"})


@pytest.mark.parametrize("name", sorted(n for n, (source, _) in samples.STREAMS.items() if source != "openai_responses"))
def test_every_translated_responses_event_has_only_the_keys_its_sdk_type_declares(name):
    source, body = samples.STREAMS[name]
    request = translate.request_to_ir("openai_responses", {"model": "m", "input": "hi"})

    events = responses_stream(source, body, request)

    assert events and [f"{e.type}{f}" for e in events for f in model_extras(e)] == []


# --- instructions in the conversation


CLAUDE_CODE_REQUEST = {
    "model": "claude-opus-4-8", "max_tokens": 64000, "system": [{"type": "text", "text": "You are Claude Code."}],
    "metadata": {"user_id": json.dumps({"device_id": "d1", "session_id": "s1"})},
    "messages": [
        {"role": "user", "content": "Fix the bug."},
        {"role": "system", "content": [{"type": "text", "text": "The user is in plan mode."}]},
        {"role": "assistant", "content": "Looking."},
        {"role": "user", "content": "Go on."},
    ],
}


@pytest.mark.parametrize("target", ["openai_chat", "openai_responses"])
def test_claude_codes_system_message_stays_an_instruction_in_its_place_on_openai_targets(target):
    body = translate.translate_request(CLAUDE_CODE_REQUEST, "anthropic_messages", target)

    sdk_accepts(target, body)
    turns = body["messages"] if target == "openai_chat" else body["input"]
    said = [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]) for m in turns]
    assert said[-4:] == [("user", "Fix the bug."), ("system", "The user is in plan mode."),
                         ("assistant", "Looking."), ("user", "Go on.")]


@pytest.mark.parametrize("target", ["gemini", "anthropic_messages"])
def test_claude_codes_system_message_joins_the_system_instructions_where_the_target_has_no_place_for_it(target):
    request = {**CLAUDE_CODE_REQUEST, "model": "claude-sonnet-4-5"} if target == "anthropic_messages" else \
        CLAUDE_CODE_REQUEST
    body = translate.translate_request(request, "anthropic_messages", target, model="gemini-2.5-pro")

    sdk_accepts(target, body)
    system = body["systemInstruction"]["parts"][0]["text"] if target == "gemini" else body["system"]
    assert system == "You are Claude Code.\n\nThe user is in plan mode."
    assert "plan mode" not in json.dumps(body.get("contents") or body["messages"])


# --- custom tools to a Responses target, which has them


def test_a_chat_clients_custom_tool_and_its_calls_reach_responses_as_custom_tool_items():
    request = {**CHAT_CUSTOM_REQUEST, "messages": [
        *CHAT_CUSTOM_REQUEST["messages"],
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "custom",
                                              "custom": {"name": "exec", "input": "ls"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"}]}

    body = translate.translate_request(request, "openai_chat", "openai_responses")

    sdk_accepts("openai_responses", body)
    assert body["tools"] == [{"type": "custom", "name": "exec", "description": "Run a shell command.",
                              "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}}]
    assert body["input"][1:] == [{"type": "custom_tool_call", "call_id": "call_1", "name": "exec", "input": "ls"},
                                 {"type": "custom_tool_call_output", "call_id": "call_1", "output": "a.txt"}]


def responses_custom_call_stream(text_parts: list[str]) -> bytes:
    """A Responses stream answering with a custom tool call whose input arrives in `text_parts`."""
    item = {"id": "ctc_1", "type": "custom_tool_call", "call_id": "call_9", "name": "exec", "input": ""}
    response = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-5.6", "status": "in_progress",
                "output": []}
    events = [{"type": "response.created", "response": response},
              {"type": "response.output_item.added", "output_index": 0, "item": item},
              *({"type": "response.custom_tool_call_input.delta", "output_index": 0, "item_id": "ctc_1", "delta": d}
                for d in text_parts),
              {"type": "response.custom_tool_call_input.done", "output_index": 0, "item_id": "ctc_1",
               "input": "".join(text_parts)},
              {"type": "response.output_item.done", "output_index": 0, "item": {**item, "input": "".join(text_parts)}},
              {"type": "response.completed", "response": {**response, "status": "completed", "usage": {
                  "input_tokens": 5, "output_tokens": 3, "total_tokens": 8}}}]
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_a_custom_call_a_responses_target_streams_reaches_a_chat_client_as_its_custom_call():
    request = translate.request_to_ir("openai_chat", CHAT_CUSTOM_REQUEST)
    folder = translate.stream_folder("openai_responses", "openai_chat", request)
    for event in parse(responses_custom_call_stream(['echo "a', 'b"\n', "ls"])):
        folder.feed(event)

    completion = ChatCompletion.model_validate(folder.result())

    [call] = completion.choices[0].message.tool_calls
    assert (call.id, call.type, call.custom.name, call.custom.input) == ("call_9", "custom", "exec", 'echo "ab"\nls')


def test_a_custom_call_in_a_responses_targets_answer_reaches_a_chat_client_as_its_custom_call():
    request = translate.request_to_ir("openai_chat", CHAT_CUSTOM_REQUEST)
    answer = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-5.6", "status": "completed",
              "output": [{"id": "ctc_1", "type": "custom_tool_call", "call_id": "call_9", "name": "exec",
                          "input": "ls -l"}]}

    completion = ChatCompletion.model_validate(
        translate.translate_answer(answer, "openai_responses", "openai_chat", request))

    [call] = completion.choices[0].message.tool_calls
    assert (call.type, call.custom.name, call.custom.input) == ("custom", "exec", "ls -l")


@pytest.mark.parametrize("source", ["openai_chat", "anthropic_messages", "gemini"])
def test_every_translated_responses_answer_has_only_the_keys_its_sdk_type_declares(source):
    answer = {"openai_chat": S.CHAT_ANSWER, "anthropic_messages": S.ANTHROPIC_ANSWER, "gemini": S.GEMINI_ANSWER}[source]
    request = translate.request_to_ir("openai_responses", {"model": "m", "input": "hi"})

    response = Response.model_validate(translate.translate_answer(answer, source, "openai_responses", request))

    assert response.output and model_extras(response) == []


def test_on_a_model_that_takes_them_instructions_stay_in_place_where_anthropic_allows():
    request = {"model": "claude-opus-4-8", "instructions": "Be brief.", "input": [
        {"type": "message", "role": "developer", "content": "First."},  # index 0: never in place
        {"type": "message", "role": "user", "content": "Fix the bug."},
        {"type": "message", "role": "developer", "content": "Plan mode."},  # after user, before assistant
        {"type": "message", "role": "assistant", "content": "Looking."},
        {"type": "message", "role": "user", "content": "Go on."},
        {"type": "message", "role": "developer", "content": "Between users."},  # followed by a user turn
        {"type": "message", "role": "user", "content": "Done?"},
    ]}

    body = translate.translate_request(request, "openai_responses", "anthropic_messages")

    sdk_accepts("anthropic_messages", body)
    assert [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
            for m in body["messages"]] == [("user", "Fix the bug."), ("system", "Plan mode."),
                                           ("assistant", "Looking."), ("user", "Go on.")]
    assert body["messages"][-1]["content"][1]["text"] == "Done?"
    assert body["system"] == "Be brief.\n\nFirst.\n\nBetween users."
    other = translate.translate_request({**request, "model": "claude-sonnet-5"}, "openai_responses",
                                        "anthropic_messages")
    assert [m["role"] for m in other["messages"]] == ["user", "assistant", "user"]
    assert other["system"] == "Be brief.\n\nFirst.\n\nPlan mode.\n\nBetween users."


@pytest.mark.parametrize(("client", "choice"), [("openai_chat", {"type": "custom", "custom": {"name": "exec"}}),
                                                ("openai_responses", {"type": "custom", "name": "exec"})])
def test_a_choice_of_a_custom_tool_names_the_tool_on_every_target(client, choice):
    body = {**CHAT_CUSTOM_REQUEST, "tool_choice": choice} if client == "openai_chat" else {
        "model": "m", "input": "List the files.", "tools": [CODEX_REQUEST["input"][0]["tools"][0]["tools"][0]],
        "tool_choice": choice}

    targets = {target: translate.translate_request(body, client, target)
               for target in ("openai_chat", "openai_responses", "anthropic_messages") if target != client}

    for target, sent in targets.items():
        sdk_accepts(target, sent)
    if "openai_responses" in targets:
        assert targets["openai_responses"]["tool_choice"] == {"type": "custom", "name": "exec"}
    if "openai_chat" in targets:
        assert targets["openai_chat"]["tool_choice"] == {"type": "function", "function": {"name": "exec"}}
    assert targets["anthropic_messages"]["tool_choice"] == {"type": "tool", "name": "exec"}
