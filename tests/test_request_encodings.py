"""Request bodies a client sent content-encoded (Codex compresses its ChatGPT-mode bodies with zstd;
rewrite/intake/encoded.py): read by the engine, sent on as they came while nothing rewrites them, encoded again the
way they came when something does, and forwarded untouched when they do not decode."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
import zstandard

from rewrite.config import parse
from rewrite.config_settings import LimitsConfig, StreamingConfig
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.exchange.request import encoding_of
from rewrite.intake.encoded import decode, encode
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support import samples
from tests.support.engine_harness import FakeResponder, Upstream, events_of, sse

BODY = {"model": "gpt-5.5", "input": "hi", "stream": True, "metadata": {"note": "drop me"}}


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


@pytest.mark.parametrize("encoding", ["zstd", "gzip", "deflate"])
def test_a_body_decodes_as_it_was_encoded(encoding):
    data = json.dumps(BODY).encode() * 50
    assert decode(encode(data, encoding), encoding, len(data)) == data


@pytest.mark.parametrize("encoding", ["zstd", "gzip"])
def test_a_body_decoding_past_the_limit_is_not_decoded(encoding):
    """A few compressed bytes must not become any amount of memory."""
    bomb = encode(b"\0" * (8 << 20), encoding)
    assert len(bomb) < 64 << 10
    assert decode(bomb, encoding, 1 << 20) is None


def test_what_does_not_decode_or_is_unknown_is_not_decoded():
    assert decode(b"not zstd at all", "zstd", 1000) is None
    assert decode(gzip.compress(b"{}")[:-4], "gzip", 1000) is None  # (cut short)
    assert decode(b"{}", "br", 1000) is None
    assert encoding_of([("Content-Encoding", " ZSTD ")]) == "zstd"
    assert encoding_of([("content-encoding", "identity")]) is None and encoding_of([]) is None


async def exchange(raw: bytes, encoding: str, upstream: Upstream, extra: str = "", max_body: int = 64 << 20,
                   more: str = "}"):
    cfg = parse(f"providers: {{openai: {{base_url: 'http://vendor.test/v1', keys: [k1, k2]{extra}}}{more}")
    cfg.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    router = Router(cfg)
    route = router.route("api.openai.com", "POST", "/v1/responses")
    request = LoopbackRequest("POST", "/v1/responses", [("content-type", "application/json"),
                                                        ("content-encoding", encoding),
                                                        ("authorization", "Bearer client")], raw)
    job, responder = Job("job-0001", route, route.provider), FakeResponder()
    limits = LimitsConfig(max_request_body=max_body)
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg.streaming, job, request, responder, router=router, limits=limits).run()
    return responder, job


async def test_an_untouched_body_goes_on_as_it_came_and_is_read():
    raw = zstd(json.dumps(BODY).encode())
    up = Upstream([lambda r: sse(events_of(samples.RESPONSES_TEXT))])
    out, job = await exchange(raw, "zstd", up)
    [sent] = up.seen
    assert sent.content == raw and sent.headers["content-encoding"] == "zstd"
    assert out.body == samples.RESPONSES_TEXT
    assert job.model == "gpt-5.5" and "usage" in job.records  # (the body was read: its model, its usage meter)


async def test_a_body_the_engine_rewrites_goes_encoded_again_the_way_it_came():
    raw = zstd(json.dumps(BODY).encode())
    up = Upstream([lambda r: sse(events_of(samples.RESPONSES_TEXT))])
    await exchange(raw, "zstd", up, extra=", adapters: [{drop: [metadata]}]")
    [sent] = up.seen
    assert sent.headers["content-encoding"] == "zstd"
    assert json.loads(unzstd(sent.content)) == {k: v for k, v in BODY.items() if k != "metadata"}


async def test_another_target_of_a_route_gets_the_body_plain():
    raw = zstd(json.dumps(BODY).encode())
    up = Upstream([lambda r: sse(events_of(samples.RESPONSES_TEXT))])
    other = (", other: {kind: openai, protocol: responses, base_url: 'http://other.test/v1', keys: [o1]}}\n"
             "routes: [{models: [gpt-5.5], targets: [other]}]")
    await exchange(raw, "zstd", up, more=other)
    [sent] = up.seen
    assert sent.url.host == "other.test" and "content-encoding" not in sent.headers
    assert json.loads(sent.content) == BODY


@pytest.mark.parametrize(("raw", "limit"), [(b"\x28\xb5\x2f\xfdgarbage", 64 << 20),
                                            (zstd(json.dumps(BODY).encode()), 16)])
async def test_a_body_that_does_not_decode_is_forwarded_untouched(raw, limit):
    up = Upstream([lambda r: httpx.Response(400, json={"error": {"message": "could not parse"}})])
    out, job = await exchange(raw, "zstd", up, max_body=limit)
    [sent] = up.seen
    assert sent.content == raw and sent.headers["content-encoding"] == "zstd"
    assert out.status == 400  # the vendor's answer, never a traceback
    assert job.route.protocol is not None and job.model in (None, "")
