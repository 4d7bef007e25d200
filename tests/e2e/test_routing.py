"""Routes and cross-protocol translation, as a user sees them: each official SDK (configured only through the
environment) calls its own vendor's host through a real `mitmdump -s addons/rotator.py`, and a route hands the call
to a provider of another protocol family on the fake vendor. The client never knows: it reads text, tool calls,
usage, truncation endings and errors in its own protocol.

Every client protocol is served by every other family, through one shared proxy (its routes pick the family by the
model the client asks for). The fallback tests need a fresh proxy each, to read their saved flows.
"""

from __future__ import annotations

import json
import ssl
import time
import warnings

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from tests.support.clients import FINISH, PROMPT, TRUNCATED, WEATHER_SCHEMA, call, make_client
from tests.support.fake_vendor import INPUT_TOKENS, TEXT, TOOL_ARGUMENTS, TOOL_NAME, Fault, split_text
from tests.support.harness import CLIENT_KEYS, POOL_KEYS
from tests.support.routing import CLIENTS, TARGET_KEYS, VIA, model_via, routing_config
from tests.support.timing import MARGIN, QUIET

pytestmark = pytest.mark.e2e

KEYS = {**TARGET_KEYS, "anthropic": POOL_KEYS["anthropic"], "gemini": POOL_KEYS["gemini"]}
PAIRS = [(client, upstream) for client in CLIENTS for upstream in CLIENTS if client != upstream]
PAIR_IDS = [f"{c}-via-{u}" for c, u in PAIRS]
STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
RESULT = "18C, cloudy"
DELTAS = 2
PREFIX = "".join(split_text(TEXT)[:DELTAS])
CALL_TEXT = "Let me check."  # said before a tool call: text and a call in one answer


@pytest.fixture
def routed(rotator, fake_vendor):
    return rotator(routing_config(fake_vendor.url))


def served_request(fake_vendor, upstream: str, n: int = 1):
    """The n-th request the vendor received, checked to be the target's: its protocol, model and pooled key."""
    req = fake_vendor.wait_for(n)[n - 1]
    provider, model, protocol = VIA[upstream]
    assert (req.protocol, req.model) == (protocol, model), req.summary()
    assert req.credential in KEYS[provider], req.summary()
    return req


# ------------------------------------------------------------------------------------------------------------------
# Every client protocol served by every other family.


@STREAMS
@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=PAIR_IDS)
def test_text_and_usage(fake_vendor, routed, client, upstream, stream):
    result = call(client, make_client(client), stream=stream, model=model_via(upstream))

    assert result.text == TEXT
    assert result.finish == FINISH[client]["text"]
    assert (result.input_tokens, result.output_tokens) == (INPUT_TOKENS, len(split_text(TEXT)))
    req = served_request(fake_vendor, upstream)
    assert req.stream  # a non-stream call goes upstream as a stream too, folded back into the client's JSON
    assert PROMPT in json.dumps(req.body)


@STREAMS
@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=PAIR_IDS)
def test_tool_call_then_its_result(fake_vendor, routed, client, upstream, stream):
    fake_vendor.script(Fault.tool_call(text=CALL_TEXT), Fault.ok())
    first = call(client, make_client(client), stream=stream, tools=True, model=model_via(upstream))

    assert first.tool_calls == [(TOOL_NAME, TOOL_ARGUMENTS)]  # arguments streamed in fragments, put together intact
    assert first.finish == FINISH[client]["tool"]
    assert first.text == CALL_TEXT
    [call_id] = first.tool_call_ids
    sent = served_request(fake_vendor, upstream)
    assert TOOL_NAME in json.dumps(sent.body)  # the tool definition reached the target

    assert second_turn(client, model_via(upstream), call_id, stream) == TEXT
    replayed = json.dumps(served_request(fake_vendor, upstream, 2).body)
    assert RESULT in replayed and '"Paris"' in replayed.replace('\\"', '"')
    if "gemini" not in (client, upstream):  # Gemini matches results by name and order: it has no ids to carry
        assert call_id in replayed


@STREAMS
@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=PAIR_IDS)
def test_cut_stream_ends_truncated(fake_vendor, routed, client, upstream, stream):
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"))
    result = call(client, make_client(client), stream=stream, model=model_via(upstream))

    assert result.text == PREFIX
    assert result.finish == TRUNCATED[client]
    served_request(fake_vendor, upstream)


@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=PAIR_IDS)
def test_vendor_bad_request_arrives_in_the_clients_error_shape(fake_vendor, routed, client, upstream):
    fake_vendor.script(Fault.status(400))
    with pytest.raises(BAD_REQUEST[client]) as raised:
        call(client, make_client(client), stream=False, model=model_via(upstream))

    assert error_message(client, raised.value) == "fake vendor: HTTP 400"
    served_request(fake_vendor, upstream)
    assert len(fake_vendor.calls()) == 1  # the request's own fault: not retried, not sent elsewhere


# ------------------------------------------------------------------------------------------------------------------
# Translated streams get first-token retries and the client protocol's heartbeats, as native ones.


def test_translated_stream_is_retried_and_kept_alive_with_the_clients_heartbeat(fake_vendor, routed):
    fake_vendor.script(Fault.stall_before_headers(20))
    url = "https://api.anthropic.com/v1/messages"
    headers = {"x-api-key": CLIENT_KEYS["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"}
    body = {"model": model_via("chat"), "max_tokens": 256, "stream": True,
            "messages": [{"role": "user", "content": PROMPT}]}
    verify = ssl.create_default_context(cafile=str(routed.ca_cert))
    with httpx.Client(proxy=routed.url, verify=verify, timeout=30, trust_env=False) as client:
        raw = client.post(url, headers=headers, json=body).content

    stalled, answered = fake_vendor.wait_for(2, done=False)[:2]
    assert stalled.protocol == answered.protocol == "chat"  # an Anthropic stream served by a Chat target
    assert stalled.credential != answered.credential  # retried on the target's other key
    assert {stalled.credential, answered.credential} == set(TARGET_KEYS["deepseek"])
    assert raw.startswith(b"event: ping\n")  # Anthropic's own keepalive, while the Chat target stalled
    assert raw.count(b"event: ping\n") >= 3  # every 0.3 s of the 3 s first-token wait
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith(b"data: ")]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == TEXT
    assert [e["type"] for e in events if e["type"] != "ping"][0] == "message_start"  # one clean answer
    assert events[-1]["type"] == "message_stop"


# ------------------------------------------------------------------------------------------------------------------
# Which failures go to the next target.


def test_a_request_error_goes_back_at_once(fake_vendor, routed):
    fake_vendor.script(Fault.status(400))
    with pytest.raises(openai.BadRequestError):
        openai.OpenAI().chat.completions.create(model="two-targets", messages=[{"role": "user", "content": PROMPT}])
    [req] = fake_vendor.wait_for(1)
    assert req.protocol == "anthropic"
    time.sleep(QUIET)  # stays: absence. A second target asked would have been asked by now
    assert len(fake_vendor.calls()) == 1  # the second target was never asked


def test_a_model_the_first_target_lacks_goes_to_the_next(fake_vendor, routed):
    fake_vendor.script(Fault.status(404))
    answer = anthropic.Anthropic().messages.create(model="two-targets", max_tokens=256,
                                                   messages=[{"role": "user", "content": PROMPT}])
    assert answer.content[0].text == TEXT
    lacking, served = fake_vendor.wait_for(2)
    assert (lacking.protocol, lacking.status) == ("anthropic", 404)
    assert (served.protocol, served.model) == ("chat", "deepseek-chat")
    assert routed.wait_log("fallback: anthropic/claude-haiku-4-5 failed before the first token (status 404)")


FALLBACK_ROUTE = {"models": ["claude-opus-*"], "targets": ["anthropic", "deepseek/deepseek-chat"]}
FAILING = {
    # every key of the first target rate limited / stalling
    "429": Fault.status(429, headers={"retry-after": "5"}),
    "stall": Fault.stall_before_headers(20),
}


@pytest.mark.parametrize("failing", FAILING)
def test_a_route_falls_through_to_a_target_of_another_protocol(fake_vendor, rotator, tmp_path, failing):
    path = tmp_path / "flows.mitm"
    config = routing_config(fake_vendor.url)
    config["routes"] = [FALLBACK_ROUTE]
    config["streaming"]["first_token_timeout"] = 1.0
    proxy = rotator(config, fresh=True, args=("-w", str(path)))
    for key in POOL_KEYS["anthropic"]:
        fake_vendor.always(FAILING[failing], key=key)

    began = time.monotonic()
    answers = [call("anthropic", make_client("anthropic"), stream=stream, model="claude-opus-4-6")
               for stream in (True, False)]
    took = time.monotonic() - began

    for answer in answers:  # one clean answer each: nothing of the failed target shows
        assert (answer.text, answer.finish) == (TEXT, "end_turn")
        assert answer.raw.model == "deepseek-chat"
    assert took < 2 * (2 * 1.0 + MARGIN)  # at most two first-token timeouts per call (not the stall's 20 s)
    served = [r for r in fake_vendor.wait_for(3, done=False) if r.protocol == "chat"]
    assert len(served) == 2 and {r.credential for r in served} <= set(TARGET_KEYS["deepseek"])
    proxy.wait_log("target deepseek/deepseek-chat answered (anthropic_messages → openai_chat)")
    proxy.proc.stop()

    flows = saved_flows(path)
    assert len(flows) == 2
    for flow in flows:
        meta = flow.metadata["rotator"]
        first, second = meta["targets"]
        assert (first["provider"], first["outcome"]) == ("anthropic", "left")
        assert any(why in first["reason"] for why in ("429", "timeout", "every key resting"))
        assert second == {"provider": "deepseek", "model": "deepseek-chat", "protocol": "openai_chat",
                          "translated": "anthropic_messages → openai_chat", "outcome": "served"}
        assert meta["provider"] == "deepseek"
        assert "fell back to deepseek" in flow.comment
        assert flow.server_conn.address[1] == int(fake_vendor.url.rsplit(":", 1)[1])
    log = proxy.full_log
    assert log.count("fallback: anthropic/claude-opus-4-6 failed before the first token") == 2
    assert not any(k in log for k in [*POOL_KEYS["anthropic"], *TARGET_KEYS["deepseek"]])


def test_a_gemini_continuation_token_goes_to_gemini_and_the_flow_says_another_protocol_got_none(fake_vendor, rotator,
                                                                                                tmp_path):
    """A Gemini client resuming its vendor's `CONTINUATION` stop sends the token it was given; a Gemini target takes
    it as it came, a target of another protocol has nothing to take it into (its model starts the answer over), and
    the flow's target record says what did not go."""
    path = tmp_path / "flows.mitm"
    proxy = rotator(routing_config(fake_vendor.url), fresh=True, args=("-w", str(path)))
    config = genai.types.GenerateContentConfig(continuation_token="Q0hFQ0tQT0lOVC0x")
    client = make_client("gemini")
    for model in ("gemini-2.5-flash", model_via("chat")):
        assert call("gemini", client, stream=True, model=model, config=config).text == TEXT
    native, translated = fake_vendor.wait_for(2)
    assert native.protocol == "gemini" and native.body["continuationToken"] == "Q0hFQ0tQT0lOVC0x"
    assert translated.protocol == "chat" and "Q0hFQ0tQT0lOVC0x" not in translated.raw_body.decode()
    proxy.proc.stop()

    routed = [f for f in saved_flows(path) if "targets" in f.metadata["rotator"]]
    [target] = routed[0].metadata["rotator"]["targets"]
    assert (target["provider"], target["translated"]) == ("deepseek", "gemini → openai_chat")
    assert target["dropped"] == ["continuationToken"]


def test_a_target_whose_only_key_rests_after_a_stall_is_skipped_at_once(fake_vendor, rotator, tmp_path):
    """The README's promise: a resting key never makes a request wait. Once the first target's only key stalled
    (it rests 5 s, past the 2 s first-token timeout), the next request goes straight to the next target."""
    path = tmp_path / "flows.mitm"
    config = routing_config(fake_vendor.url)
    config["routes"] = [FALLBACK_ROUTE]
    config["streaming"].update(first_token_timeout=2.0, first_token_retries=0)
    config["providers"]["anthropic"] = {"keys": POOL_KEYS["anthropic"][:1]}
    proxy = rotator(config, fresh=True, args=("-w", str(path)))
    fake_vendor.always(FAILING["stall"], key=POOL_KEYS["anthropic"][0])
    client = make_client("anthropic")
    call("anthropic", client, stream=True, model="claude-opus-4-6")  # the key stalls, then rests

    answer = call("anthropic", client, stream=True, model="claude-opus-4-6")

    assert answer.text == TEXT and answer.raw.model == "deepseek-chat"
    asked = fake_vendor.wait_for(3, done=False)
    assert [r.protocol for r in asked].count("anthropic") == 1, asked  # only the first call's stalled attempt
    proxy.wait_log("fallback: anthropic/claude-opus-4-6 failed before the first token (every key resting)")
    proxy.proc.stop()
    flows = saved_flows(path)
    # From the proxy having the request to the next target having it: less than the one first-token timeout a
    # try of (or a wait for) the resting key would cost. Timed inside the proxy, without the SDK's and TLS's time.
    waited = asked[-1].received_at - flows[1].request.timestamp_end
    assert asked[-1].protocol == "chat" and waited < 2.0, waited
    first, second = (flow.metadata["rotator"]["targets"][0] for flow in flows)
    assert "timeout" in first["reason"]
    assert (second["provider"], second["outcome"], second["reason"]) == ("anthropic", "left", "every key resting")


# ------------------------------------------------------------------------------------------------------------------
# Helpers: each client's second turn (the tool's result), its error's message.

BAD_REQUEST = {
    "chat": openai.BadRequestError,
    "responses": openai.BadRequestError,
    "anthropic": anthropic.BadRequestError,
    "gemini": genai_errors.ClientError,
}
CHAT_TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "parameters": WEATHER_SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": TOOL_NAME, "parameters": WEATHER_SCHEMA}]
ANTHROPIC_TOOLS = [{"name": TOOL_NAME, "input_schema": WEATHER_SCHEMA}]


def error_message(client: str, error: Exception) -> str:
    """The message, read where the client's own protocol puts it (so the error's shape is the client's)."""
    if client in ("chat", "responses"):
        return error.body["message"]  # {"error": {"message", "type", ...}}
    if client == "anthropic":
        assert error.body["type"] == "error"
        return error.body["error"]["message"]  # {"type": "error", "error": {"type", "message"}}
    assert error.code == 400 and error.status == "INVALID_ARGUMENT"
    return error.message  # {"error": {"code", "message", "status"}}


def second_turn(client: str, model: str, call_id: str, stream: bool) -> str:
    """The client sends the tool's result back, as its SDK's users do; the text of the answer."""
    arguments = json.dumps(TOOL_ARGUMENTS)
    if client == "chat":
        messages = [{"role": "user", "content": PROMPT},
                    {"role": "assistant", "content": CALL_TEXT, "tool_calls": [
                        {"id": call_id, "type": "function", "function": {"name": TOOL_NAME, "arguments": arguments}}]},
                    {"role": "tool", "tool_call_id": call_id, "content": RESULT}]
        kwargs = dict(model=model, messages=messages, tools=CHAT_TOOLS)
        if stream:
            chunks = openai.OpenAI().chat.completions.create(stream=True, **kwargs)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return openai.OpenAI().chat.completions.create(**kwargs).choices[0].message.content
    if client == "responses":
        items = [{"role": "user", "content": PROMPT},
                 {"type": "function_call", "call_id": call_id, "name": TOOL_NAME, "arguments": arguments},
                 {"type": "function_call_output", "call_id": call_id, "output": RESULT}]
        kwargs = dict(model=model, input=items, tools=RESPONSES_TOOLS)
        if stream:
            events = openai.OpenAI().responses.create(stream=True, **kwargs)
            return "".join(e.delta for e in events if e.type == "response.output_text.delta")
        return openai.OpenAI().responses.create(**kwargs).output_text
    if client == "anthropic":
        messages = [{"role": "user", "content": PROMPT},
                    {"role": "assistant", "content": [{"type": "text", "text": CALL_TEXT},
                                                      {"type": "tool_use", "id": call_id, "name": TOOL_NAME,
                                                       "input": TOOL_ARGUMENTS}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": RESULT}]}]
        kwargs = dict(model=model, max_tokens=256, messages=messages, tools=ANTHROPIC_TOOLS)
        if stream:
            with anthropic.Anthropic().messages.stream(**kwargs) as s:
                message = s.get_final_message()
        else:
            message = anthropic.Anthropic().messages.create(**kwargs)
        return "".join(b.text for b in message.content if b.type == "text")
    contents = [{"role": "user", "parts": [{"text": PROMPT}]},
                {"role": "model", "parts": [{"text": CALL_TEXT},
                                            {"function_call": {"name": TOOL_NAME, "args": TOOL_ARGUMENTS}}]},
                {"role": "user", "parts": [{"function_response": {"name": TOOL_NAME, "response": {"result": RESULT}}}]}]
    gemini = genai.Client()
    if stream:
        return "".join(c.text or "" for c in gemini.models.generate_content_stream(model=model, contents=contents))
    return gemini.models.generate_content(model=model, contents=contents).text


def saved_flows(path) -> list:
    with warnings.catch_warnings():  # mitmproxy's flow filters use pyparsing's deprecated names
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy import io as mitmio
    with path.open("rb") as f:
        return list(mitmio.FlowReader(f).stream())
