"""The decision trail (rewrite/plugins/trail.py): for every attempt of a pooled request, the keys that were candidates,
the one taken and why, and why each other one was passed over, on the flow (`rotator.trail`) and in the LLM view's
header; no key in full anywhere."""

from __future__ import annotations

import json

import httpx

from rewrite.config import StreamingConfig, parse
from rewrite.engine import Engine
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.inspection.views import Facts, render_request
from rewrite.intake.loopback import LoopbackRequest
from rewrite.plugins.trail import DecisionTrail
from rewrite.pool import mask
from rewrite.routing.router import Router
from tests.support import samples
from tests.support.engine_harness import PATHS, FakeResponder, Upstream, events_of, sse

KEYS = ["sk-alpha-0000000001", "sk-bravo-0000000002", "sk-charlie-000000003", "sk-delta-0000000004"]
BODY = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def ok(request: httpx.Request) -> httpx.Response:
    return sse(events_of(samples.CHAT_TEXT))


def limited(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, headers={"retry-after": "120"}, json={"error": {"message": "slow down"}})


async def test_each_attempt_says_which_key_was_taken_and_why_each_other_one_was_passed_over():
    cfg = parse("providers: {openai: {base_url: 'http://vendor.test', keys: ["
                + ", ".join(KEYS[:3]) + f", {{key: {KEYS[3]}, max_concurrent: 1}}]}}}}")
    route = Router(cfg).route("api.openai.com", "POST", PATHS["openai_chat"][1])
    pool = route.provider.pool
    assert pool is not None
    pool.rests.reject(KEYS[1], "rejected by the vendor (401/403)")
    held = pool.lease(KEYS[3], "gpt-4o")  # (another request's attempt holds it)
    upstream = Upstream([limited, ok])
    job, out = Job("job-0001", route, route.provider), FakeResponder()
    request = LoopbackRequest("POST", PATHS["openai_chat"][1], [("content-type", "application/json")],
                              json.dumps(BODY).encode())
    streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, streaming, job, request, out).run()
    held.release()
    assert out.status == 200

    first, second = job.records["trail"]
    assert first["candidates"] == [mask(k) for k in KEYS] and first["taken"] == mask(upstream.keys()[0])
    assert first["why"] == "the strategy's order (round-robin)" and first["outcome"] == "failed: status 429"
    reasons = {p["key"]: p["why"] for p in first["passed"]}
    assert reasons[mask(KEYS[1])] == "out: rejected by the vendor (401/403)"
    assert reasons[mask(KEYS[3])] == "at its max_concurrent (1)"
    # The second attempt passes the first key over: it rests after its 429, until when and why.
    assert second["taken"] == mask(upstream.keys()[1]) != first["taken"] and second["outcome"] == "served"
    resting = {p["key"]: p["why"] for p in second["passed"]}[first["taken"]]
    assert resting.startswith("resting until ") and "rate limited, status 429" in resting

    shown = render_request(Facts("openai_chat", PATHS["openai_chat"][1], request.body, rotator=job.records))
    assert f"took {first['taken']}: the strategy's order (round-robin) → failed: status 429" in shown
    assert f"passed over {mask(KEYS[1])}: out: rejected by the vendor (401/403)" in shown
    saved = json.dumps(job.records)
    assert not any(key in saved or key in shown for key in KEYS)  # masked, as everywhere


async def test_a_request_on_the_clients_own_credential_records_no_trail():
    cfg = parse("providers: {openai: {base_url: 'http://vendor.test'}}")
    route = Router(cfg).route("api.openai.com", "POST", PATHS["openai_chat"][1])
    job, out = Job("job-0001", route, route.provider), FakeResponder()
    request = LoopbackRequest("POST", PATHS["openai_chat"][1], [("content-type", "application/json")],
                              json.dumps(BODY).encode())
    streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    async with httpx.AsyncClient(transport=httpx.MockTransport(Upstream([ok]))) as client:
        await Exchange(client, streaming, job, request, out).run()
    assert out.status == 200 and "trail" not in job.records


def test_only_a_pool_of_several_keys_engages_the_trail():
    """A pool of one key has no choice to explain: with no pool of several configured, the trail is never engaged;
    a reload that adds a key to a pool engages it again."""
    one = parse(f"providers: {{openai: {{base_url: 'http://vendor.test', keys: [{KEYS[0]}]}}}}")
    two = parse(f"providers: {{openai: {{base_url: 'http://vendor.test', keys: [{KEYS[0]}, {KEYS[1]}]}}}}")
    engine = Engine(one)
    trail = next(p for p in engine.plugins if isinstance(p, DecisionTrail))
    assert not trail.active
    engine.configure(two)
    assert trail.active
    engine.configure(one)
    assert not trail.active
