"""Large request bodies: parsed in the worker process into a skeleton, sent on as the pieces they came in."""

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

import protocols
from protocols import sse as sse_json
from protocols.openai_chat.stream import OpenAIChat
from protocols.outline import LongText
from rewrite.config import parse
from rewrite.engine import READ_HERE, Engine
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.intake.big_json import (
    LONG_TEXT,
    TOO_DEEP,
    WALKED_FROM,
    EvidenceAsk,
    Parsed,
    Upload,
    Worker,
    added_keys,
    parse_body,
    skeleton,
    with_keys_in_front,
)
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.intake.shared_body import SIZE as SHARED_SIZE
from rewrite.plugins.steps import MAX_BODY
from rewrite.routing.router import Router
from tests.support import samples
from tests.support.engine_harness import FakeResponder, Upstream, events_of, sse

BODY = {"model": "m", "temperature": 0.5, "messages": [{"role": "user", "content": "x" * (LONG_TEXT + 1)},
                                                        {"role": "user", "content": "short"}]}


def upload_of(body, piece: int = 1000) -> Upload:
    raw = json.dumps(body).encode()
    return Upload([raw[i:i + piece] for i in range(0, len(raw), piece)])


class Watched(Upload):
    """An upload that says when half of it was handed to the worker."""

    def __init__(self, pieces: list[bytes]) -> None:
        super().__init__(pieces)
        self.half = asyncio.Event()

    async def __aiter__(self):
        sent = 0
        async for piece in Upload.__aiter__(self):
            sent += 1
            if sent == len(self.pieces) // 2:
                self.half.set()
            yield piece


def test_a_skeleton_stands_in_for_long_strings_only():
    shape, skeletal = skeleton(BODY)
    assert skeletal
    long, short = shape["messages"]
    assert isinstance(long["content"], LongText) and long["content"].size == LONG_TEXT + 1
    assert short is BODY["messages"][1]  # (what has no long string is not copied)
    assert {k: v for k, v in shape.items() if k != "messages"} == {"model": "m", "temperature": 0.5}
    assert skeleton({"model": "m"}) == ({"model": "m"}, False)


@pytest.mark.parametrize("image", [0, WALKED_FROM])
@pytest.mark.parametrize("number", [2**64 - 1, 2**64, -(2**63) - 1, 10**40, -(10**40)])
def test_a_body_keeps_its_integers_past_64_bits_exact(number, image, monkeypatch):
    """Small or large (a screenshot's base64 in it), whichever way it is checked for them."""
    searched: list = []
    monkeypatch.setattr(sse_json, "holds_long_number", lambda data, search=sse_json.holds_long_number: (
        searched.append(len(data)), search(data))[1])
    content = [{"type": "image", "source": {"type": "base64", "data": "iVBOR0w1" * (image // 8)}}] if image else "x"
    body = {"model": "m", "seed": number, "messages": [{"role": "user", "content": content}], "x": [1.5, number]}
    parsed, refusal = parse_body(json.dumps(body).encode())
    assert (parsed, refusal) == (body, None) and type(parsed["seed"]) is int
    # (the text is searched below WALKED_FROM; a larger body is walked: its base64's digits make the search dear)
    assert bool(searched) is not bool(image)


async def test_the_worker_gives_the_skeleton_and_the_refusals_of_a_body():
    worker = Worker()
    try:
        parsed = await worker.parse(upload_of(BODY))
        assert parsed.skeletal and parsed.refusal is None
        assert parsed.body["model"] == "m" and parsed.body["messages"][0]["content"].size == LONG_TEXT + 1
        for depth in (1000, 100_000):  # (too deep to walk; too deep to parse)
            deep = Upload([b'{"a": ' + b"[" * depth + b"]" * depth + b"}"])
            assert (await worker.parse(deep)).refusal == TOO_DEEP
        not_an_object = await worker.parse(Upload([b"[1, 2]"]))
        assert not_an_object.body is None and not_an_object.refusal is None
        assert (await worker.parse(Upload([b"{nope"]))).body is None
    finally:
        await worker.aclose()


async def test_the_worker_reads_the_conversation_evidence_of_the_whole_body_when_asked():
    headers = (("x-claude-code-session-id", "s1"),)
    body = {"model": "claude-opus-4-8", "max_tokens": 10, "system": "S" * (LONG_TEXT + 1), "messages": [
        {"role": "user", "content": "a" * (LONG_TEXT + 5)}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": [{"type": "text", "text": "c" * (LONG_TEXT + 9), "cache_control": {"type": "ephemeral"}}]}]}
    on_the_loop = protocols.registered("anthropic_messages").evidence.read(
        headers, body, "/v1/messages", size=len(json.dumps(body).encode()))
    worker = Worker()
    try:
        parsed = await worker.parse(upload_of(body), EvidenceAsk("anthropic_messages", headers, "/v1/messages"))
        assert parsed.skeletal and parsed.evidence == on_the_loop  # (read before the skeleton dropped the texts)
        assert parsed.evidence.session.value == "s1" and parsed.evidence.messages == 3
        assert on_the_loop == protocols.registered("anthropic_messages").evidence.read(
            headers, parsed.body, "/v1/messages", size=len(json.dumps(body).encode()))  # (its long texts' marks)
        assert (await worker.parse(upload_of(body))).evidence is None  # not asked
        assert (await worker.parse(upload_of(body), EvidenceAsk("no-such-protocol", ()))).evidence is None
    finally:
        await worker.aclose()


async def test_a_worker_that_died_is_started_again_and_one_that_cannot_answer_gives_none(monkeypatch):
    worker = Worker()
    try:
        await worker.parse(upload_of({"a": 1}))
        worker._proc.kill()
        await worker._proc.wait()
        assert (await worker.parse(upload_of({"b": 2}))).body == {"b": 2}
        monkeypatch.setattr("rewrite.intake.big_json.sys.executable", "/nonexistent/python")
        await worker.aclose()
        assert await worker.parse(upload_of({"c": 3})) is None
    finally:
        await worker.aclose()


async def test_an_upload_gives_its_pieces_on_every_pass():
    upload = Upload([b"ab", b"c", b"def"])
    assert upload.size == 6
    for _ in range(2):
        assert [p async for p in upload] == [b"ab", b"c", b"def"]


@pytest.mark.parametrize("body", [BODY, {}, {"model": "m", "stream_options": {"x": 1}}])
def test_keys_put_in_front_give_the_body_as_stream_would(body):
    streamed = OpenAIChat().as_stream("", "", body)[2]
    added = added_keys(body, streamed)
    if "stream_options" in body:  # (changed, not added: the body must be written anew)
        assert added is None and with_keys_in_front(upload_of(body), added) is None
        return
    sent = with_keys_in_front(upload_of(body), added)
    assert json.loads(b"".join(sent.pieces)) == streamed
    assert sent.size == len(b"".join(sent.pieces))


def test_no_keys_to_add_keeps_the_upload_and_a_body_that_is_no_object_has_none_put_in_front():
    upload = upload_of(BODY)
    assert with_keys_in_front(upload, {}) is upload
    assert with_keys_in_front(Upload([b"[1]"]), {"stream": True}) is None


async def test_a_parse_does_not_hold_the_event_loop():
    """The loop keeps turning while the worker parses: between two turns of a ticker, the loop's thread spends
    little CPU. Measured in that thread's CPU time, not on the wall clock, which other processes' load stretches."""
    worker = Worker()
    await worker.parse(upload_of({"warm": 1}))  # (the worker started)
    big = upload_of({"model": "m", "messages": [{"content": "x" * (40 << 20)}]}, piece=1 << 16)
    gaps = []

    async def tick():
        last = time.thread_time()
        while True:
            await asyncio.sleep(0)  # (every other ready task runs before the ticker's next turn)
            now = time.thread_time()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # (the ticker has its first turn: a hold from the parse's very start is seen)
    try:
        parsed = await worker.parse(big)
    finally:
        ticker.cancel()
        await worker.aclose()
    assert parsed.skeletal and len(gaps) > 5
    assert max(gaps) < 0.02, f"the loop was held for {max(gaps):.3f} s of CPU"


async def test_a_body_up_to_the_shared_size_reaches_the_worker_in_memory_and_a_larger_one_through_the_pipe():
    """Each parsed whole, in any order: a smaller body after a larger one is read to its own end only."""
    worker = Worker()
    try:
        bodies = [{"n": 1, "x": "x" * (SHARED_SIZE - 100)}, {"n": 2, "x": "y" * SHARED_SIZE}, {"n": 3, "x": "z"}]
        for body in [*bodies, bodies[0]]:
            upload = Watched(upload_of(body, piece=1 << 20).pieces)
            parsed = await worker.parse(upload)
            x = parsed.body["x"]
            assert parsed.body["n"] == body["n"] and (x.size if isinstance(x, LongText) else x) == (
                len(body["x"]) if len(body["x"]) > LONG_TEXT else body["x"])
            assert upload.half.is_set() == (upload.size > SHARED_SIZE)  # (the pipe iterates the pieces)
    finally:
        await worker.aclose()


async def test_a_parse_cancelled_midway_leaves_no_answer_for_the_next_one():
    """Cancelled while a body larger than the shared memory goes through the pipe."""
    worker = Worker()
    try:
        upload = Watched(upload_of({"n": 1, "x": "x" * SHARED_SIZE}, piece=1 << 16).pieces)
        first = asyncio.create_task(worker.parse(upload))
        await upload.half.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await asyncio.wait_for(worker.parse(upload_of({"n": 2})), 10)).body == {"n": 2}
    finally:
        await worker.aclose()


async def exchange_upload(body: dict, config: str = "") -> tuple[list[httpx.Request], FakeResponder, Job]:
    """One non-stream Chat request whose body arrived as an Upload and was parsed into its skeleton."""
    cfg = parse("providers: {openai: {base_url: 'http://vendor.test', keys: [k1]}}\n" + config)
    router = Router(cfg)
    route = router.route("api.openai.com", "POST", "/v1/chat/completions")
    upload = upload_of(body)
    request = LoopbackRequest("POST", "/v1/chat/completions", [("content-type", "application/json")], b"",
                              upload=upload)
    shape, skeletal = skeleton(body)
    upstream = Upstream([lambda r: sse(events_of(samples.CHAT_TEXT))])
    responder = FakeResponder()
    job = Job("job-1", route, route.provider)
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg.streaming, job, request, responder, router=router,
                       parsed=Parsed(shape, None, skeletal)).run()
    return upstream.seen, responder, job


@pytest.mark.parametrize("stream_key", [{}, {"stream": False}], ids=["no stream key", "stream false"])
async def test_a_large_body_goes_upstream_whole_as_the_stream_rotator_asks_for(stream_key):
    """Keys the body lacks are put in front of its bytes; one it has is changed where it stands."""
    body = {**BODY, **stream_key}
    [sent], responder, job = await exchange_upload(body)
    assert responder.status == 200
    assert json.loads(sent.content) == OpenAIChat().as_stream("", "", body)[2]  # (stream: true, with the usage)
    assert int(sent.headers["content-length"]) == len(sent.content)
    [shown] = [step["request"] for step in job.records["steps"]]  # (what the flow's view shows of it)
    assert shown["size"] == len(sent.content) and shown["body"].encode() == sent.content[:MAX_BODY]


async def test_a_large_body_for_another_model_is_parsed_whole_and_sent_with_it():
    body = {**BODY, "model": "old-name"}
    [sent], _, _ = await exchange_upload(body, "routes: [{models: [old-name], targets: [openai/new-name]}]")
    assert {**json.loads(sent.content), "stream": False, "stream_options": None} == {
        **BODY, "model": "new-name", "stream": False, "stream_options": None}


async def test_a_large_gemini_json_array_stream_goes_upstream_as_it_came():
    """A streamGenerateContent call without alt=sse is forwarded as it comes (no protocol is kept for it): its
    large body, parsed into a skeleton, is sent on untouched and the vendor's JSON-array answer comes back."""
    cfg = parse("providers: {gemini: {base_url: 'http://vendor.test', keys: [k1]}}")
    router = Router(cfg)
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    route = router.route("generativelanguage.googleapis.com", "POST", path)
    body = {"contents": [{"role": "user", "parts": [{"text": "x" * (LONG_TEXT + 1)}]}]}
    upload = upload_of(body)
    request = LoopbackRequest("POST", path, [("content-type", "application/json")], b"", upload=upload)
    shape, skeletal = skeleton(body)
    answer = b'[{"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}]'
    upstream = Upstream([lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=answer)])
    responder = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg.streaming, Job("job-1", route, route.provider), request, responder, router=router,
                       parsed=Parsed(shape, None, skeletal)).run()
    [sent] = upstream.seen
    assert sent.content == b"".join(upload.pieces) and sent.headers["x-goog-api-key"] == "k1"
    assert responder.status == 200 and responder.body == answer


async def test_a_large_body_that_says_stream_false_goes_upstream_as_it_came_with_only_the_stream_members_changed(
        monkeypatch):
    """Not parsed whole on the event loop: the members are spliced into its bytes."""
    parsed_whole = []
    monkeypatch.setattr("rewrite.exchange.request.parse_body", lambda data: parsed_whole.append(data) or (None, None))
    body = {"stream": False, **BODY}
    raw = json.dumps(body).encode()
    [sent], responder, _ = await exchange_upload(body)
    assert parsed_whole == []
    assert responder.status == 200
    asked = b'{"stream_options":{"include_usage":true},'
    assert sent.content == asked + raw[1:].replace(b'"stream": false', b'"stream": true', 1)


def test_the_worker_starts_in_the_checkout_it_belongs_to():
    """It imports `rewrite` from its working directory first: the checkout's root, not an installed copy of
    another checkout's (a second clone or a worktree with the same environment)."""
    from rewrite.intake import big_json
    assert (big_json._ROOT / "rewrite" / "intake" / "big_json.py").resolve() == Path(big_json.__file__).resolve()


async def test_a_worker_started_ahead_is_the_one_the_first_parse_uses_and_is_started_once():
    worker = Worker()
    try:
        worker.start()
        worker.start()  # (already on its way: not a second process)
        started = worker._starting
        assert started is not None
        proc = await asyncio.wait_for(asyncio.shield(started), 30)
        worker.start()  # (running: nothing to do)
        assert worker._starting is None
        assert (await worker.parse(upload_of(BODY))).body["temperature"] == 0.5
        assert worker._proc is proc and proc.returncode is None
    finally:
        await worker.aclose()


async def test_a_start_ahead_that_fails_leaves_the_next_parse_to_the_loop(monkeypatch, caplog):
    monkeypatch.setattr("rewrite.intake.big_json.sys.executable", "/nonexistent/python")
    worker = Worker()
    try:
        worker.start()
        with pytest.raises(OSError):
            await asyncio.shield(worker._starting)
        assert await worker.parse(upload_of({"c": 3})) is None
    finally:
        await worker.aclose()
    assert "never retrieved" not in caplog.text


@pytest.mark.parametrize(("body", "length", "started"), [(None, str(READ_HERE + 1), True), (None, str(READ_HERE), False),
                                                         (b"x" * (1 << 20), str(1 << 20), False)])
async def test_a_body_on_its_way_too_large_to_be_read_here_starts_the_parsing_worker_ahead(body, length, started):
    """The worker's start is about half a second of imports: the first body that needs it (past READ_HERE) does not
    wait for it when its headers came (None: its body is streamed); a smaller one is read here and may never need
    it (an agent's screenshots), so nothing is started for it."""
    engine = Engine(parse("providers:\n  openai: {keys: [sk-a-1234567890]}\n"))
    try:
        route = engine.router.route("api.openai.com", "POST", "/v1/chat/completions")
        engine.arrive(engine.submit("job-0001", route), "/v1/chat/completions", body, length)
        assert (engine.parser._starting is not None) is started
    finally:
        await engine.aclose()


def test_a_worker_closed_as_mitmproxy_shuts_down_leaves_nothing_to_fail_after_its_event_loop_closed(monkeypatch):
    """mitmproxy's `done` closes the worker without waiting for it, then closes its event loop: the process's pipes,
    collected after that, would print 'Exception ignored ... Event loop is closed' as the proxy exits."""
    import gc

    failures: list = []
    monkeypatch.setattr("sys.unraisablehook", failures.append)
    loop = asyncio.new_event_loop()
    try:
        worker = Worker()
        assert loop.run_until_complete(worker.parse(upload_of(BODY))).body["temperature"] == 0.5
        worker.close()  # (as addons/interception.py's `done`)
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    del worker
    gc.collect()
    assert [str(f.exc_value) for f in failures] == []
