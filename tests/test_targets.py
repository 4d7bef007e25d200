"""Targets: which protocol a target speaks, how the client's request is put to it, and the engine's fallback rules
and hooks, against a scripted upstream (no sockets). The SDK-level behaviour is in tests/e2e/test_routing.py."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

import protocols
from rewrite.config import parse
from rewrite.exchange.fallback import native_leg, upstream_protocol
from rewrite.lifecycle.events import Encoding, KeptAnswer, Shaping
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.setting import Setting
from rewrite.routing.capabilities import ModelTable
from rewrite.routing.router import Router
from tests.support import samples, virtual_time
from tests.support.engine_harness import Upstream, sse
from tests.support.routed_exchange import ANTHROPIC_HEADERS, CHAT_PATH, CONFIG, MESSAGES_PATH, exchange, router


def chat(model: str, stream: bool = True) -> dict:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def messages(model: str, stream: bool = True) -> dict:
    return {"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


# -- which protocol, which path -------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "client", "expected"), [
    ("openai", "anthropic_messages", "openai_chat"),  # the built-in speaks both OpenAI APIs: Chat for others
    ("openai", "openai_responses", "openai_responses"),  # ... and an OpenAI client's own
    ("local", "openai_responses", "openai_chat"),  # an openai-kind provider speaks Chat
    ("respond", "openai_chat", "openai_responses"),  # unless `protocol: responses`
    ("anthropic", "gemini", "anthropic_messages"),
    ("gemini", "openai_chat", "gemini"),
])
def test_the_protocol_a_target_speaks(provider, client, expected):
    rt = router()
    assert upstream_protocol(rt.provider_named(provider), protocols.get(client), called=False).name == expected


def test_the_called_provider_speaks_the_clients_protocol():
    local = router().provider_named("local")
    assert upstream_protocol(local, protocols.get("openai_responses"), called=True).name == "openai_responses"


def test_without_routes_the_called_provider_serves_the_model_asked_and_the_routes_are_not_consulted():
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    consulted = []

    class Unrouted(Router):
        def targets(self, called, model):
            consulted.append(model)
            return super().targets(called, model)

    config = CONFIG.partition("routes:")[0]
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("gpt-4o"), upstream, config=config,
                                    router=Unrouted(parse(config))))
    assert out.status == 200 and json.loads(upstream.seen[0].content)["model"] == "gpt-4o"
    assert consulted == [] and job.targets == []  # (nothing routed: no targets recorded)
    routed = Unrouted(parse(CONFIG))
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("to-local"), Upstream(
        [lambda r: sse([samples.CHAT_TEXT])]), router=routed))
    assert consulted == ["to-local"] and [(t["provider"], t["model"]) for t in job.targets] == [("local", "llama")]


def test_a_native_leg_to_another_provider_and_model():
    rt = router()
    chat_proto = protocols.get("openai_chat")
    leg = native_leg(rt.provider_named("local"), "llama", chat_proto, False, CHAT_PATH, "", chat("gpt"), "gpt")
    assert leg.body["model"] == "llama" and not leg.unchanged
    assert leg.provider.guest_url(leg.path, "/v1") == "http://local.test/api/v1/chat/completions"

    gemini = protocols.get("gemini")
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    leg = native_leg(rt.provider_named("gemini"), "gemini-2.5-pro", gemini, True, path, "alt=sse&key=abc", {},
                     "gemini-2.5-flash")
    assert leg.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert leg.query == "alt=sse&key=abc"  # the called provider: its credential is dealt with as without routes


# -- the engine ------------------------------------------------------------------------------------------------


def test_a_target_the_client_did_not_call_never_gets_the_clients_key():
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("to-local"), upstream))

    [sent] = upstream.seen
    assert str(sent.url) == "http://local.test/api/v1/chat/completions"
    assert "authorization" not in sent.headers  # a provider without keys: the client's key was for openai
    assert json.loads(sent.content)["model"] == "llama"
    assert out.status == 200 and b"The capital" in out.body


def test_after_the_first_token_the_stream_belongs_to_its_target():
    cut = samples.CHAT_TEXT[: samples.CHAT_TEXT.index(b" of France")]
    upstream = Upstream([lambda r: sse([cut], then="reset"), lambda r: sse([samples.CHAT_TEXT])])
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("chat-then-local"), upstream))

    assert len(upstream.seen) == 1  # no second target: the client had its first token
    assert b'"finish_reason":"length"' in out.body.replace(b" ", b"")
    assert [t["outcome"] for t in job.targets] == ["served"]


@pytest.mark.parametrize("status", [401, 403, 404])  # its one key refused (no other key to try), or no such model
def test_a_target_refusing_the_key_or_model_hands_over(status):
    upstream = Upstream([lambda r: httpx.Response(status, json={"error": {"message": "no"}}),
                         lambda r: sse([samples.CHAT_TEXT])])
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("chat-then-local"), upstream))

    assert [str(r.url) for r in upstream.seen] == ["http://openai.test/v1/chat/completions",
                                                   "http://local.test/api/v1/chat/completions"]
    assert out.status == 200
    assert [(t["provider"], t["outcome"]) for t in job.targets] == [("openai", "left"), ("local", "served")]
    assert job.targets[0]["reason"] == f"status {status}"
    assert [n["kind"] for n in job.notes][-1] == "fallback"
    assert job.notes[-1]["detail"].endswith("; trying local/llama") and job.notes[-1]["provider"] == "local"


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_request_error_goes_back_at_once(status):
    upstream = Upstream([lambda r: httpx.Response(status, json={"error": {"message": "bad"}})])
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("chat-then-local"), upstream))

    assert len(upstream.seen) == 1 and out.status == status


@pytest.mark.virtual_time  # (the Chat target's retry waits its backoff)
def test_the_last_targets_error_reaches_the_client_in_its_own_shape():
    upstream = Upstream([lambda r: httpx.Response(404, json={"type": "error", "error": {
        "type": "not_found_error", "message": "model: nope"}}),
        lambda r: httpx.Response(503, json={"error": {"message": "down", "type": "server_error"}})])
    out, job = virtual_time.run(exchange("api.anthropic.com", MESSAGES_PATH, messages("claude-then-chat", False),
                                    upstream, ANTHROPIC_HEADERS))

    # the Chat target's 503 (every attempt), told as Anthropic tells it
    assert out.status in (503, 529)
    body = json.loads(out.body)
    assert body["type"] == "error" and body["error"]["message"] == "down"
    assert [t["outcome"] for t in job.targets] == ["left", "failed"]


def test_a_translated_request_goes_to_the_targets_path_with_its_credential():
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    out, job = asyncio.run(exchange("api.anthropic.com", MESSAGES_PATH, messages("to-chat"), upstream,
                                    ANTHROPIC_HEADERS))

    [sent] = upstream.seen
    assert str(sent.url) == "http://openai.test/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-o1"
    assert "x-api-key" not in sent.headers and "anthropic-version" not in sent.headers
    assert json.loads(sent.content)["model"] == "gpt-x"
    assert out.headers == [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
    assert b"event: message_start" in out.body and b"The capital" in out.body


def test_a_translated_targets_model_is_looked_up_once_for_every_request_to_it(monkeypatch):
    rt = router()
    looked_up: list[str] = []
    lookup = ModelTable.get
    monkeypatch.setattr(ModelTable, "get", lambda table, model: looked_up.append(model) or lookup(table, model))
    for _ in range(2):
        upstream = Upstream([lambda r: sse([samples.ANTHROPIC_TEXT])])
        out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("claude-then-chat"), upstream, router=rt))
        [sent] = upstream.seen
        assert str(sent.url) == "http://anthropic.test/v1/messages" and sent.headers["anthropic-version"]
        assert b"[DONE]" in out.body
    assert looked_up == ["claude-then-chat"]  # (the second request's leg held its crossing)
    assert list(rt.provider_named("anthropic").models.crossings) == [
        ("openai_chat", "anthropic_messages", "claude-then-chat")]
    assert router().provider_named("anthropic").models.crossings == {}  # (kept per config)


@pytest.mark.parametrize("number", [123456789012345678901234567890, -9223372036854775809, 2**64])
def test_an_integer_past_64_bits_reaches_a_translated_target_exactly(number):
    """An agent's history can hold a tool's input with an integer no 64-bit type holds; written again for another
    vendor, it is the client's integer, not a float near it."""
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    body = messages("to-chat")
    body["messages"] = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                           "input": {"account": number}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "found"}]}]
    out, _ = asyncio.run(exchange("api.anthropic.com", MESSAGES_PATH, body, upstream, ANTHROPIC_HEADERS))

    [sent] = upstream.seen
    [call] = json.loads(sent.content)["messages"][1]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"account": number}
    assert f'"account":{number}' in call["function"]["arguments"].replace(" ", "")  # (2**64 == its float, too)
    assert out.status == 200


CLAUDE_CODE_USER_ID = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s1"})


@pytest.mark.parametrize(("option", "forwarded"), [("", False), ("translation: {forward_user_id: true}", True)])
def test_the_clients_user_id_crosses_to_another_vendor_only_when_the_config_says_so(option, forwarded):
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    body = {**messages("to-chat"), "metadata": {"user_id": CLAUDE_CODE_USER_ID}}
    asyncio.run(exchange("api.anthropic.com", MESSAGES_PATH, body, upstream, ANTHROPIC_HEADERS,
                         config=CONFIG + option))

    [sent] = upstream.seen
    assert (CLAUDE_CODE_USER_ID in json.loads(sent.content).values()) is forwarded
    assert (b"d" * 64 in sent.content) is forwarded


def test_a_body_the_target_protocol_cannot_take_is_a_400_in_the_clients_shape():
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    body = {"model": "to-chat", "max_tokens": 64, "messages": "not a list"}
    out, job = asyncio.run(exchange("api.anthropic.com", MESSAGES_PATH, body, upstream, ANTHROPIC_HEADERS))

    assert upstream.seen == [] and out.status == 400
    assert json.loads(out.body)["type"] == "error"


@pytest.mark.parametrize("stream", [True, False])
def test_answer_adapters_rewrite_a_native_answer(stream):
    upstream = Upstream([lambda r: sse([samples.CHAT_REASONING])])
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("to-reasoner", stream), upstream))

    assert out.status == 200
    assert b"reasoning_content" not in out.body  # the host's name for it ...
    if stream:  # ... the client's
        assert b'"reasoning":"2 plus 2 "' in out.body
    else:
        assert json.loads(out.body)["choices"][0]["message"]["reasoning"] == "2 plus 2 is 4."


class Recording(Plugin):
    """A plug-in that hears the events conversation state hears (rewrite/conversation/plugin.py), and may refuse."""

    name = "recording"

    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple] = []
        self.refuse = refuse
        super().__init__(Setting())

    def engage(self, ctx):
        return Heard(self)


class Heard(Part):
    def __init__(self, plugin: Recording) -> None:
        self.plugin = plugin

    def shaping(self, e: Shaping):
        self.plugin.calls.append(("request", e.provider.name, e.body["model"]))
        e.keep_answer = True
        if self.plugin.refuse:
            e.refused = (400, b'{"error": {"message": "unknown"}}', "unknown previous response")
            return None
        return {**e.body, "messages": [{"role": "user", "content": "expanded"}]}

    def encoding(self, e: Encoding):
        self.plugin.calls.append(("translated", e.model, e.request.model))

    def kept(self, e: KeptAnswer):
        self.plugin.calls.append(("answer", e.provider.name, e.answer.text()))


@pytest.mark.parametrize("stream", [True, False])
def test_hooks_see_the_request_before_translation_and_the_answer_after(stream):
    hooks = Recording()
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    out, _ = asyncio.run(exchange("api.anthropic.com", MESSAGES_PATH, messages("to-chat", stream), upstream,
                                  ANTHROPIC_HEADERS, plugins=[hooks]))

    assert out.status == 200
    assert hooks.calls == [("request", "openai", "to-chat"), ("translated", "gpt-x", "gpt-x"),
                           ("answer", "openai", samples.CHAT_TEXT_ANSWER)]
    assert "expanded" in upstream.seen[0].content.decode()  # the body the hook returned went upstream


def test_hooks_see_native_answers_too_and_may_refuse():
    hooks = Recording()
    upstream = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("to-local"), upstream, plugins=[hooks]))
    assert hooks.calls[-1] == ("answer", "local", samples.CHAT_TEXT_ANSWER)

    refusing = Recording(refuse=True)
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("to-local"), upstream, plugins=[refusing]))
    assert out.status == 400 and json.loads(out.body)["error"]["message"] == "unknown"
    assert len(upstream.seen) == 1  # nothing more went upstream


CHAT_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                            "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
REFUSED = {"error": {"message": "Unsupported value: 'stream' does not support true with this model.",
                     "param": "stream"}}


@pytest.mark.parametrize(("model", "script"), [
    ("to-plain", []),  # a target opted out of forced streaming
    ("to-chat", [lambda r: httpx.Response(400, json=REFUSED)]),  # a target refusing to stream this model
], ids=["opted-out", "stream-refused"])
def test_a_translated_non_stream_answer(model, script):
    upstream = Upstream([*script, lambda r: httpx.Response(200, json=CHAT_ANSWER)])
    out, job = asyncio.run(exchange("api.anthropic.com", MESSAGES_PATH, messages(model, False), upstream,
                                    ANTHROPIC_HEADERS))

    assert "stream" not in json.loads(upstream.seen[-1].content)  # sent as a non-stream request
    assert out.status == 200
    answer = json.loads(out.body)  # the Chat answer, as an Anthropic message
    assert (answer["type"], answer["content"][0]["text"], answer["stop_reason"]) == ("message", "Paris.", "end_turn")
    assert answer["usage"]["input_tokens"] == 5
    assert [n["kind"] for n in job.notes] == (["stream-refused"] if script else [])
