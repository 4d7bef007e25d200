import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sse import (
    MAX_BLOCK,
    BlockTooLarge,
    SSEParser,
    format_event,
    json_event,
    load_object,
    parse_block,
)
from tests.support import samples

ALL_SAMPLES = [body for _, body in samples.STREAMS.values()]
# The same streams reframed with every line ending the SSE grammar allows.
FRAMINGS = {
    "lf": lambda body: body.replace(b"\r\n", b"\n"),
    "crlf": lambda body: body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
    "cr": lambda body: body.replace(b"\r\n", b"\n").replace(b"\n", b"\r"),
}
STREAMS = [framing(body) for body in ALL_SAMPLES for framing in FRAMINGS.values()]


def fields(events):
    return [(e.data, e.event, e.id) for e in events]


def parse_all(body: bytes, chunks=None):
    parser = SSEParser()
    events = []
    for chunk in chunks if chunks is not None else [body]:
        events += parser.feed(chunk)
    events += parser.close()
    return events, parser


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in zip(bounds, bounds[1:])]


def reference(body: bytes) -> list[tuple[str, str | None]]:
    """A plain line-by-line reading of the SSE grammar: the (data, event) of every event dispatched."""
    *lines, _incomplete = re.split(rb"\r\n|\r|\n", body)
    events, data, event = [], [], None
    for line in lines:
        if not line:
            if data:
                events.append(("\n".join(data), event))
            data, event = [], None
        elif not line.startswith(b":"):
            name, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if name == b"data":
                data.append(value.decode())
            elif name == b"event":
                event = value.decode()
    return events


@pytest.mark.parametrize(
    "body",
    [b"data: one\n\ndata: two\n\n", b"data: one\r\n\r\ndata: two\r\n\r\n", b"data: one\r\rdata: two\r\r"],
    ids=["lf", "crlf", "cr"],
)
def test_line_endings(body):
    events, parser = parse_all(body)
    assert [e.data for e in events] == ["one", "two"]
    assert b"".join(e.raw for e in events) == body
    assert parser.pending == b""


def test_multiline_data_is_joined_with_newlines():
    (event,) = SSEParser().feed(b"data: {\ndata:   \"a\": 1\ndata: }\n\n")
    assert event.data == '{\n  "a": 1\n}'


def test_fields():
    (event,) = SSEParser().feed(b"event: message_start\nid: 7\nretry: 100\nfoo: bar\ndata:x\n\n")
    assert (event.data, event.event, event.id) == ("x", "message_start", "7")


def test_only_one_space_after_the_colon_is_stripped():
    assert parse_block(b"data:  two spaces\n\n").data == " two spaces"
    assert parse_block(b"data\n\n").data == ""


def test_comment_block_dispatches_nothing_but_keeps_its_bytes():
    events = SSEParser().feed(b": keepalive\n\ndata: x\n: inline comment\n\n")
    assert [(e.raw, e.data) for e in events] == [(b": keepalive\n\n", None), (b"data: x\n: inline comment\n\n", "x")]


def test_event_without_data_dispatches_nothing():
    (event,) = SSEParser().feed(b"event: ping\n\n")
    assert event.data is None and event.event == "ping"


def test_incomplete_block_stays_pending():
    parser = SSEParser()
    assert parser.feed(b"data: one\n\ndata: tw") == [SSEParser().feed(b"data: one\n\n")[0]]
    assert parser.pending == b"data: tw"
    assert parser.feed(b"o\n") == []
    assert parser.pending == b"data: two\n"
    assert [e.data for e in parser.feed(b"\n")] == ["two"]
    assert parser.pending == b""


def test_cr_at_end_of_chunk_waits_for_a_possible_lf():
    parser = SSEParser()
    assert parser.feed(b"data: x\r\n\r") == []
    (event,) = parser.feed(b"\ndata: y\r\n\r\n")[:1]
    assert event.raw == b"data: x\r\n\r\n"


def test_close_releases_a_block_ended_by_a_final_cr():
    parser = SSEParser()
    assert parser.feed(b"data: x\r\r") == []
    assert [e.raw for e in parser.close()] == [b"data: x\r\r"]
    assert parser.pending == b""


def test_close_drops_nothing_and_invents_nothing():
    parser = SSEParser()
    parser.feed(b"data: partial")
    assert parser.close() == []
    assert parser.pending == b"data: partial"


def test_leading_blank_lines_are_kept_in_the_raw_bytes():
    events, parser = parse_all(b"\n\ndata: x\n\n\ndata: y\n\n")
    assert [e.data for e in events if e.data is not None] == ["x", "y"]
    assert b"".join(e.raw for e in events) == b"\n\ndata: x\n\n\ndata: y\n\n"


def cuts_near_line_endings(body: bytes) -> list[int]:
    """Every cut within two bytes of a line ending, where the framing logic lives."""
    return sorted({cut for i, byte in enumerate(body) if byte in b"\r\n" for cut in range(i - 1, i + 3)} & set(range(len(body) + 1)))


@pytest.mark.parametrize("body", STREAMS)
def test_every_split_near_a_line_ending_gives_the_same_events(body):
    whole, _ = parse_all(body)
    assert fields(whole) == reference_fields(body)
    for cut in cuts_near_line_endings(body):
        events, parser = parse_all(body, [body[:cut], body[cut:]])
        assert events == whole, cut
        assert parser.pending == b""


@pytest.mark.parametrize("body", [FRAMINGS["crlf"](samples.GEMINI_TEXT), FRAMINGS["cr"](samples.ANTHROPIC_TEXT)])
def test_every_single_split_gives_the_same_events(body):
    whole, _ = parse_all(body)
    for cut in range(len(body) + 1):
        assert parse_all(body, [body[:cut], body[cut:]])[0] == whole, cut


def reference_fields(body):
    events, _ = parse_all(body)
    dispatched = [(e.data, e.event) for e in events if e.data is not None]
    assert dispatched == reference(body)
    return fields(events)


@pytest.mark.parametrize("body", STREAMS[:3])
def test_byte_by_byte(body):
    events, _ = parse_all(body, [body[i : i + 1] for i in range(len(body))])
    assert events == parse_all(body)[0]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(STREAMS), st.data())
def test_any_chunking_gives_the_same_events(body, data):
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=30))
    events, parser = parse_all(body, split(body, cuts))
    assert events == parse_all(body)[0]
    assert b"".join(e.raw for e in events) == body


TOKENS = [b"data: a", b"data:b", b"data", b"data: {\"x\": 1}", b"event: e", b"id: 1", b": c", b"retry: 5", b"x: y",
          b" ", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join), st.data())
def test_arbitrary_streams_match_the_reference_grammar(body, data):
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=10))
    parser = SSEParser()
    events = []
    for chunk in split(body, cuts):
        events += parser.feed(chunk)
    raw = b"".join(e.raw for e in events)
    assert raw + parser.pending == body
    events += parser.close()
    assert [(e.data, e.event) for e in events if e.data is not None] == reference(body)
    for event in events:
        assert re.search(rb"(\r\n|\r|\n)(\r\n|\r|\n)$", event.raw)


def test_large_event_in_small_chunks_is_linear():
    body = b"data: " + b"x" * 2_000_000 + b"\n\n"
    parser = SSEParser()
    events = []
    for i in range(0, len(body), 64):
        events += parser.feed(body[i : i + 64])
    assert len(events) == 1 and len(events[0].data) == 2_000_000


def test_a_line_that_never_ends_is_refused_past_the_block_cap():
    parser = SSEParser(max_block=1000)
    assert parser.feed(b"data: one\n\ndata: ") != []
    with pytest.raises(BlockTooLarge):
        for _ in range(100):
            parser.feed(b"x" * 64)
    assert len(parser.pending) <= 1000 + 64


def test_the_cap_holds_when_one_chunk_completes_a_block_and_starts_an_oversized_one():
    with pytest.raises(BlockTooLarge):
        SSEParser(max_block=1000).feed(b"data: a\n\ndata: " + b"x" * 2000)


def test_blocks_up_to_the_cap_pass_in_any_chunking():
    body = b"data: " + b"x" * (1000 - 8) + b"\n\n"  # exactly 1000 bytes
    for step in (1, 7, 64, 1000):
        parser = SSEParser(max_block=1000)
        events = [e for i in range(0, len(body), step) for e in parser.feed(body[i : i + step])]
        assert [e.raw for e in events] == [body]


def test_the_default_cap_is_a_few_mib():
    assert 1 << 20 <= MAX_BLOCK <= 64 << 20
    assert SSEParser().max_block == MAX_BLOCK


def test_format_event_round_trips():
    assert format_event('{"a":1}') == b'data: {"a":1}\n\n'
    assert format_event(b"x", "ping") == b"event: ping\ndata: x\n\n"
    assert format_event("a\nb", eol=b"\r\n") == b"data: a\r\ndata: b\r\n\r\n"
    (event,) = SSEParser().feed(format_event("line one\nline two", "message_delta"))
    assert (event.data, event.event) == ("line one\nline two", "message_delta")


def test_json_event_is_compact_utf8():
    assert json_event({"text": "é", "n": None}, "x") == 'event: x\ndata: {"text":"é","n":null}\n\n'.encode()



@pytest.mark.parametrize("data", [
    '{"a": 1, "b": [1.5, "x", null, true]}', '{"n": NaN}', '{"big": 123456789012345678901234567890}',
    '{"s": "\\ud800"}', '{"a": 1, "a": 2}', "[1, 2]", '"text"', "{not json", "",
])
def test_an_events_object_reads_as_json_reads_it(data):
    """(Integers past 64 bits included: orjson, faster, reads them as floats, and a folded answer would change.)"""
    try:
        expected = json.loads(data)
    except ValueError:
        expected = None
    assert load_object(data) == (expected if isinstance(expected, dict) else None)
