"""Upstream bodies that break in ways other than a reset: undecodable content-encoding, a line that never ends.

Each is a cut: before the first token the attempt is retried on the next key, after it the client gets the
protocol's truncated ending. Never a clean end with no ending, never `502 rotator: internal error`.
"""

import json
import zlib

import httpx
import pytest
import zstandard

from protocols.sse import MAX_BLOCK
from tests.support import samples
from tests.support.engine_harness import Stream, Upstream, events_of, run, sse
from tests.support.engine_streams import TEXT, assert_truncated, content_prefix, first_token_index, kinds

# The mock variant on virtual time; the lean one on real time: its upstream is a real socket
# (tests/support/virtual_time.py).
pytestmark = [pytest.mark.usefixtures("each_transport"), pytest.mark.virtual_time]
ALL = list(TEXT)
GARBAGE = b"\xff" * 16  # after a flushed deflate block: a block header with the invalid type 3


def gzip_pieces(events: list[bytes]) -> list[bytes]:
    """A gzip stream flushed after every event, as a compressing server streams SSE."""
    z = zlib.compressobj(wbits=31)
    return [z.compress(e) + z.flush(zlib.Z_SYNC_FLUSH) for e in events]


def encoded(pieces: list[bytes], encoding: str, status: int = 200, ctype: str = "text/event-stream") -> httpx.Response:
    headers = {"content-type": ctype, "content-encoding": encoding}
    return httpx.Response(status, headers=headers, stream=Stream(pieces))


def good(protocol: str):
    return lambda r: sse(events_of(TEXT[protocol]))


@pytest.mark.parametrize("protocol", ALL)
async def test_corrupt_gzip_after_the_first_token_ends_truncated(protocol):
    prefix = content_prefix(protocol, TEXT[protocol], extra=2)
    up = Upstream([lambda r: encoded([*gzip_pieces(prefix), GARBAGE], "gzip")])
    out, job = await run(protocol, up)
    assert len(up.seen) == 1 and out.status == 200
    assert out.body.startswith(b"".join(prefix))
    assert_truncated(protocol, out.body[len(b"".join(prefix)):])
    assert kinds(job) == ["repaired"] and "DecodingError" in job.notes[0]["cause"]


@pytest.mark.parametrize("protocol", ALL)
async def test_corrupt_gzip_before_the_first_token_is_retried_on_the_next_key(protocol):
    pre = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    up = Upstream([lambda r: encoded([*gzip_pieces(pre), GARBAGE], "gzip"), good(protocol)])
    out, job = await run(protocol, up)
    assert up.keys() == ["k1", "k2"]
    assert out.status == 200 and out.body == b"".join(events_of(TEXT[protocol]))
    assert kinds(job) == ["retry"] and "DecodingError" in job.notes[0]["reason"]


@pytest.mark.parametrize("protocol", ["openai_chat", "anthropic_messages"])
async def test_a_cleanly_cut_zstd_stream_ends_truncated(protocol):
    events = content_prefix(protocol, TEXT[protocol], extra=2)
    prefix = b"".join(events)
    z = zstandard.ZstdCompressor().compressobj()
    pieces = [z.compress(e) + z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK) for e in events]
    up = Upstream([lambda r: encoded(pieces, "zstd")])  # the body ends cleanly, the zstd frame never does
    out, job = await run(protocol, up)
    assert out.body.startswith(prefix)
    assert_truncated(protocol, out.body[len(prefix):])
    assert kinds(job) == ["repaired"]


def endless_line(head: list[bytes], piece: int = 1 << 16):
    """The events in `head`, then one `data:` line that grows past the SSE block cap and never ends."""
    pieces = [*head, b"data: "] + [b"x" * piece] * (MAX_BLOCK // piece + 2)
    return lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                    stream=Stream(pieces, then="stall"))


@pytest.mark.parametrize("protocol", ["openai_chat", "gemini"])
async def test_a_line_that_never_ends_after_the_first_token_ends_truncated(protocol):
    prefix = content_prefix(protocol, TEXT[protocol], extra=2)
    up = Upstream([endless_line(prefix)])
    out, job = await run(protocol, up, idle_timeout=30)
    assert out.body.startswith(b"".join(prefix)) and len(out.body) < 100_000
    assert_truncated(protocol, out.body[len(b"".join(prefix)):])
    assert kinds(job) == ["repaired"] and str(MAX_BLOCK) in job.notes[0]["cause"]


async def test_a_line_that_never_ends_before_the_first_token_is_retried():
    up = Upstream([endless_line([]), good("anthropic_messages")])
    out, job = await run("anthropic_messages", up, first_token_timeout=30)
    assert up.keys() == ["k1", "k2"] and out.body == b"".join(events_of(TEXT["anthropic_messages"]))


async def test_a_corrupt_non_stream_body_is_retried_before_any_byte_reaches_the_client():
    answer = json.dumps({"id": "chatcmpl-2", "choices": []}).encode()
    up = Upstream([lambda r: encoded([gzip_pieces([b""])[0], GARBAGE], "gzip", ctype="application/json"),
                   lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=answer)])
    out, job = await run("openai_chat", up, stream=False)
    assert up.keys() == ["k1", "k2"]
    assert out.status == 200 and out.body == answer


async def test_a_non_stream_body_that_breaks_after_its_first_bytes_is_noted_as_cut():
    pieces = gzip_pieces([b'{"id": "chatcmpl-1", ', b'"choices": []}'])
    pieces[1] = GARBAGE
    up = Upstream([lambda r: encoded(pieces, "gzip", ctype="application/json")])
    out, job = await run("openai_chat", up, stream=False)
    assert len(up.seen) == 1
    assert out.status == 200 and out.body == b'{"id": "chatcmpl-1", '
    assert kinds(job) == ["cut"]


async def test_an_error_answer_with_a_corrupt_body_is_still_retried():
    up = Upstream([lambda r: encoded([GARBAGE], "gzip", status=429, ctype="application/json"), good("openai_chat")])
    out, job = await run("openai_chat", up)
    assert up.keys() == ["k1", "k2"] and out.status == 200
    assert out.body == b"".join(events_of(samples.CHAT_TEXT))


@pytest.mark.parametrize("protocol", ALL)
async def test_a_forced_stream_that_does_not_decode_before_the_first_token_is_retried(protocol):
    pre = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    up = Upstream([lambda r: encoded([*gzip_pieces(pre), GARBAGE], "gzip"), good(protocol)])
    out, job = await run(protocol, up, stream=False, provider_extra=", force_upstream_stream: true")
    assert up.keys() == ["k1", "k2"] and out.status == 200
    assert json.loads(out.body) and "retry" in kinds(job)


# Events that are valid JSON of the wrong shape (a list where an object belongs): the repairer cannot follow them,
# so they are a cut like any other broken body, never an engine failure with a stream that just stops.
WRONG_SHAPE = {
    "openai_chat": b'data: {"id":"chatcmpl-9","choices":["not an object"]}\n\n',
    "openai_responses": b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
                        b'"output_index":0,"content_index":0,"delta":["not a string"]}\n\n',
    "anthropic_messages": b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
                          b'"content_block":["not an object"]}\n\n',
    "gemini": b'data: {"candidates":["not an object"]}\n\n',
}


@pytest.mark.parametrize("protocol", ALL)
async def test_a_wrongly_shaped_event_after_the_first_token_ends_truncated(protocol):
    prefix = content_prefix(protocol, TEXT[protocol], extra=2)
    up = Upstream([lambda r: sse([*prefix, WRONG_SHAPE[protocol], *events_of(TEXT[protocol])[len(prefix):]])])
    out, job = await run(protocol, up)
    assert out.status == 200 and out.body.startswith(b"".join(prefix))
    assert_truncated(protocol, out.body[len(b"".join(prefix)):])
    assert kinds(job) == ["repaired"] and "not understood" in job.notes[0]["cause"]


@pytest.mark.parametrize("protocol", ALL)
async def test_a_wrongly_shaped_event_before_the_first_token_is_retried_on_the_next_key(protocol):
    pre = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    up = Upstream([lambda r: sse([*pre, WRONG_SHAPE[protocol]]), good(protocol)])
    out, job = await run(protocol, up)
    assert up.keys() == ["k1", "k2"]
    assert out.status == 200 and out.body == b"".join(events_of(TEXT[protocol]))
    assert kinds(job) == ["retry"] and "not understood" in job.notes[0]["reason"]


async def test_a_forced_stream_whose_answer_cannot_be_folded_gets_the_protocols_error_not_an_internal_error():
    events = events_of(samples.CHAT_TOOL_CALLS)
    events[1] = events[1].replace(b'"arguments":"{\\"city\\""', b'"arguments":true')
    assert b'"arguments":true' in events[1]
    up = Upstream([lambda r: sse(events)])
    out, job = await run("openai_chat", up, stream=False, provider_extra=", force_upstream_stream: true")
    assert out.status == 502 and b"internal error" not in out.body
    assert json.loads(out.body)["error"]["message"].startswith("rotator: the upstream's answer could not be read")
    assert "failed" in kinds(job)
