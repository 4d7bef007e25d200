import json
import logging
import sys
from types import SimpleNamespace

import httpx
import pytest

import protocols
from protocols.unified import Usage
from rewrite.accounting import usage as usage_module
from rewrite.accounting.prices import PriceTable
from rewrite.accounting.usage import Meter, from_answer, normalised
from rewrite.lifecycle.events import Served
from rewrite.lifecycle.payer import Ticket
from rewrite.plugins.accounting import Counting
from rewrite.plugins.payers.keys import PooledKey
from rewrite.plugins.quirks import record_of
from rewrite.pool import KeyPool
from rewrite.pool.key_state import mask
from rewrite.pool.report import describe
from tests.support import engine_harness
from tests.support import fake_vendor as fv
from tests.support.streams import parse

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

CHAT, RESPONSES, ANTHROPIC, GEMINI = "openai_chat", "openai_responses", "anthropic_messages", "gemini"


# -- normalisation: each vendor's convention, each token counted once ---------------------------------------------


def test_openai_chat_prompt_tokens_include_the_cached_ones():
    usage = {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
             "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0}}
    assert normalised(CHAT, usage) == Usage(input_tokens=2006, output_tokens=300, reasoning_tokens=192,
                                            cache_read_tokens=1920, cache_write_tokens=0)


def test_openai_chat_cache_writes_and_deepseek_cache_hits():
    written = {"prompt_tokens": 500, "completion_tokens": 5,
               "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 400}}
    assert normalised(CHAT, written) == Usage(500, 5, 0, 0, 400)
    deepseek = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 64,
                "prompt_cache_miss_tokens": 36}
    assert normalised(CHAT, deepseek) == Usage(100, 5, 0, 64, 0)


def test_responses_input_tokens_include_the_cached_ones():
    usage = {"input_tokens": 2006, "input_tokens_details": {"cached_tokens": 1920}, "output_tokens": 300,
             "output_tokens_details": {"reasoning_tokens": 192}, "total_tokens": 2306}
    assert normalised(RESPONSES, usage) == Usage(2006, 300, 192, 1920, 0)


def test_anthropic_input_tokens_exclude_cache_reads_and_writes():
    usage = {"input_tokens": 50, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 2000,
             "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 0},
             "output_tokens": 300, "service_tier": "standard"}
    assert normalised(ANTHROPIC, usage) == Usage(input_tokens=3050, output_tokens=300, reasoning_tokens=0,
                                                 cache_read_tokens=2000, cache_write_tokens=1000)


def test_gemini_prompt_includes_cached_and_thoughts_are_apart_from_candidates():
    usage = {"promptTokenCount": 2006, "cachedContentTokenCount": 1920, "candidatesTokenCount": 108,
             "thoughtsTokenCount": 192, "toolUsePromptTokenCount": 10, "totalTokenCount": 2316}
    assert normalised(GEMINI, usage) == Usage(input_tokens=2016, output_tokens=300, reasoning_tokens=192,
                                              cache_read_tokens=1920, cache_write_tokens=0)


@pytest.mark.parametrize("protocol", [CHAT, RESPONSES, ANTHROPIC, GEMINI])
@pytest.mark.parametrize("usage", [
    None, [], "12", {}, {"prompt_tokens": "12", "input_tokens": "12", "promptTokenCount": "12"},
    {"prompt_tokens": 12, "prompt_tokens_details": [1], "input_tokens_details": "x", "output_tokens_details": 3},
    {"input_tokens": 12, "cache_read_input_tokens": "3", "candidatesTokenCount": [1]},
    {"prompt_tokens": -5, "completion_tokens": True, "input_tokens": 1.5, "promptTokenCount": None},
])
def test_usage_of_the_wrong_shape_counts_nothing_and_never_raises(protocol, usage):
    result = normalised(protocol, usage)
    assert result is None or all(isinstance(v, int) and v >= 0 for v in vars_of(result))


def vars_of(usage: Usage) -> list:
    return [getattr(usage, name) for name in usage_module.FIELDS]


# -- streams and whole answers, as the fake vendor sends them ----------------------------------------------------


VENDOR_EVENTS = {CHAT: fv.chat_events, RESPONSES: fv.responses_events, ANTHROPIC: fv.anthropic_events,
                 GEMINI: fv.gemini_events}
VENDOR_BODIES = {CHAT: fv.chat_body, RESPONSES: fv.responses_body, ANTHROPIC: fv.anthropic_body,
                 GEMINI: fv.gemini_body}
FAULT = fv.Fault.tokens(cache_read=5, cache_write=3, reasoning=7)


def ctx(body: dict | None = None, fault: fv.Fault = FAULT) -> fv.Ctx:
    return fv.Ctx(0, "gpt-4o-mini", 1700000000, body if body is not None else {"stream": True}, fault)


def expected(protocol: str, c: fv.Ctx) -> Usage:
    read, write, reasoning = c.fault.counts
    return Usage(input_tokens=fv.INPUT_TOKENS, output_tokens=c.output_tokens + reasoning,
                 reasoning_tokens=reasoning, cache_read_tokens=read,
                 cache_write_tokens=0 if protocol == GEMINI else write)  # Gemini has no cache writes


def stream(protocol: str, c: fv.Ctx) -> bytes:
    return b"".join(ev.data for ev in VENDOR_EVENTS[protocol](c))


def play_through(meter: Meter, protocol: str, body: bytes, request: dict) -> bytes:
    feed = meter.tap(protocols.get(protocol).repairer(request).feed)
    return b"".join(feed(e) for e in parse(body))


@pytest.mark.parametrize("protocol", [CHAT, RESPONSES, ANTHROPIC, GEMINI])
def test_a_streams_usage_matches_what_the_vendor_reported(protocol):
    request = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    c = ctx(request)
    meter = Meter(protocols.get(protocol), request, client_stream=True)
    body = stream(protocol, c)
    out = play_through(meter, protocol, body, request)
    assert out == body  # only watched
    assert meter.usage() == expected(protocol, c)


@pytest.mark.parametrize("protocol", [CHAT, RESPONSES, ANTHROPIC, GEMINI])
def test_a_whole_answers_usage_matches_what_the_vendor_reported(protocol):
    c = ctx({"model": "m"})
    answer = json.dumps(VENDOR_BODIES[protocol](c)).encode()
    meter = Meter(protocols.get(protocol), {"model": "m"}, client_stream=False)
    assert meter.usage(answer) == expected(protocol, c)
    assert from_answer(protocol, json.loads(answer)) == expected(protocol, c)


def test_meter_without_a_stream_or_answer_has_no_usage():
    meter = Meter(protocols.get(CHAT), {"model": "m"}, client_stream=False)
    assert meter.usage() is None and meter.usage(b"not json") is None and meter.usage(b"[1]") is None
    assert Meter(None, None, client_stream=False).usage(b'{"usage": {"prompt_tokens": 1}}') is None


def test_anthropic_cumulative_updates_replace_never_add():
    events = [
        {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 10, "cache_read_input_tokens": 4,
                                                                    "cache_creation_input_tokens": 2,
                                                                    "output_tokens": 1}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": '"usage": 99'}},
        {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 5}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
         "usage": {"output_tokens": 9, "input_tokens": 11, "cache_read_input_tokens": None}},
        {"type": "message_stop"},
    ]
    meter = Meter(protocols.get(ANTHROPIC), {"stream": True}, client_stream=True)
    play_through(meter, ANTHROPIC, sse(events), {"stream": True})
    assert meter.usage() == Usage(input_tokens=17, output_tokens=9, cache_read_tokens=4, cache_write_tokens=2)


def test_gemini_cumulative_snapshots_are_not_summed():
    chunks = [{"candidates": [{"content": {"parts": [{"text": "a"}]}}],
               "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": n}} for n in (1, 2, 3)]
    meter = Meter(protocols.get(GEMINI), {}, client_stream=True)
    play_through(meter, GEMINI, sse(chunks), {})
    assert meter.usage() == Usage(input_tokens=8, output_tokens=3)
    last_without = Meter(protocols.get(GEMINI), {}, client_stream=True)
    play_through(last_without, GEMINI, sse([*chunks, {"candidates": [{"finishReason": "STOP"}]}]), {})
    assert last_without.usage() == Usage(input_tokens=8, output_tokens=3)


def test_a_stream_cut_before_its_usage_has_none():
    request = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    events = parse(stream(CHAT, ctx(request)))
    meter = Meter(protocols.get(CHAT), request, client_stream=True)
    feed = meter.tap(protocols.get(CHAT).repairer(request).feed)
    for e in events[:3]:
        feed(e)
    assert meter.usage() is None


def test_content_events_are_never_parsed(monkeypatch):
    """The sniffer is on the hot path: it reads JSON only of the events that carry usage, and only at the end."""
    parsed = []
    for reader in {protocols.registered(p).usage for p in (CHAT, RESPONSES, ANTHROPIC, GEMINI)}:
        for module in {sys.modules[k.__module__] for k in reader.__mro__ if k is not object}:
            if hasattr(module, "load_object"):  # (the modules whose readers parse events)
                monkeypatch.setattr(module, "load_object", lambda data: parsed.append(data) or json.loads(data))
    for protocol in (CHAT, RESPONSES, ANTHROPIC, GEMINI):
        request = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
        c = ctx(request, FAULT.ok("word " * 200))
        meter = Meter(protocols.get(protocol), request, client_stream=True)
        play_through(meter, protocol, stream(protocol, c), request)
        assert parsed == []
        assert meter.usage() == expected(protocol, c)
        assert 1 <= len(parsed) <= 2  # the last snapshot; Anthropic's message_start and its last update
        parsed.clear()


# -- include_usage: asked for upstream, hidden from a client that did not ask ------------------------------------


@pytest.mark.parametrize("request_body, asks", [
    ({"model": "m", "stream": True}, True),
    ({"model": "m", "stream": True, "stream_options": {}}, True),
    ({"model": "m", "stream": True, "stream_options": {"include_usage": False}}, True),
    ({"model": "m", "stream": True, "stream_options": {"include_usage": True}}, False),
    ({"model": "m", "stream": True, "stream_options": "yes"}, False),  # malformed: the vendor answers it
])
def test_a_chat_stream_without_include_usage_asks_for_it_upstream(request_body, asks):
    assert Meter(protocols.get(CHAT), request_body, client_stream=True).ask_upstream is asks
    assert not Meter(protocols.get(CHAT), request_body, client_stream=False).ask_upstream  # forced streams ask anyway
    for other in (RESPONSES, ANTHROPIC, GEMINI):
        assert not Meter(protocols.get(other), request_body, client_stream=True).ask_upstream


@pytest.mark.parametrize("fault", [FAULT, FAULT.tool_call(), fv.Fault.ok("")])
def test_the_client_sees_exactly_the_stream_it_asked_for(fault):
    client = {"model": "m", "stream": True}
    upstream = {**client, "stream_options": {"include_usage": True}}  # what Rotator sends
    meter = Meter(protocols.get(CHAT), client, client_stream=True)
    out = play_through(meter, CHAT, stream(CHAT, ctx(upstream, fault)), client)
    assert out == stream(CHAT, ctx(client, fault))  # no usage chunk, no "usage":null
    assert b'"usage"' not in out
    assert meter.usage() == expected(CHAT, ctx(client, fault))


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")], ids=["spaced", "compact"])
def test_a_null_usage_anywhere_in_the_chunk_goes_too(separators):
    client = {"model": "m", "stream": True}
    chunks = [{"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
               "usage": None, "obfuscation": "x1"},
              {"usage": None, "id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}]
    body = b"".join(b"data: %s\n\n" % json.dumps(c, separators=separators).encode() for c in chunks)
    meter = Meter(protocols.get(CHAT), client, client_stream=True)
    out = play_through(meter, CHAT, body + b"data: [DONE]\n\n", client)
    assert [json.loads(e.data) for e in parse(out)[:2]] == [
        {k: v for k, v in c.items() if k != "usage"} for c in chunks[:2]]
    assert parse(out)[2].data == "[DONE]" and len(parse(out)) == 3
    assert meter.usage() == Usage(input_tokens=3, output_tokens=1)


def test_event_names_spare_the_search_and_unnamed_events_are_still_read():
    named = b"".join(b"event: %s\ndata: %s\n\n" % (p["type"].encode(), json.dumps(p).encode()) for p in [
        {"type": "response.output_text.delta", "delta": '"input_tokens": 1'},
        {"type": "response.completed", "response": {"usage": {"input_tokens": 4, "output_tokens": 2}}}])
    unnamed = b"data: %s\n\n" % json.dumps(
        {"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 3}}}).encode()
    for body, usage in ((named, Usage(4, 2)), (unnamed, Usage(5, 3))):
        meter = Meter(protocols.get(RESPONSES), {"stream": True}, client_stream=True)
        play_through(meter, RESPONSES, body, {"stream": True})
        assert meter.usage() == usage


def test_a_client_that_asked_for_usage_keeps_its_usage_chunk():
    request = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    meter = Meter(protocols.get(CHAT), request, client_stream=True)
    body = stream(CHAT, ctx(request))
    assert play_through(meter, CHAT, body, request) == body
    assert b'"usage":{' in body


def test_a_translated_stream_is_watched_in_the_upstreams_protocol():
    request = {"model": "m", "stream": True}
    meter = Meter(protocols.get(CHAT), request, client_stream=True)  # a Chat client, an Anthropic upstream
    body = stream(ANTHROPIC, ctx(request))
    feed = meter.tap(protocols.get(ANTHROPIC).repairer(request).feed, ANTHROPIC)
    assert b"".join(feed(e) for e in parse(body)) == body
    assert meter.usage() == expected(ANTHROPIC, ctx(request))


def sse(payloads: list[dict]) -> bytes:
    return b"".join(b"data: %s\n\n" % json.dumps(p).encode() for p in payloads)


# -- where usage goes --------------------------------------------------------------------------------------------


def job() -> SimpleNamespace:
    return SimpleNamespace(id="0123456789abcdef", provider=SimpleNamespace(name="openai"), records={})


def account(j, usage: Usage | None, model: str, prices: PriceTable, pool: KeyPool, key: str) -> None:
    """An answer of `usage` served on the pooled `key`, told to the accounting plug-in as the spine tells it."""
    payer = PooledKey(SimpleNamespace(name=pool.name), pool, True, None, None, 30, None, j.id)  # type: ignore[arg-type]
    part = Counting(SimpleNamespace(job=j, setting=SimpleNamespace(prices=prices)))  # type: ignore[arg-type]
    part.served(Served(SimpleNamespace(model=model, provider=SimpleNamespace(name="openai")), Ticket(key, mask(key)),
                       payer, usage))


def test_account_sets_the_job_logs_a_line_and_counts_per_key_and_model(caplog):
    pool = KeyPool(["sk-pool-secret-1", "sk-pool-secret-2"], name="openai")
    j = job()
    usage = Usage(input_tokens=2006, output_tokens=300, reasoning_tokens=192, cache_read_tokens=1920)
    with caplog.at_level(logging.INFO, logger="rotator"):
        account(j, usage, "gpt-4o-mini", PriceTable(), pool, "sk-pool-secret-2")
    assert j.records["usage"] == {"input_tokens": 2006, "output_tokens": 300, "reasoning_tokens": 192,
                                  "cache_read_tokens": 1920, "cache_write_tokens": 0}
    assert j.records["cost"] == pytest.approx((86 * 0.15 + 1920 * 0.075 + 300 * 0.60) / 1e6)
    line = caplog.messages[-1]
    assert line.startswith("rotator: openai 01234567: usage: gpt-4o-mini: input 2006 (cache read 1920, cache write 0), "
                           "output 300 (reasoning 192), cost $0.000")
    assert "secret" not in line
    counts = describe(pool)
    assert json.dumps(counts).count("2306") >= 1  # the key's tokens: input + output
    assert "secret" not in json.dumps(counts)


def test_account_counts_each_keys_prompt_cache_reads_writes_and_what_its_cold_prefixes_cost():
    pool = KeyPool(["sk-pool-secret-1", "sk-pool-secret-2"], name="anthropic")
    # claude-haiku-4-5: input $1, cache write $1.25, cache read $0.10 per million
    account(job(), Usage(input_tokens=10_050, output_tokens=30, cache_write_tokens=10_000), "claude-haiku-4-5",
            PriceTable(), pool, "sk-pool-secret-1")
    account(job(), Usage(input_tokens=10_100, output_tokens=30, cache_read_tokens=10_000, cache_write_tokens=50),
            "claude-haiku-4-5", PriceTable(), pool, "sk-pool-secret-1")
    account(job(), Usage(input_tokens=10, output_tokens=2), "fake-model", PriceTable(), pool, "sk-pool-secret-2")
    first, second = describe(pool)["keys"]
    assert {k: first["total"][k] for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens")} == {
        "input_tokens": 20_150, "cache_read_tokens": 10_000, "cache_write_tokens": 10_050}
    assert first["cache_read_share"] == {"last_hour": 0.4963, "total": 0.4963}
    assert first["total"]["cold_cost"] == pytest.approx(10_050 * 1.15 / 1e6)
    assert second["cache_read_share"] == {"last_hour": 0.0, "total": 0.0} and second["total"]["cold_cost"] == 0


def test_account_of_an_unknown_model_costs_unknown_not_zero(caplog):
    pool = KeyPool(["sk-pool-secret-1"], name="openai")
    j = job()
    with caplog.at_level(logging.INFO, logger="rotator"):
        account(j, Usage(input_tokens=10, output_tokens=2), "fake-model", PriceTable(), pool, "sk-pool-secret-1")
    assert j.records["cost"] is None and j.records["usage"]["input_tokens"] == 10
    assert "cost unknown" in caplog.messages[-1]
    state = pool.by_secret["sk-pool-secret-1"].usage
    assert state.total.tokens == 12 and state.total.unpriced == 1 and state.by_model["fake-model"].tokens == 12


def test_account_without_usage_changes_nothing(caplog):
    j = job()
    with caplog.at_level(logging.INFO, logger="rotator"):
        account(j, None, "gpt-4o", PriceTable(), KeyPool(["sk-pool-secret-1"], name="openai"), "sk-pool-secret-1")
    assert j.records == {} and not caplog.messages


# -- through the engine (tests/support/engine_harness.py: a real Exchange, a scripted upstream) ---------------------------


def vendor(protocol: str, seen: list[dict]):
    """The fake vendor's answer to whatever the engine sends: a stream when asked for one, else JSON."""

    def answer(request):
        body = json.loads(request.content)
        seen.append(body)
        c = ctx(body)
        if body.get("stream") or "streamGenerateContent" in request.url.path:
            return engine_harness.sse([ev.data for ev in VENDOR_EVENTS[protocol](c)])
        return httpx.Response(200, json=VENDOR_BODIES[protocol](c))

    return answer


@pytest.mark.parametrize("protocol", [CHAT, RESPONSES, ANTHROPIC, GEMINI])
@pytest.mark.parametrize("stream, forced", [(True, True), (False, True), (False, False)],
                         ids=["stream", "forced-stream", "whole"])
async def test_the_engine_records_usage_on_the_job_and_the_key(protocol, stream, forced):
    seen: list[dict] = []
    extra = "" if forced else ", force_upstream_stream: false"
    out, job = await engine_harness.run(protocol, engine_harness.Upstream([vendor(protocol, seen)]), stream=stream,
                                        provider_extra=extra)
    assert out.status == 200
    usage = expected(protocol, ctx())
    assert job.records["usage"] == usage_module.as_dict(usage)
    tokens = fv.INPUT_TOKENS + ctx().output_tokens + 7
    [key] = [k for k in describe(job.route.provider.pool)["keys"] if k["total"]["tokens"]]
    cache = {"input_tokens": usage.input_tokens, "cache_read_tokens": usage.cache_read_tokens,
             "cache_write_tokens": usage.cache_write_tokens}
    assert usage.cache_read_tokens and key["cache_read_share"]["total"] == round(
        usage.cache_read_tokens / usage.input_tokens, 4)
    if protocol == GEMINI:  # the model is in the path
        cost = job.records["cost"]
        assert cost == pytest.approx(PriceTable().cost("gemini-2.5-flash", usage)) and cost > 0
        assert key["models"]["gemini-2.5-flash"] == {
            "requests": 1, "tokens": tokens, "cost": cost, "unpriced": 0, **cache,
            "cold_cost": PriceTable().cold_cost("gemini-2.5-flash", usage)}
    else:
        assert job.records["cost"] is None  # model "m" has no price: unknown, not 0
        assert key["models"]["m"] == {"requests": 1, "tokens": tokens, "cost": 0.0, "unpriced": 1, **cache,
                                      "cold_cost": 0.0}


async def test_the_engine_asks_for_chat_usage_and_the_client_never_sees_it():
    seen: list[dict] = []
    client = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    out, job = await engine_harness.run(CHAT, engine_harness.Upstream([vendor(CHAT, seen)]), body=client)
    assert seen[0]["stream_options"] == {"include_usage": True}
    assert out.body == stream(CHAT, ctx(client))  # what the vendor sends a client that did not ask
    assert job.records["usage"] == usage_module.as_dict(expected(CHAT, ctx()))


async def test_an_upstream_that_refuses_stream_options_gets_the_stream_as_the_client_sent_it():
    seen: list[dict] = []
    answer = vendor(CHAT, seen)

    def refusing(request):
        if b"stream_options" in request.content:
            seen.append(json.loads(request.content))
            return httpx.Response(400, json={"error": {"message": "Unrecognized request argument supplied: "
                                                                  "stream_options", "type": "invalid_request_error"}})
        return answer(request)

    client = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    upstream = engine_harness.Upstream([refusing])
    out, job = await engine_harness.run(CHAT, upstream, body=client)
    assert [("stream_options" in body) for body in seen] == [True, False]
    assert upstream.keys() == ["k1", "k1"]  # the request's fault, not the key's: the same key, no rest
    assert out.status == 200 and out.body == stream(CHAT, ctx(client))
    assert [n["kind"] for n in job.notes] == ["usage-refused"]
    assert record_of(job.route.provider).stream_options  # remembered: the provider's next streams go without it


def test_a_usage_record_holds_every_field_of_the_usage():
    import dataclasses

    usage = Usage(input_tokens=1, output_tokens=2, reasoning_tokens=3, cache_read_tokens=4, cache_write_tokens=5)
    assert usage_module.as_dict(usage) == dataclasses.asdict(usage)
