"""The LLM content view's text (rewrite/inspection/views.py over protocols/transcript.py) for each protocol, request and
answer, stream and non-stream; the flow list's comment and mark; and the mitmproxy glue (addons/views.py)."""

from __future__ import annotations

import json
import time

import pytest
from mitmproxy import contentviews, http
from mitmproxy.test import taddons, tflow

from addons.views import LLMContentview, Views
from protocols.transcript import read_answer
from rewrite.config import Config
from rewrite.engine import Engine
from rewrite.inspection import views
from rewrite.inspection.flow_list import summary
from rewrite.inspection.views import Facts
from tests.support import samples


def plain(text: str) -> str:
    """The view's text with its blank lines empty (they hold a space, for mitmweb)."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


def render_request(facts: Facts) -> str:
    return plain(views.render_request(facts))


def render_response(facts: Facts) -> str:
    return plain(views.render_response(facts))


# -- requests: the conversation ----------------------------------------------------------------------------------

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}

CHAT_REQUEST = {
    "model": "gpt-4.1",
    "stream": True,
    "max_tokens": 300,
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
              {"type": "function", "function": {"name": "get_time", "parameters": WEATHER}}],
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C, sunny"},
    ],
}
RESPONSES_REQUEST = {
    "model": "o4-mini",
    "instructions": "You are terse.",
    "reasoning": {"effort": "high"},
    "tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER}],
    "input": [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "21 C, sunny"},
    ],
}
ANTHROPIC_REQUEST = {
    "model": "claude-opus-4-1",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse."}],
    "tools": [{"name": "get_weather", "input_schema": WEATHER}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 C, sunny"}]},
    ],
}
GEMINI_REQUEST = {
    "systemInstruction": {"parts": [{"text": "You are terse."}]},
    "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER}]}],
    "contents": [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "21 C, sunny"}}}]},
    ],
}
GEMINI_STREAM_PATH = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"

REQUESTS = {
    "openai_chat": ("/v1/chat/completions", CHAT_REQUEST, "gpt-4.1", ["tools (2): get_weather, get_time"]),
    "openai_responses": ("/v1/responses", RESPONSES_REQUEST, "o4-mini", ["tools (1): get_weather", "reasoning high"]),
    "anthropic_messages": ("/v1/messages", ANTHROPIC_REQUEST, "claude-opus-4-1", ["tools (1): get_weather",
                                                                                    "max tokens 1024"]),
    "gemini": (GEMINI_STREAM_PATH, GEMINI_REQUEST, "gemini-2.5-pro", ["tools (1): get_weather"]),
}


@pytest.mark.parametrize("protocol", REQUESTS)
def test_the_request_reads_as_a_conversation(protocol):
    path, body, model, said = REQUESTS[protocol]
    text = render_request(Facts(protocol, path, json.dumps(body).encode()))

    assert f"request: model {model}" in text
    for line in said:
        assert line in text, text
    # system, the user's turn, the assistant's tool call with its arguments parsed, the tool's result
    assert "─── system ───\nYou are terse.\n" in text, text
    assert "─── user ───\nWeather in Paris?\n" in text, text
    assert "→ tool call get_weather" in text and '\n    {\n      "city": "Paris"\n    }\n' in text, text
    assert "← tool result for" in text and "21 C, sunny" in text, text
    assert text.index("system") < text.index("Weather in Paris?") < text.index("→ tool call") < text.index("21 C")


def test_a_request_that_is_not_json_says_so():
    text = render_request(Facts("openai_chat", "/v1/chat/completions", b"{not json"))
    assert "(the request could not be read: the body is not JSON)" in text


# -- answers: assembled ------------------------------------------------------------------------------------------

STREAM_ANSWERS = {
    # sample: (protocol, what the answer shows, in order, the usage line)
    "chat_text": ("openai_chat", [samples.CHAT_TEXT_ANSWER, "finish: stop"], "usage: input 14 · output 8"),
    "chat_tool_calls": ("openai_chat", ["→ tool call get_weather [call_Wd3Yq7uB1]", '"city": "Paris"',
                                        "→ tool call get_time [call_Xk9Lm2cQ4]", '"tz": "Europe/Paris"',
                                        "finish: tool_calls"], "usage: input 82 · output 41"),
    "chat_reasoning": ("openai_chat", ["[reasoning]\n  2 plus 2 is 4.", "\n4\n", "finish: stop"],
                       "usage: input 10 · output 9 · reasoning 7 (of the output)"),
    "responses_text": ("openai_responses", [samples.CHAT_TEXT_ANSWER, "finish: stop"], "usage: input 14 · output 8"),
    "responses_tool_call": ("openai_responses", ["[reasoning]\n  **Checking weather**",
                                                 "→ tool call get_weather", '"city": "Paris"', "finish: tool_calls"],
                            "usage: input 61 · output 87 · reasoning 64 (of the output)"),
    "anthropic_text": ("anthropic_messages", [samples.CHAT_TEXT_ANSWER, "finish: stop"], "usage: input 21 · output 11"),
    "anthropic_tool_use": ("anthropic_messages", ["[reasoning]\n  The user wants the weather in Paris.",
                                                  "\nLet me check.\n", "→ tool call get_weather [toolu_01T1x1fJ34qAmk2",
                                                  '"city": "Paris"', "finish: tool_calls"],
                           "usage: input 472 · output 89"),
    "gemini_text": ("gemini", [samples.GEMINI_TEXT_ANSWER, "finish: stop"], "usage: input 9 · output 7"),
    "gemini_function_call": ("gemini", ["[reasoning]\n  **Weather lookup**\n  I will call get_weather.",
                                        "→ tool call get_weather\n", '"city": "Paris"', "finish: tool_calls"],
                             "usage: input 58 · output 78 · reasoning 63 (of the output)"),
}


def answer_facts(protocol: str, body: bytes, content_type: str = "text/event-stream", rotator: dict | None = None) -> Facts:
    path = GEMINI_STREAM_PATH if protocol == "gemini" else "/v1/x"
    request = {"model": "m", "stream": True} if protocol != "gemini" else {}
    return Facts(protocol, path, json.dumps(request).encode(), 200, content_type, body, rotator or {}, 100.0, 101.25)


@pytest.mark.parametrize("sample", STREAM_ANSWERS)
def test_a_stream_is_assembled(sample):
    protocol, shown, usage = STREAM_ANSWERS[sample]
    text = render_response(answer_facts(protocol, samples.STREAMS[sample][1]))

    assert "─── answer ───\nassembled from a stream of" in text
    assert f"\n{usage}\n" in text, text
    at = 0
    for piece in shown:
        found = text.find(piece, at)
        assert found >= 0, f"{piece!r} not after position {at} in:\n{text}"
        at = found + len(piece)
    assert "timing: total 1.25 s" in text


NON_STREAM = {
    "openai_chat": {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4.1", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Sunny.", "reasoning_content": "Look it up."},
         "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 20},
                  "completion_tokens_details": {"reasoning_tokens": 3}}},
    "openai_responses": {"id": "resp_1", "object": "response", "model": "o4-mini", "status": "completed", "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look it up."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]}],
        "usage": {"input_tokens": 30, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 20},
                  "output_tokens_details": {"reasoning_tokens": 3}}},
    "anthropic_messages": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-1",
                           "content": [{"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                                       {"type": "text", "text": "Sunny."}],
                           "stop_reason": "end_turn",
                           "usage": {"input_tokens": 10, "cache_read_input_tokens": 20, "output_tokens": 5,
                                     "output_tokens_details": {"thinking_tokens": 3}}},
    "gemini": {"candidates": [{"content": {"role": "model", "parts": [{"text": "Look it up.", "thought": True},
                                                                      {"text": "Sunny."}]},
                               "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 30, "cachedContentTokenCount": 20, "candidatesTokenCount": 2,
                                 "thoughtsTokenCount": 3}, "modelVersion": "gemini-2.5-pro"},
}


@pytest.mark.parametrize("protocol", NON_STREAM)
def test_a_non_stream_answer_is_shown_with_its_usage(protocol):
    text = render_response(answer_facts(protocol, json.dumps(NON_STREAM[protocol]).encode(), "application/json"))

    assert "assembled from a stream" not in text
    assert "[reasoning]\n  Look it up.\n\nSunny.\n\nfinish: stop" in text, text
    assert "usage: input 30 · output 5 · reasoning 3 (of the output) · cache read 20" in text, text


def test_an_error_answer_says_its_status_and_message():
    body = json.dumps({"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}).encode()
    facts = answer_facts("openai_chat", body, "application/json")
    facts.status = 429
    assert "error 429: Rate limit reached" in render_response(facts)


def test_a_stream_that_stopped_without_its_ending_says_so():
    events = samples.CHAT_TEXT.split(b"\n\n")
    cut = b"\n\n".join(events[:3]) + b"\n\n"
    text = render_response(answer_facts("openai_chat", cut))
    assert "\nThe capital of France\n" in text
    assert "finish: none: the stream ended without its completion signal" in text


def test_an_in_stream_error_is_shown():
    body = samples.ANTHROPIC_TEXT.split(b"event: content_block_stop")[0] + (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n')
    text = render_response(answer_facts("anthropic_messages", body))
    assert "The capital of France is Paris." in text and "error 529: Overloaded" in text, text


# -- streams of any size -------------------------------------------------------------------------------------------

def chat_chunk(text: str) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def test_a_huge_stream_renders_quickly_and_says_what_it_left_out():
    body = chat_chunk("x") * 120_000 + b"data: [DONE]\n\n"  # about 14 MB: far past what a flow keeps
    started = time.thread_time()
    text = render_response(answer_facts("openai_chat", body))
    assert time.thread_time() - started < 20  # bounded work, in this thread's CPU time (load does not stretch it)
    assert "note: assembled from the first 50000 of 120001 events" in text, text[:2000]
    assert "more characters not shown here: see the Raw view" not in text  # 50 000 characters: under the cap
    assert len(text) < 200_000


def test_a_long_text_is_clipped_and_says_so():
    body = chat_chunk("y" * 250_000) + b"data: [DONE]\n\n"
    text = render_response(answer_facts("openai_chat", body))
    assert "… [150000 more characters not shown here: see the Raw view]" in text
    assert len(text) < 110_000


def test_a_body_whose_middle_the_flow_left_out_says_so():
    head, tail = samples.CHAT_TEXT[:700], samples.CHAT_TEXT[-600:]
    body = head + b"\n\n[rotator: 12345 bytes left out here]\n\n" + tail
    text = render_response(answer_facts("openai_chat", body))
    assert "12345 bytes in the middle were left out, so the answer below has a gap" in text, text


@pytest.mark.parametrize("body", [b"", b"\x00\xff garbage", b"data: {\n\n", b"[1, 2", b'{"choices": 3}', b"[]",
                                  b'data: {"choices": [{"delta": {"content": 5}}]}\n\n', b'{"candidates": "x"}'])
@pytest.mark.parametrize("protocol", REQUESTS)
def test_malformed_bodies_never_raise(protocol, body):
    facts = Facts(protocol, REQUESTS[protocol][0], body, 200, "application/json", body)
    render_request(facts)
    render_response(facts)
    read_answer(protocol, 200, "text/event-stream", body)


# -- the header: what Rotator did -----------------------------------------------------------------------------------

RETRIED_AND_REPAIRED = {
    "provider": "openai", "protocol": "openai_chat", "key": "sk-p…ol-2", "client": "team-a", "ttft": 1.234,
    "events": [
        {"kind": "retry", "detail": "attempt 1 failed (first-token timeout (no response headers)); retrying",
         "attempt": 1, "reason": "first-token timeout (no response headers)", "key": "sk-p…ol-1", "seconds": 1.0},
        {"kind": "committed", "detail": "status 200 sent early"},
        {"kind": "repaired", "detail": "stream ended without its completion signal (upstream reset: ReadError); "
                                       "ended as length", "cause": "upstream reset: ReadError"},
    ],
}


def test_the_header_lists_every_attempt_and_repair():
    cut = b"\n\n".join(samples.CHAT_TEXT.split(b"\n\n")[:3]) + b"\n\n" + chat_length_ending()
    text = render_response(answer_facts("openai_chat", cut, rotator=RETRIED_AND_REPAIRED))
    assert text.startswith("Rotator · OpenAI Chat Completions · gpt-4o-mini-2024-07-18 · stream\n"
                           "served by provider openai · key sk-p…ol-2 · client team-a\n"
                           "timing: first token after 1.23 s · total 1.25 s\n"
                           "usage: not reported\n"
                           "attempts:\n"
                           "  1. key sk-p…ol-1 · first-token timeout (no response headers) · 1.00 s\n"
                           "  2. key sk-p…ol-2 · served the answer\n"
                           "repairs and notes:\n"
                           "  repaired: stream ended without its completion signal (upstream reset: ReadError); "
                           "ended as length\n"), text
    assert "finish: length (the upstream was cut: Rotator ended the answer as truncated)" in text


def chat_length_ending() -> bytes:
    chunk = {"id": "chatcmpl-C9xKq2", "object": "chat.completion.chunk", "model": "gpt-4o-mini-2024-07-18",
             "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"


def test_the_header_shows_cost_steps_and_a_failure_when_recorded():
    rotator = {"provider": "anthropic", "key": None, "cost": 0.00125,
               "steps": [{"name": "as the client sent it", "body": {"model": "gpt-4.1"}},
                         {"name": "as it left Rotator", "body": {"model": "claude-opus-4-1"}}],
               "events": [{"kind": "retry", "attempt": 1, "reason": "status 529", "key": None},
                          {"kind": "failed", "detail": "giving up: status 529", "reason": "status 529"}]}
    facts = answer_facts("anthropic_messages", samples.ANTHROPIC_TEXT, rotator=rotator)
    text = render_response(facts)
    assert "served by provider anthropic · the client's own key\n" in text
    assert "cost: $0.00125\n" in text
    assert "  1. key the client’s own · status 529\n  2. key the client’s own · gave up: status 529\n" in text
    assert 'steps:\n  1. as the client sent it\n     body: {\n       "model": "gpt-4.1"\n     }\n' in text, text
    assert "  2. as it left Rotator\n" in text


def test_a_flow_in_flight_has_no_total_yet():
    facts = Facts("openai_chat", "/v1/chat/completions", json.dumps(CHAT_REQUEST).encode(), started=100.0)
    assert "timing: in flight" in render_request(facts)


# -- the flow list -------------------------------------------------------------------------------------------------


def test_the_comment_and_mark_say_what_happened():
    assert summary([]) == ("", "")
    assert summary([{"kind": "committed", "detail": "x"}]) == ("", "")
    retried = [{"kind": "retry", "reason": "status 429", "detail": "..."},
               {"kind": "retry", "reason": "first-token timeout (no response headers)", "detail": "..."},
               {"kind": "retry", "reason": "status 429", "detail": "..."}]
    assert summary(retried) == ("retried 3× (status 429; first-token timeout)", ":repeat:")
    repaired = [*retried[:1], {"kind": "repaired", "cause": "upstream reset: ReadError", "detail": "..."}]
    assert summary(repaired) == ("retried 1× (status 429), repaired (upstream reset: ReadError)",
                                 ":adhesive_bandage:")
    assert summary([{"kind": "fallback", "provider": "anthropic", "detail": "..."}]) == (
        "fell back to anthropic", ":twisted_rightwards_arrows:")
    assert summary([*retried[:1], {"kind": "failed", "reason": "status 529", "detail": "giving up"}]) == (
        "retried 1× (status 429), failed (status 529)", ":x:")


def test_a_resumed_answer_says_so_and_its_view_marks_the_seam():
    seam = {"kind": "resumed", "detail": "...", "position": 10, "method": "prefill", "target": "gemini/g",
            "trimmed": 0, "outcome": "spliced"}
    started_over = {**seam, "method": "instruction", "outcome": "started over"}
    assert summary([started_over, seam]) == (
        "resumed 1× (prefill), resumed: ...", ":adhesive_bandage:")
    body = b"".join(b"data: %s\n\n" % json.dumps(
        {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": finish}]}).encode()
        for piece, finish in (("Hello from", None), (" the other side", None), ("", "stop")))
    text = render_response(answer_facts("openai_chat", body, rotator={"resume": [seam]}))
    assert "Hello from⟦resumed here: prefill, gemini/g, 0 characters of overlap trimmed⟧ the other side" in text
    assert "⟦" not in render_response(answer_facts("openai_chat", body))


# -- the mitmproxy glue --------------------------------------------------------------------------------------------


def llm_flow(rotator: dict | None = None) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    flow.request.host, flow.request.port, flow.request.scheme = "api.openai.com", 443, "https"
    flow.request.method, flow.request.path = "POST", "/v1/chat/completions"
    flow.request.content = json.dumps(CHAT_REQUEST).encode()
    flow.response.headers["content-type"] = "text/event-stream"
    flow.response.content = samples.CHAT_TEXT
    if rotator is not None:
        flow.metadata["rotator"] = rotator
    return flow


def prettify(flow, message, view: str = "auto"):
    with taddons.context():
        return contentviews.prettify_message(message, flow, view_name=view)


@pytest.fixture(scope="module")
def registered():
    view = LLMContentview(Engine(Config()))
    contentviews.add(view)
    yield view
    contentviews.registry._by_name.pop(view.name.lower(), None)


def test_llm_flows_get_the_llm_view_and_raw_stays_available(registered):
    flow = llm_flow({"provider": "openai", "protocol": "openai_chat", "key": "sk-p…ol-2", "events": []})
    answer = prettify(flow, flow.response)
    assert answer.view_name == "LLM" and samples.CHAT_TEXT_ANSWER in answer.text
    assert prettify(flow, flow.request).view_name == "LLM"
    raw = prettify(flow, flow.response, "raw")
    assert raw.view_name == "Raw" and raw.text.startswith('data: {"id":"chatcmpl-C9xKq2"')


def test_a_flow_in_flight_on_an_intercepted_host_gets_the_llm_view(registered):
    flow = llm_flow()  # no metadata yet: Rotator's router knows the host and path
    assert prettify(flow, flow.request).view_name == "LLM"


@pytest.mark.parametrize("host, path, rotator", [
    ("example.com", "/v1/chat/completions", None),  # not an intercepted host
    ("api.openai.com", "/v1/models", None),  # not a generation call
    ("api.openai.com", "/v1/chat/completions", {"provider": "openai", "protocol": None}),  # Rotator said so
])
def test_other_traffic_keeps_its_usual_view(registered, host, path, rotator):
    flow = llm_flow(rotator)
    flow.request.host, flow.request.path = host, path
    flow.response.headers["content-type"] = "application/json"
    flow.response.content = b'{"data": []}'
    assert prettify(flow, flow.response).view_name == "JSON"


def test_mitmweb_gets_the_comment_column_unless_the_user_chose_columns():
    from mitmproxy.tools.web.webaddons import WebAddon

    for chosen, expected in [(None, ["tls", "icon", "path", "method", "status", "size", "time", "comment"]),
                             (["path", "status"], ["path", "status"])]:
        views = Views(Engine(Config()))
        with taddons.context(WebAddon(), views) as tctx:
            if chosen is not None:
                tctx.configure(WebAddon(), web_columns=chosen)
            views.running()
            assert tctx.options.web_columns == expected
        contentviews.registry._by_name.pop("llm", None)
