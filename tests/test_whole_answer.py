"""A request whose client asked for its answer whole, answered in the flow itself (rewrite/intake/whole.py): which
requests the engine answers that way, the answer kept all of it, and the request as the loopback server would have
read it; a stream's body parsed once for both the question and its exchange (rewrite/engine.py)."""

from __future__ import annotations

import gzip
import json

import pytest

import rewrite.engine
from addons.interception import request_of
from rewrite.config import parse
from rewrite.engine import Engine
from rewrite.intake.big_json import Parsed, parse_body, read_body
from rewrite.intake.loopback import FLOW_BODY_HEAD, FLOW_BODY_TAIL
from rewrite.intake.loopback_request import BIG_BODY, LoopbackRequest
from rewrite.intake.whole import WholeAnswer
from tests.support.engine_harness import PATHS, FakeResponder

CHAT = PATHS["openai_chat"]


def engine() -> Engine:
    return Engine(parse("providers: {openai: {base_url: 'http://vendor.test', keys: [k1, k2]}, "
                        "gemini: {base_url: 'http://vendor.test', keys: [g1]}}"))


def asked(e: Engine, path: str, body: bytes, host: str = CHAT[0], headers=()) -> tuple[bool, LoopbackRequest]:
    route = e.router.route(host, "POST", path.partition("?")[0])
    assert route is not None
    job = e.submit("job-1", route)
    request = LoopbackRequest("POST", path, [("host", host), *headers], body)
    return e.answers_whole(job, request), request


def as_parsed(read: Parsed | None) -> tuple[dict | None, str | None] | None:
    """What a kept reading says of the body, as parse_body says it."""
    return None if read is None else (read.body, read.refusal)


def chat(**extra) -> bytes:
    return json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}).encode()


@pytest.mark.parametrize("body", [chat(), chat(stream=False)])
def test_a_call_that_asks_for_no_stream_is_answered_whole_and_its_parse_kept(body):
    whole, request = asked(engine(), CHAT[1], body)
    assert whole
    assert as_parsed(request.read) == parse_body(body)  # (the exchange reads it from there: not parsed again)


def test_a_stream_goes_through_the_loopback_server_with_its_parse_kept_for_it():
    e = engine()
    whole, _ = asked(e, CHAT[1], chat(stream=True))
    assert not whole
    sent, read = e.jobs["job-1"].intake.read
    assert (sent, as_parsed(read)) == (chat(stream=True), parse_body(chat(stream=True)))


def test_a_gemini_stream_is_told_by_its_path():
    body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode()
    host = PATHS["gemini"][0]
    assert asked(engine(), "/v1beta/models/gemini-2.5-pro:generateContent", body, host)[0]
    assert not asked(engine(), "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", body, host)[0]


def test_what_the_exchange_reads_for_itself_goes_through_the_loopback_server(monkeypatch):
    parsed = []
    monkeypatch.setattr(rewrite.engine, "read_body", lambda b, most=None: parsed.append(b) or read_body(b, most))
    encoded = gzip.compress(chat())
    assert not asked(engine(), CHAT[1], encoded, headers=[("content-encoding", "gzip")])[0]
    assert not asked(engine(), "/v1/models", b"")[0]  # (no protocol's path: forwarded as it is)
    assert parsed == []
    big = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "' + b"x" * BIG_BODY + b'"}]}'
    whole, request = asked(engine(), CHAT[1], big)  # (its long string found, not built: read here, and whole)
    assert whole and request.read is not None and request.read.skeletal
    assert not asked(engine(), CHAT[1], b"{not json")[0]  # (forwarded untouched, the vendor answers it)


@pytest.mark.asyncio
async def test_the_loopback_servers_request_takes_the_parse_only_of_the_same_bytes(monkeypatch):
    e = engine()
    seen = []

    async def serve(job, request, responder):
        seen.append(request.read)

    monkeypatch.setattr(e, "serve", serve)
    for sent, kept in ((chat(stream=True), True), (chat(stream=True, n=2), False)):
        assert not asked(e, CHAT[1], chat(stream=True))[0]
        await e.handle(LoopbackRequest("POST", CHAT[1], [("x-rotator-job", "job-1")], sent), FakeResponder())
        assert as_parsed(seen.pop()) == (parse_body(sent) if kept else None)  # (another addon changed the body: read anew)
        assert e.jobs["job-1"].intake.read is None
        e.jobs.clear()


def test_a_whole_answer_is_kept_all_of_it_past_what_a_flow_shows_of_a_stream():
    answer = WholeAnswer()
    answer.start(200, [("content-type", "application/json"), ("transfer-encoding", "chunked"),
                       ("content-length", "1"), ("x-bad", "a\r\nb")])
    pieces = [bytes([65 + i % 26]) * (1 << 20) for i in range((FLOW_BODY_HEAD + FLOW_BODY_TAIL) // (1 << 20) + 2)]
    for piece in pieces:
        answer.write(piece)
    answer.finish()
    assert answer.body() == b"".join(pieces)
    assert answer.fields() == [(b"content-type", b"application/json"),
                               (b"content-length", str(sum(map(len, pieces))).encode())]
    assert answer.committed and answer.finished and not answer.blocked


def test_the_request_reads_as_the_loopback_server_would_have_it():
    fields = ((b":Method-Like", b" x "), (b"Content-Type", b"application/json "), (b"Authorization", b"masked"))
    request = request_of("POST", "/v1/chat/completions?x=1", fields, "api.openai.com", b"{}")
    assert request.headers == [("host", "api.openai.com"), (":method-like", "x"),
                               ("content-type", "application/json"), ("authorization", "masked")]
    assert (request.method, request.target, request.body) == ("POST", "/v1/chat/completions?x=1", b"{}")
    with_host = request_of("POST", "/", ((b"Host", b"api.openai.com:443"),), "api.openai.com", b"")
    assert with_host.headers == [("host", "api.openai.com:443")]  # (an HTTP/1 client's own Host header stays)


def test_an_answer_the_engine_failed_or_never_gave_ends_as_a_502():
    failed, silent, given = WholeAnswer(), WholeAnswer(), WholeAnswer()
    failed.end(RuntimeError("boom"))
    silent.end(None)
    given.start(200, [("content-type", "application/json")])
    given.write(b"{}")
    given.end(RuntimeError("after the answer began"))  # (what was sent stands)
    assert (failed.status, failed.body(), failed.finished) == (502, b"rotator: internal error\n", True)
    assert (silent.status, silent.body(), silent.finished) == (502, b"", True)
    assert (given.status, given.body(), given.finished) == (200, b"{}", True)
