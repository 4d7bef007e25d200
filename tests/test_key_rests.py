"""Keys at rest, seen from the engine: several requests through one provider's pool against a scripted upstream.

Every key benched beyond what a request may wait is answered in the protocol's shape (401 when every key was
rejected, 429 with retry-after when they are rate limited) without an upstream call; a key that stalls rests
while another key is ready; a key that cannot go into a request is passed over, not a crash.
"""

from __future__ import annotations

import json

import httpx
import pytest

from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.exchange.websocket import SocketJob, open_upstream
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.lifecycle.setting import Setting
from rewrite.pool import KeyPool
from rewrite.routing.router import Route, Router
from rewrite.upstream import client as upstream_client
from tests.support import samples
from tests.support.engine_harness import PATHS, FakeResponder, Upstream, events_of, sse, stall_before_headers

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

BODIES = {
    "openai_chat": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    "openai_responses": {"model": "m", "input": "hi", "stream": True},
    "anthropic_messages": {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}],
                           "stream": True},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}
PROVIDER = {"openai_chat": "openai", "openai_responses": "openai", "anthropic_messages": "anthropic",
            "gemini": "gemini"}


def pool_route(protocol: str, keys: list[str], **streaming) -> tuple[Route, StreamingConfig]:
    cfg = parse(f"providers: {{{PROVIDER[protocol]}: {{base_url: 'http://vendor.test', keys: [{', '.join(keys)}]}}}}")
    host, path = PATHS[protocol]
    route = Router(cfg).route(host, "POST", path)
    return route, StreamingConfig(**{"first_token_timeout": 5, "heartbeat_interval": 30, **streaming})


async def send(route: Route, cfg: StreamingConfig, upstream: Upstream, protocol: str = "openai_chat"):
    path = PATHS[protocol][1] + ("?alt=sse" if protocol == "gemini" else "")
    request = LoopbackRequest("POST", path, [("content-type", "application/json"), ("x-custom", "kept")],
                              json.dumps(BODIES[protocol]).encode())
    out, job = FakeResponder(), Job("job-0001", route, route.provider)
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg, job, request, out).run()
    return out, job


def ok(request: httpx.Request) -> httpx.Response:
    return sse(events_of(samples.CHAT_TEXT))


# ------------------------------------------------------------------------------------------------------------------
# Every key resting longer than a request may wait


@pytest.mark.parametrize("protocol", list(PROVIDER))
async def test_every_key_rejected_is_answered_401_in_the_protocols_shape_without_an_upstream_call(protocol):
    route, cfg = pool_route(protocol, ["k1", "k2"])
    up = Upstream([lambda r: httpx.Response(401, json={"error": {"message": "invalid key"}})])
    first, _ = await send(route, cfg, up, protocol)
    assert first.status == 401 and up.keys() == ["k1", "k2"]  # the vendor's own answer, once both were tried

    out, job = await send(route, cfg, up, protocol)

    assert len(up.seen) == 2  # no upstream call for a resting key
    assert out.status == 401
    assert ("content-type", "application/json") in out.headers
    error = json.loads(out.body)["error"]
    assert "rejected every key" in error["message"]
    assert job.key is None  # no key served it
    assert job.notes[-1]["kind"] == "failed"


@pytest.mark.parametrize("protocol", list(PROVIDER))
async def test_every_key_rate_limited_is_answered_429_with_the_soonest_return(protocol):
    route, cfg = pool_route(protocol, ["k1", "k2"])
    up = Upstream([lambda r: httpx.Response(429, headers={"retry-after": "90"}),
                   lambda r: httpx.Response(429, headers={"retry-after": "120"})])
    first, _ = await send(route, cfg, up, protocol)
    assert first.status == 429 and len(up.seen) == 2

    out, _ = await send(route, cfg, up, protocol)

    assert len(up.seen) == 2
    assert out.status == 429
    retry_after = dict(out.headers)["retry-after"]
    assert retry_after.isdigit() and 85 <= int(retry_after) <= 90  # k1's return, in whole seconds rounded up
    assert "rate limited" in json.loads(out.body)["error"]["message"]


async def test_rejected_and_rate_limited_keys_together_answer_429():
    route, cfg = pool_route("openai_chat", ["k1", "k2"])
    up = Upstream([lambda r: httpx.Response(403), lambda r: httpx.Response(429, headers={"retry-after": "300"})])
    await send(route, cfg, up)
    out, _ = await send(route, cfg, up)
    assert out.status == 429 and 295 <= int(dict(out.headers)["retry-after"]) <= 300
    assert len(up.seen) == 2


async def test_a_rest_within_the_engines_wait_is_waited_out_not_answered():
    route, cfg = pool_route("openai_chat", ["k1"])
    up = Upstream([lambda r: httpx.Response(429, headers={"retry-after": "0.2"}), ok])
    out, _ = await send(route, cfg, up)
    assert out.status == 200 and up.keys() == ["k1", "k1"]


# ------------------------------------------------------------------------------------------------------------------
# A key that stalls rests


async def test_a_stalling_key_rests_so_the_next_requests_do_not_pay_its_timeout():
    route, cfg = pool_route("openai_chat", ["stalling", "good"], first_token_timeout=0.2)

    async def by_key(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer stalling":
            return await stall_before_headers(10)(request)
        return ok(request)

    up = Upstream([by_key])
    for _ in range(4):
        out, _ = await send(route, cfg, up)
        assert out.status == 200
    assert up.keys() == ["stalling", "good", "good", "good", "good"]


async def test_a_connect_failure_rests_the_key_too():
    route, cfg = pool_route("openai_chat", ["unreachable", "good"])

    def by_key(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer unreachable":
            raise httpx.ConnectError("connection refused")
        return ok(request)

    up = Upstream([by_key])
    for _ in range(3):
        await send(route, cfg, up)
    assert up.keys() == ["unreachable", "good", "good", "good"]


async def test_a_resting_stalled_key_is_still_used_when_it_is_the_only_one():
    route, cfg = pool_route("openai_chat", ["only"], first_token_timeout=0.2)
    up = Upstream([stall_before_headers(10), ok])
    out, _ = await send(route, cfg, up)
    assert out.status == 200 and up.keys() == ["only", "only"]  # retried at once: a stall rest never makes it wait


# ------------------------------------------------------------------------------------------------------------------
# A key that cannot go into a request


@pytest.mark.parametrize("bad", ["abc\r\nx-injected: yes", "sk-zero\u200bwidth", "nul\0byte"])
async def test_a_key_that_cannot_be_sent_moves_on_to_the_next_key(bad):
    # (the config refuses such keys at load time: this is the safety net under it)
    route, cfg = pool_route("openai_chat", ["good"])
    route.provider.pool = KeyPool([bad, "good"])
    up = Upstream([ok])
    out, job = await send(route, cfg, up)
    assert out.status == 200
    assert up.keys() == ["good"]
    assert all("x-injected" not in r.headers for r in up.seen)
    assert "bad upstream request" in job.notes[0]["detail"] and bad not in job.notes[0]["detail"]


async def test_client_header_bytes_outside_ascii_go_upstream_as_sent():
    route, cfg = pool_route("openai_chat", ["k1"])
    up = Upstream([ok])
    request = LoopbackRequest("POST", PATHS["openai_chat"][1],
                              [("content-type", "application/json"), ("x-title", "caf\xc3\xa9")],
                              json.dumps(BODIES["openai_chat"]).encode())
    out = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(up)) as client:
        await Exchange(client, cfg, Job("job-0001", route, route.provider), request, out).run()
    assert out.status == 200
    assert (b"x-title", "café".encode()) in up.seen[0].headers.raw  # the client's UTF-8 bytes, unchanged


@pytest.mark.parametrize("rejected, status", [(True, 401), (False, 429)])
async def test_a_websocket_handshake_when_every_key_rests_gets_the_same_answer(rejected, status):
    route, cfg = pool_route("openai_responses", ["k1", "k2"])
    for key in ("k1", "k2"):
        route.provider.pool.rests.bench(key, 600, rejected=rejected)
    sj = SocketJob(Job("job-0001", Route(route.provider, None), route.provider), [("authorization", "Bearer client")], "/v1/realtime")

    failure = await open_upstream(sj, cfg, upstream_client.Upstream(), Setting())

    assert failure.status == status and json.loads(failure.body)["error"]["message"].startswith("Rotator: ")
    assert sj.job.key is None and sj.upstream is None
