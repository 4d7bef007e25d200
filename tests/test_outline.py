"""A large body read without building its long strings (protocols/outline.py) gives every reader what the whole
body's parse gives: the same members in the same order, each long string's length and ends, the same conversation
evidence; the members it splices go where the whole body has them, every other byte as it came. Shown on the agents'
captured requests (tests/fixtures/agents/, the fidelity suite's) with screenshots put in, and by property tests."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocols
from protocols import sse
from protocols.members import with_members
from protocols.outline import LONG_TEXT, LongText, outline, spliced_pieces
from rewrite.config import parse
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.intake.big_json import Upload, parse_body, read_body, rewritten_body, rewritten_upload
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support import samples
from tests.support.engine_harness import FakeResponder, Upstream, events_of
from tests.support.engine_harness import sse as sse_answer

AGENTS = Path(__file__).parent / "fixtures" / "agents"
FIXTURES = {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in sorted(AGENTS.glob("*/*.json"))}
SCREENSHOT = base64.b64encode(random.Random(7).randbytes(LONG_TEXT)).decode()  # (longer than LONG_TEXT as text)
PATHS = {"gemini": "/v1beta/models/gemini-2.5-pro:streamGenerateContent"}


def seen(value: object) -> object:
    """What a reader can read of `value`: a long string as its length and ends (all a LongText holds)."""
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return ("long", len(value), value[:48], value[-48:], isinstance(value, LongText))
    if isinstance(value, dict):
        return [(k, seen(v)) for k, v in value.items()]  # (in order)
    if isinstance(value, list):
        return [seen(v) for v in value]
    return value


def as_read(value: object) -> object:
    """`seen` of the whole body's parse as the outline gives it: every long string a LongText."""
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return ("long", len(value), value[:48], value[-48:], True)
    if isinstance(value, dict):
        return [(k, as_read(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [as_read(v) for v in value]
    return value


# Where agents send long strings: text, base64 media, a tool's output or arguments, instructions (not an id, a role
# or a name: a reader may write those whole into a mark, where a LongText would give its ends).
LONG_KEYS = {"text", "data", "content", "output", "arguments", "instructions", "image_url", "system", "input"}


def with_screenshots(body: dict, every: int) -> dict:
    """`body` with every `every`-th of its strings where agents send long ones (by their place in the text) grown
    past LONG_TEXT."""
    count = [0]

    def grown(value, key):
        if isinstance(value, str):
            if key not in LONG_KEYS:
                return value
            count[0] += 1
            return value + SCREENSHOT if count[0] % every == 0 else value
        if isinstance(value, dict):
            return {k: grown(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [grown(v, key) for v in value]
        return value

    return grown(body, "")


def texts(body: dict) -> list[bytes]:
    """The body as clients write it: compact, with spaces, indented, non-ASCII as it is."""
    return [json.dumps(body, separators=(",", ":")).encode(), json.dumps(body).encode(),
            json.dumps(body, indent=2, ensure_ascii=False).encode()]


@pytest.mark.parametrize("every", [1, 3, 7])
@pytest.mark.parametrize("name", FIXTURES)
def test_an_agents_request_with_screenshots_reads_as_its_whole_parse_with_the_same_evidence(name, every):
    fixture = FIXTURES[name]
    body = with_screenshots(fixture["body"], every)
    reader = protocols.registered(fixture["protocol"]).evidence
    headers = list(fixture["headers"].items())
    path = fixture["path"].partition("?")[0]
    for raw in texts(body):
        read = outline(raw)
        whole = sse.loads(raw)
        assert read is not None and read.skeletal is ("'long'" in repr(as_read(whole)))
        assert seen(read.body) == as_read(whole)
        assert reader.read(headers, read.body, path, size=len(raw)) == reader.read(headers, whole, path, size=len(raw))


@pytest.mark.parametrize("name", FIXTURES)
def test_a_forced_stream_is_spliced_where_the_whole_body_has_it_every_other_byte_as_it_came(name):
    body = with_screenshots(FIXTURES[name]["body"], 2)
    for order in ("first", "last"):
        rest = {k: v for k, v in body.items() if k != "stream"}
        ordered = {"stream": False, **rest} if order == "first" else {**rest, "stream": False}
        for raw in texts(ordered):
            read = outline(raw)
            assert read is not None and read.skeletal
            after = dict(read.body, stream=True)
            upload = rewritten_upload(Upload([raw]), read.body, after, read.places)
            assert upload is not None
            sent = b"".join(upload.pieces)
            assert sent == with_members(raw, {"stream": True}) and json.loads(sent) == dict(json.loads(raw), stream=True)
            assert any(isinstance(p, memoryview) and p.obj is raw for p in upload.pieces)  # (not a copy of the body)


def test_a_member_repeated_in_the_text_is_spliced_where_json_reads_it():
    long = "A" * (LONG_TEXT + 1)
    raw = json.dumps({"stream": True, "messages": [{"content": long}] * 300, "x": 1})[:-1].encode()
    raw += b', "stream": false}'  # (json.loads keeps this one)
    read = outline(raw)
    assert read is not None and read.body["stream"] is False
    pieces = spliced_pieces([raw], read.places({"stream"}), {"stream": True})
    assert json.loads(b"".join(pieces))["stream"] is True and b"".join(pieces).startswith(b'{"stream": true')


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False), st.text(max_size=8))
LONG_STRINGS = st.builds(lambda head, fill, tail: head + fill * (LONG_TEXT // len(fill) + 1) + tail,
                         st.text(max_size=60), st.sampled_from(["A", "é", '"\\', "\n\t", "ab/+", "0", "\U0001f600"]),
                         st.text(max_size=60))
VALUES = st.recursive(st.one_of(JSON_SCALARS, LONG_STRINGS),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                   max_size=4), max_leaves=12)
OBJECTS = st.dictionaries(st.text(max_size=8), VALUES, max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(OBJECTS, st.sampled_from([{}, {"indent": 1}, {"ensure_ascii": False}, {"separators": (",", ":")}]))
def test_any_object_reads_as_its_whole_parse_or_is_left_to_it(body, style):
    raw = json.dumps(body, **style).encode()
    read = outline(raw)
    whole, _ = parse_body(raw)
    if read is None:  # (the caller parses it whole)
        return
    assert seen(read.body) == as_read(whole)
    places = read.places(set(read.body))
    if places is not None:
        for name, (start, end) in places.items():
            assert json.loads(raw[start:end]) == whole[name]


@settings(max_examples=150, deadline=None)
@given(OBJECTS, st.integers(min_value=0), st.binary(min_size=1, max_size=3))
def test_a_broken_text_is_refused_or_left_to_the_whole_parse_never_read_otherwise(body, at, junk):
    raw = json.dumps(body).encode()
    at %= len(raw)
    broken = raw[:at] + junk + raw[at + 1 :]
    try:
        read = outline(broken)
    except (ValueError, RecursionError):
        return
    whole, _ = parse_body(broken)
    if read is not None and whole is not None:
        assert seen(read.body) == as_read(whole)
    # (a control character in a long string is not looked for: the whole parse refuses it when it is needed)
    assert read is None or whole is not None or any(b < 32 for b in junk)


def test_integers_past_64_bits_stay_exact_beside_screenshots():
    body = {"model": "m", "seed": 2**64, "messages": [{"content": [{"data": SCREENSHOT}]}], "x": [-(2**63) - 1]}
    read = outline(json.dumps(body).encode())
    assert read is not None and read.body["seed"] == 2**64 and read.body["x"] == [-(2**63) - 1]
    assert type(read.body["seed"]) is int


async def test_a_body_json_refuses_for_a_control_character_in_a_long_string_is_refused_when_it_must_be_rewritten():
    """Its reading does not look for one (the bytes go on as they came, and the vendor answers them); a request
    Rotator must rewrite (here: for another model) is parsed whole, refused in the protocol's error shape, and
    nothing goes upstream."""
    cfg = parse("providers: {openai: {base_url: 'http://vendor.test', keys: [k1]}}\n"
                "routes: [{models: [old-name], targets: [openai/new-name]}]")
    router = Router(cfg)
    route = router.route("api.openai.com", "POST", "/v1/chat/completions")
    raw = b'{"model": "old-name", "messages": [{"role": "user", "content": "%s\x01%s"}]}' % (
        b"x" * LONG_TEXT, b"y" * (1 << 20))
    parsed = read_body(raw)
    assert parsed is not None and parsed.skeletal and parse_body(raw) == (None, None)
    request = LoopbackRequest("POST", "/v1/chat/completions", [("content-type", "application/json")], raw)
    upstream = Upstream([lambda r: sse_answer(events_of(samples.CHAT_TEXT))])
    responder = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg.streaming, Job("job-1", route, route.provider), request, responder, router=router,
                       parsed=parsed).run()
    assert upstream.seen == [] and responder.status == 400
    assert json.loads(responder.body)["error"]["message"].endswith("the request body is not valid JSON")


def test_a_held_body_asked_as_a_stream_is_spliced_around_its_bytes_without_copying_them():
    """A body read without its long strings (a MiB and more), its `stream` member changed: the pieces around the
    new member are views of the client's bytes (no fresh MiB joined), and read as the body with it; nothing changed:
    the client's bytes themselves."""
    body = {"model": "m", "stream": False, "messages": [{"role": "user", "content": "x" * (1 << 20)}]}
    raw = json.dumps(body).encode()
    read = read_body(raw)
    assert read is not None and read.places is not None
    out = rewritten_body(raw, read.body, {**read.body, "stream": True}, read.places)
    assert isinstance(out, Upload) and json.loads(b"".join(out.pieces)) == {**body, "stream": True}
    assert [p.obj is raw for p in out.pieces if isinstance(p, memoryview)] == [True, True]
    assert rewritten_body(raw, read.body, dict(read.body), read.places) is raw
