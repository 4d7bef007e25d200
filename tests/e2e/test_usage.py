"""Usage and cost through a real `mitmdump -s addons/rotator.py`, with the official SDKs: every answer's usage,
normalised (cache and reasoning tokens each counted once), lands in the saved flow's metadata, in the request's log
line and in the key's counters; an OpenAI Chat stream whose client did not ask for usage is asked for it upstream,
and the client never sees the difference."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from tests.support.clients import MODELS, PROTOCOLS, call, make_client
from tests.support.fake_vendor import INPUT_TOKENS, TEXT, Fault, split_text
from tests.support.flows import read_vendor_flows
from tests.support.harness import POOL_KEYS
from tests.support.routing import TARGET_KEYS, VIA, model_via, routing_config

pytestmark = pytest.mark.e2e

FAMILY = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
CACHE_READ, CACHE_WRITE, REASONING = 5, 3, 7
TOKENS = Fault.tokens(cache_read=CACHE_READ, cache_write=CACHE_WRITE, reasoning=REASONING)
OUTPUT = len(split_text(TEXT)) + REASONING
# The vendors' published prices, USD per million tokens: input, cache read, cache write, output. DeepSeek's are
# halved off-peak (16:30 to 00:30 UTC).
PRICES = {"gpt-4o-mini": (0.15, 0.075, 0.15, 0.60), "claude-haiku-4-5": (1.0, 0.10, 1.25, 5.0),
          "gemini-2.5-flash": (0.30, 0.03, 0.30, 2.50), "gpt-5-mini": (0.25, 0.025, 0.25, 2.0),
          "deepseek-chat": (0.27, 0.07, 0.27, 1.10), "deepseek-chat off-peak": (0.135, 0.035, 0.135, 0.55)}


def expected_usage(protocol: str) -> dict:
    """What the fake vendor reported, in Rotator's normalised form (Gemini has no cache writes)."""
    write = 0 if protocol == "gemini" else CACHE_WRITE
    return {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT, "reasoning_tokens": REASONING,
            "cache_read_tokens": CACHE_READ, "cache_write_tokens": write}


def expected_cost(protocol: str, model: str | None = None) -> float:
    usage = expected_usage(protocol)
    plain, read, write, output = PRICES[model or MODELS[protocol]]
    uncached = usage["input_tokens"] - usage["cache_read_tokens"] - usage["cache_write_tokens"]
    return (uncached * plain + usage["cache_read_tokens"] * read + usage["cache_write_tokens"] * write
            + OUTPUT * output) / 1e6


def assert_no_pooled_key(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert not any(key.encode() in data for keys in POOL_KEYS.values() for key in keys)


def test_usage_and_cost_of_every_protocol_stream_and_whole(fake_vendor, rotator, tmp_path, monkeypatch):
    path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("-w", str(path)))
    fake_vendor.always(TOKENS)
    calls = [(protocol, stream) for protocol in PROTOCOLS for stream in (True, False)]
    for protocol, stream in calls:
        seen = call(protocol, make_client(protocol), stream=stream)
        assert seen.text == TEXT
    fake_vendor.wait_for(len(calls))
    # The key's counters, per model, on the status page (the pools' own view, as `rotator.pools` gives it).
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    status = httpx.get("http://rotator.status/", params={"format": "json"}, timeout=10).json()
    proxy.proc.stop()  # the flow file is complete once mitmdump has exited

    flows = read_vendor_flows(path)
    assert len(flows) == len(calls)
    for flow, (protocol, stream) in zip(flows, calls):
        meta = flow.metadata["rotator"]
        assert meta["usage"] == expected_usage(protocol), (protocol, stream)
        assert meta["cost"] == pytest.approx(expected_cost(protocol), rel=1e-6), (protocol, stream)
        # One log line per request, naming the flow, its model, its usage and cost; never the key.
        tag = f"rotator: {FAMILY[protocol]} {flow.id[:8]}: usage: {MODELS[protocol]}: "
        usage = expected_usage(protocol)
        assert (f"{tag}input {INPUT_TOKENS} (cache read {CACHE_READ}, cache write {usage['cache_write_tokens']}), "
                f"output {OUTPUT} (reasoning {REASONING}), cost ${expected_cost(protocol):.6f}") in proxy.full_log

    for family in ("openai", "anthropic", "gemini"):
        pool = next(p for p in status["providers"] if p["name"] == family)["pool"]
        per_model: dict[str, list] = {}
        for key in pool["keys"]:
            for model, counts in key["models"].items():
                per_model.setdefault(model, []).append(counts)
        protocols = [p for p in PROTOCOLS if FAMILY[p] == family]
        model = MODELS[protocols[0]]
        answers = 2 * len(protocols)  # a stream and a whole answer per protocol
        assert list(per_model) == [model]
        assert sum(c["tokens"] for c in per_model[model]) == answers * (INPUT_TOKENS + OUTPUT)
        assert sum(c["cost"] for c in per_model[model]) == pytest.approx(
            sum(2 * expected_cost(p) for p in protocols), rel=1e-6)
        assert sum(c["unpriced"] for c in per_model[model]) == 0
    assert_no_pooled_key(proxy.full_log, path.read_bytes(), json.dumps(status))


def test_usage_of_whole_answers_not_streamed_upstream(fake_vendor, rotator, tmp_path):
    path = tmp_path / "flows.mitm"
    plain = {"force_upstream_stream": False}
    proxy = rotator(fresh=True, args=("-w", str(path)),
                    providers={"openai": plain, "anthropic": plain, "gemini": plain})
    fake_vendor.always(TOKENS)
    for protocol in PROTOCOLS:
        assert call(protocol, make_client(protocol), stream=False).text == TEXT
    assert not any(r.stream for r in fake_vendor.wait_for(len(PROTOCOLS)))  # JSON answers, as the client asked
    proxy.proc.stop()

    flows = read_vendor_flows(path)
    assert [f.metadata["rotator"]["usage"] for f in flows] == [expected_usage(p) for p in PROTOCOLS]
    assert [f.metadata["rotator"]["cost"] for f in flows] == pytest.approx([expected_cost(p) for p in PROTOCOLS])


def test_an_unknown_models_cost_is_unknown_and_a_configured_price_applies(fake_vendor, rotator, tmp_path):
    path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("-w", str(path)),
                    prices={"acme-*": {"input": 1.0, "output": 2.0, "cache_read": 0.5}})
    fake_vendor.always(TOKENS)
    client = make_client("chat")
    for model in ("acme-large", "no-such-model"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    fake_vendor.wait_for(2)
    proxy.proc.stop()

    priced, unknown = read_vendor_flows(path)
    uncached = INPUT_TOKENS - CACHE_READ - CACHE_WRITE
    assert priced.metadata["rotator"]["cost"] == pytest.approx(
        (uncached * 1.0 + CACHE_READ * 0.5 + CACHE_WRITE * 1.0 + OUTPUT * 2.0) / 1e6)
    assert unknown.metadata["rotator"]["usage"] == expected_usage("chat")
    assert unknown.metadata["rotator"]["cost"] is None  # not 0
    assert re.search(rf"{unknown.id[:8]}: usage: no-such-model: .*, cost unknown", proxy.full_log)


def test_a_chat_stream_without_include_usage_gets_usage_the_client_never_sees(fake_vendor, rotator, tmp_path):
    path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("-w", str(path)))
    fake_vendor.always(TOKENS)
    client = make_client("chat")
    chunks = list(client.chat.completions.create(model=MODELS["chat"], messages=[{"role": "user", "content": "hi"}],
                                                 stream=True))

    # The client got exactly the stream it asked for: no usage chunk, no usage on any chunk.
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The vendor was asked for the usage, and Rotator kept it.
    [request] = fake_vendor.wait_for(1)
    assert request.body["stream_options"] == {"include_usage": True}
    assert any(b'"usage":{' in data for _, data in request.events)
    proxy.proc.stop()

    [flow] = read_vendor_flows(path)
    assert flow.metadata["rotator"]["usage"] == expected_usage("chat")
    assert flow.metadata["rotator"]["cost"] == pytest.approx(expected_cost("chat"))
    body = flow.response.content  # what the client received, byte for byte
    assert b'"usage"' not in body and body.endswith(b"data: [DONE]\n\n")
    sent = b"".join(data for _, data in request.events)
    assert body == re.sub(rb'data: \{[^\n]*"choices":\[\],"usage":\{[^\n]*\n\n', b"", sent).replace(b',"usage":null', b"")


def test_a_chat_stream_with_include_usage_keeps_its_usage_chunk(fake_vendor, rotator):
    rotator()
    fake_vendor.always(TOKENS)
    client = make_client("chat")
    chunks = list(client.chat.completions.create(
        model=MODELS["chat"], messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (INPUT_TOKENS, OUTPUT)
    assert usage.prompt_tokens_details.cached_tokens == CACHE_READ
    assert fake_vendor.wait_for(1)[0].body["stream_options"] == {"include_usage": True}


def test_no_stream_options_are_added_for_a_whole_chat_answer_without_forced_streaming(fake_vendor, rotator):
    rotator(providers={"openai": {"force_upstream_stream": False}})
    openai.OpenAI().chat.completions.create(model=MODELS["chat"], messages=[{"role": "user", "content": "hi"}])
    [request] = fake_vendor.wait_for(1)
    assert "stream_options" not in request.body and "stream" not in request.body


# A client of each protocol served by a target of another: the usage is what the target's vendor reported, the
# price the target model's.
TRANSLATED = [("chat", "anthropic"), ("responses", "gemini"), ("anthropic", "responses"), ("gemini", "chat")]


def test_usage_and_cost_of_translated_answers(fake_vendor, rotator, tmp_path):
    path = tmp_path / "flows.mitm"
    proxy = rotator(routing_config(fake_vendor.url), fresh=True, args=("-w", str(path)))
    fake_vendor.always(TOKENS)
    calls = [(client, upstream, stream) for client, upstream in TRANSLATED for stream in (True, False)]
    for client, upstream, stream in calls:
        seen = call(client, make_client(client), stream=stream, model=model_via(upstream))
        assert seen.text == TEXT
    fake_vendor.wait_for(len(calls))
    proxy.proc.stop()

    flows = read_vendor_flows(path)
    assert len(flows) == len(calls)
    for flow, (client, upstream, stream) in zip(flows, calls):
        meta, where = flow.metadata["rotator"], (client, upstream, stream)
        assert meta["usage"] == expected_usage(upstream), where
        target_model = VIA[upstream][1]
        prices = [target_model, f"{target_model} off-peak"]  # (a call at 16:30 UTC may meet either)
        assert any(meta["cost"] == pytest.approx(expected_cost(upstream, m), rel=1e-6)
                   for m in prices if m in PRICES), where
        assert f"{flow.id[:8]}: usage: {target_model}: " in proxy.full_log
    assert_no_pooled_key(proxy.full_log, path.read_bytes())
    assert not any(key in proxy.full_log for keys in TARGET_KEYS.values() for key in keys)


def test_a_keys_requests_per_model_count_its_attempts(fake_vendor, rotator, monkeypatch):
    """Beside the tokens of a model, its requests: the attempts made with that key for that model (a 429 on the
    first key is one request of that key, with no tokens)."""
    proxy = rotator(fresh=True)
    limited = POOL_KEYS["openai"][0]
    fake_vendor.always(Fault.status(429, headers={"retry-after": "30"}), key=limited)
    for _ in range(2):
        assert call("chat", make_client("chat"), stream=True).text == TEXT
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    status = httpx.get("http://rotator.status/", params={"format": "json"}, timeout=10).json()

    pool = next(p for p in status["providers"] if p["name"] == "openai")["pool"]
    model = MODELS["chat"]
    used = [k for k in pool["keys"] if k["total"]["requests"]]
    assert sum(k["total"]["requests"] for k in used) == len(fake_vendor.calls()) == 3  # the 429, two answers
    for key in used:
        assert key["models"][model]["requests"] == key["total"]["requests"]
        assert key["models"][model]["tokens"] == key["total"]["tokens"]
    assert sorted(k["models"][model]["tokens"] > 0 for k in used) == [False, True, True]  # the 429: no tokens
    assert_no_pooled_key(json.dumps(status))
