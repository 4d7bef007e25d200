"""The Prometheus families of rewrite/accounting/metrics.py, read back from their exposition text as a scraper reads them
(tests/e2e/test_metrics.py scrapes them through a real proxy)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from rewrite.accounting.metrics import MAX_MODELS, Metrics, reason_kind

MASKED = ["sk-p…1111", "sk-p…2222"]


def scrape(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of what `/metrics` returns."""
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def flow(**extra) -> dict:
    """`flow.metadata["rotator"]` of a gpt-4o-mini call: a 429 on the first key, then served by the second."""
    return {"provider": "openai", "model": "gpt-4o-mini", "key": MASKED[1], "ttft": 0.4,
            "events": [{"kind": "retry", "detail": "attempt 1 failed (status 429); retrying", "reason": "status 429",
                        "key": MASKED[0]}],
            "usage": {"input_tokens": 100, "output_tokens": 20, "reasoning_tokens": 0, "cache_read_tokens": 60,
                      "cache_write_tokens": 0},
            "cost": 0.5, **extra}


def test_requests_retries_tokens_cost_and_timings_by_provider_and_model():
    metrics = Metrics()
    metrics.record(flow(), duration=1.5)
    metrics.record(flow(cost=None), duration=30.0)  # a model without a known price: unpriced, not 0

    s = scrape(metrics)
    mini = {"provider": "openai", "model": "gpt-4o-mini"}
    assert value(s, "rotator_requests_total", **mini, outcome="ok") == 2
    assert value(s, "rotator_retries_total", **mini, reason="status 429") == 2
    assert value(s, "rotator_tokens_total", **mini, kind="input_tokens") == 200
    assert value(s, "rotator_tokens_total", **mini, kind="cache_read_tokens") == 120
    assert value(s, "rotator_tokens_total", **mini, kind="reasoning_tokens") == 0  # none reported
    assert value(s, "rotator_requests_total", **mini, outcome="failed") == 0
    assert value(s, "rotator_cost_usd_total", **mini) == 0.5
    assert value(s, "rotator_unpriced_answers_total", **mini) == 1
    assert value(s, "rotator_resumes_total", **mini) == 0
    assert value(s, "rotator_time_to_first_token_seconds_count", **mini) == 2
    assert value(s, "rotator_time_to_first_token_seconds_bucket", **mini, le="0.5") == 2
    assert value(s, "rotator_request_duration_seconds_bucket", **mini, le="2.0") == 1
    assert value(s, "rotator_request_duration_seconds_sum", **mini) == 31.5


def test_repairs_failures_and_refusals_count_with_the_kind_of_their_reason():
    metrics = Metrics()
    metrics.record({"provider": "anthropic", "model": "claude-haiku-4-5",
                    "events": [{"kind": "repaired", "detail": "stream ended without its completion signal "
                                "(upstream reset: ReadError); ended as error", "cause": "upstream reset: ReadError"}]})
    metrics.record({"provider": "anthropic", "model": "claude-haiku-4-5",
                    "events": [{"kind": "failed", "detail": "giving up: first-token timeout",
                                "reason": "first-token timeout"}]})
    metrics.record({"provider": "anthropic", "refused": "no client key matched (401)"})

    s = scrape(metrics)
    haiku = {"provider": "anthropic", "model": "claude-haiku-4-5"}
    assert value(s, "rotator_repairs_total", **haiku, reason="upstream reset") == 1
    assert value(s, "rotator_failures_total", **haiku, reason="first-token timeout") == 1
    assert value(s, "rotator_requests_total", **haiku, outcome="repaired") == 1
    assert value(s, "rotator_requests_total", **haiku, outcome="failed") == 1
    assert value(s, "rotator_requests_total", provider="anthropic", model="", outcome="refused") == 1


def test_a_routed_requests_notes_count_against_the_target_tried_then():
    metrics = Metrics()
    metrics.record({"provider": "anthropic", "model": "claude-haiku-4-5",
                    "targets": [{"provider": "openai", "model": "gpt-4o-mini", "outcome": "left"},
                                {"provider": "anthropic", "model": "claude-haiku-4-5", "outcome": "served"}],
                    "events": [{"kind": "retry", "reason": "status 500", "key": MASKED[0]},
                               {"kind": "fallback", "provider": "anthropic", "reason": "status 500"}],
                    "usage": {"output_tokens": 3}, "cost": 0.25})

    s = scrape(metrics)
    assert value(s, "rotator_retries_total", provider="openai", model="gpt-4o-mini", reason="status 500") == 1
    assert value(s, "rotator_fallbacks_total", provider="openai", model="gpt-4o-mini", reason="status 500") == 1
    haiku = {"provider": "anthropic", "model": "claude-haiku-4-5"}
    assert value(s, "rotator_requests_total", **haiku, outcome="ok") == 1
    assert value(s, "rotator_cost_usd_total", **haiku) == 0.25
    assert value(s, "rotator_requests_total", provider="openai", model="gpt-4o-mini", outcome="ok") is None


def test_key_states_and_requests_in_flight_are_read_when_scraped():
    pools = [{"provider": "openai", "keys": [{"key": MASKED[0], "state": "resting", "in_flight": 0},
                                             {"key": MASKED[1], "state": "ready", "in_flight": 2}]}]
    in_flight = {"openai": 2, "gemini": 0}
    metrics = Metrics(lambda: pools, lambda: in_flight)

    s = scrape(metrics)
    assert [value(s, "rotator_key_state", provider="openai", key=MASKED[0], state=state)
            for state in ("ready", "resting", "out")] == [0, 1, 0]
    assert value(s, "rotator_key_state", provider="openai", key=MASKED[1], state="ready") == 1
    assert value(s, "rotator_key_in_flight", provider="openai", key=MASKED[1]) == 2
    assert value(s, "rotator_in_flight", provider="openai") == 2
    assert value(s, "rotator_in_flight", provider="gemini") == 0

    pools[0]["keys"][0]["state"] = "ready"
    in_flight["openai"] = 0
    s = scrape(metrics)
    assert value(s, "rotator_key_state", provider="openai", key=MASKED[0], state="resting") == 0
    assert value(s, "rotator_in_flight", provider="openai") == 0


def test_each_keys_requests_and_errors_are_counted():
    pools = [{"provider": "openai", "keys": [{"key": MASKED[0], "state": "ready", "in_flight": 0,
                                              "total": {"requests": 7}}]}]
    metrics = Metrics(lambda: pools)
    metrics.record(flow())  # a 429 on the first key, served by the second
    metrics.record(flow(events=[{"kind": "repaired", "detail": "ended as length", "cause": "upstream reset"}]))
    s = scrape(metrics)
    assert value(s, "rotator_key_requests_total", provider="openai", key=MASKED[0]) == 7
    assert value(s, "rotator_key_errors_total", provider="openai", key=MASKED[0], kind="retry") == 1
    assert value(s, "rotator_key_errors_total", provider="openai", key=MASKED[1], kind="repaired") == 1
    assert value(s, "rotator_key_errors_total", provider="openai", key=MASKED[1], kind="retry") is None


def test_each_keys_prompt_cache_tokens_share_and_cold_cost_are_read_when_scraped():
    def key(masked, share, **total):
        counts = {"input_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0, "cold_cost": 0.0, **total}
        return {"key": masked, "state": "ready", "in_flight": 0, "total": counts, "cache_read_share": share}

    pools = [{"provider": "anthropic", "keys": [
        key(MASKED[0], {"last_hour": 0.9, "total": 0.45}, input_tokens=20_000, cache_read_tokens=9_000,
            cache_write_tokens=11_000, cold_cost=0.01265),
        key(MASKED[1], {"last_hour": None, "total": None})]}]
    s = scrape(Metrics(lambda: pools))
    at = {"provider": "anthropic", "key": MASKED[0]}
    assert [value(s, "rotator_key_prompt_tokens_total", **at, kind=kind)
            for kind in ("input_tokens", "cache_read_tokens", "cache_write_tokens")] == [20_000, 9_000, 11_000]
    assert value(s, "rotator_key_cache_cold_cost_usd_total", **at) == 0.01265
    assert value(s, "rotator_key_cache_read_ratio", **at, period="1h") == 0.9
    assert value(s, "rotator_key_cache_read_ratio", **at, period="all") == 0.45
    unused = {"provider": "anthropic", "key": MASKED[1]}
    assert value(s, "rotator_key_cache_read_ratio", **unused, period="all") is None  # no input: no share, not 0
    assert value(s, "rotator_key_prompt_tokens_total", **unused, kind="input_tokens") == 0


def test_free_text_reasons_and_unbounded_model_names_do_not_make_new_series_without_end():
    assert reason_kind("status 429 (quota)") == "status 429"
    assert reason_kind("ConnectError: [Errno 111] Connection refused to 10.0.0.7:443") == "connect error"
    assert reason_kind("stream ended before the first token (upstream ended)") == "ended before the first token"
    assert reason_kind("every key rate limited, for 27 s more") == "every key rate limited"
    assert reason_kind("bad request: messages.3.content: unknown block type 'x'") == "bad request"
    assert reason_kind("RemoteProtocolError: peer closed connection") == "upstream error"
    assert reason_kind("something new") == "other" and reason_kind(None) == "other"

    metrics = Metrics()
    for n in range(MAX_MODELS + 5):
        metrics.record({"provider": "openai", "model": f"client-model-{n}"})
    s = scrape(metrics)
    assert value(s, "rotator_requests_total", provider="openai", model="other", outcome="ok") == 5
    assert value(s, "rotator_requests_total", provider="openai", model="client-model-0", outcome="ok") == 1


def test_only_rotators_own_families_are_served():
    body, _ = Metrics().exposition()
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert names and all(name.startswith("rotator_") for name in names)  # a private registry: no process_* etc.
