"""The AWS event stream codec (protocols/eventstream/) against botocore's own parser (`EventStreamBuffer`, what boto3
reads Bedrock's streams with): the same frames from the same bytes split anywhere, both refuse a broken CRC, a length
no frame can have or headers that do not parse, and every frame we write botocore reads back as written."""

import struct
import uuid
import zlib

import pytest
from botocore import eventstream as boto
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from protocols.eventstream import (
    BadHeaders,
    BadLength,
    ChecksumMismatch,
    EventStreamParser,
    FrameDecoder,
    FrameError,
    FrameEvent,
    Header,
    TruncatedFrame,
    encode_frame,
    event_frame,
    exception_frame,
)
from protocols.eventstream.codec import MAX_PAYLOAD

REFUSED = "refused"
# botocore's test vector for a frame with no headers and no payload (its tests/unit/test_eventstream.py).
EMPTY_FRAME = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2H\xeb}\x98\xc8\xff"


def boto_reads(data: bytes, cuts: list[int] = ()):
    """What botocore makes of a stream: [(headers, payload)] of its whole frames, or REFUSED."""
    buffer, out = boto.EventStreamBuffer(), []
    try:
        for piece in split(data, cuts):
            buffer.add_data(piece)
            out += [(m.headers, m.payload) for m in buffer]
    except (boto.ParserError, KeyError, UnicodeDecodeError, struct.error):
        return REFUSED
    return out


def ours(data: bytes, cuts: list[int] = ()):
    """What the decoder makes of it, in botocore's terms (header values as botocore gives them), or REFUSED."""
    decoder, out = FrameDecoder(), []
    try:
        for piece in split(data, cuts):
            out += [({h.name: h.value for h in f.headers}, f.payload) for f in decoder.feed(piece)]
    except FrameError:
        return REFUSED
    return out


def split(data: bytes, cuts) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def frame_with_headers(head: bytes, payload: bytes = b"{}") -> bytes:
    """A frame around a headers section as given (valid or not), both CRCs right."""
    lengths = struct.pack("!II", 16 + len(head) + len(payload), len(head))
    body = lengths + struct.pack("!I", zlib.crc32(lengths)) + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(lambda n: len(n.encode()) <= 255)
HEADER_VALUES = st.one_of(
    st.booleans().map(lambda b: (0 if b else 1, b)),
    st.integers(-128, 127).map(lambda i: (2, i)),
    st.integers(-(1 << 15), (1 << 15) - 1).map(lambda i: (3, i)),
    st.integers(-(1 << 31), (1 << 31) - 1).map(lambda i: (4, i)),
    st.integers(-(1 << 63), (1 << 63) - 1).map(lambda i: (5, i)),
    st.binary(max_size=40).map(lambda b: (6, b)),
    st.text(max_size=40).map(lambda s: (7, s)),
    st.integers(0, 1 << 50).map(lambda i: (8, i)),
    st.binary(min_size=16, max_size=16).map(lambda b: (9, b)),
)


@st.composite
def frames(draw) -> bytes:
    named = draw(st.dictionaries(NAMES, HEADER_VALUES, max_size=5))
    headers = [Header(name, kind, value) for name, (kind, value) in named.items()]
    return encode_frame(headers, draw(st.binary(max_size=60)))


STREAMS = st.lists(frames(), max_size=5).map(b"".join)


def test_an_empty_frame_is_botocores_test_vector():
    assert encode_frame([], b"") == EMPTY_FRAME
    (frame,) = FrameDecoder().feed(EMPTY_FRAME)
    assert (frame.headers, frame.payload, frame.raw) == ((), b"", EMPTY_FRAME)


def test_every_header_type_botocore_reads_as_written():
    moment = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = [Header.of("yes", True), Header.of("no", False), Header("byte", 2, -3), Header("short", 3, 700),
               Header.of("int", 70000), Header.of("long", 1 << 40), Header.of("blob", b"\x00\xff"),
               Header.of("text", "é"), Header("ts", 8, 1764000000000), Header.of("id", moment)]
    data = encode_frame(headers, b"payload")
    assert boto_reads(data) == [({"yes": True, "no": False, "byte": -3, "short": 700, "int": 70000, "long": 1 << 40,
                                  "blob": b"\x00\xff", "text": "é", "ts": 1764000000000, "id": moment.bytes},
                                 b"payload")]
    (frame,) = FrameDecoder().feed(data)
    assert frame.headers == tuple(headers) and frame.header("text") == "é" and frame.header("absent") is None


def test_writing_refuses_what_no_frame_can_carry():
    for header in (Header.of("", "x"), Header.of("n" * 256, "x"), Header.of("big", "x" * 65536), Header("u", 9, b"1")):
        with pytest.raises(ValueError):
            encode_frame([header], b"")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMS, st.lists(st.integers(0, 1 << 16), max_size=8))
def test_streams_split_anywhere_read_as_botocore_reads_them(data, cuts):
    mine = ours(data, cuts)
    assert mine != REFUSED
    assert mine == boto_reads(data) == ours(data)
    decoder = FrameDecoder()
    raw = b"".join(f.raw for piece in split(data, cuts) for f in decoder.feed(piece))
    assert raw == data and decoder.idle and decoder.pending == b""


SAMPLE = b"".join([
    event_frame("messageStart", {"role": "assistant"}),
    event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
    exception_frame("throttlingException", "Too many tokens, please wait before trying again."),
])


def test_every_single_split_and_byte_by_byte_give_the_same_frames():
    whole = ours(SAMPLE)
    assert len(whole) == 3
    for cut in range(len(SAMPLE) + 1):
        assert ours(SAMPLE, [cut]) == whole, cut
    assert ours(SAMPLE, list(range(len(SAMPLE)))) == whole


def test_a_changed_byte_anywhere_is_refused_as_a_checksum_mismatch():
    for i in range(len(SAMPLE)):
        for flip in (0x01, 0x80, 0xFF):
            broken = SAMPLE[:i] + bytes([SAMPLE[i] ^ flip]) + SAMPLE[i + 1:]
            decoder = FrameDecoder()
            with pytest.raises(ChecksumMismatch):
                decoder.feed(broken)
                decoder.close()
            assert boto_reads(broken) == REFUSED, i


def test_a_broken_prelude_is_refused_before_its_claimed_length_is_waited_for():
    bad = bytearray(SAMPLE[:12])
    bad[3] ^= 0x40  # a total length of 64 KiB more, the prelude CRC unchanged
    with pytest.raises(ChecksumMismatch, match="prelude CRC"):
        FrameDecoder().feed(bytes(bad))


def prelude(total: int, headers: int) -> bytes:
    lengths = struct.pack("!II", total, headers)
    return lengths + struct.pack("!I", zlib.crc32(lengths))


@pytest.mark.parametrize(("total", "headers"), [(15, 0), (0, 0), (20, 5), (16 + 200 * 1024, 129 * 1024),
                                               (16 + MAX_PAYLOAD + 1, 0)])
def test_lengths_no_frame_can_have_are_refused_at_once(total, headers):
    with pytest.raises(BadLength):
        FrameDecoder().feed(prelude(total, headers))


def test_a_stream_cut_inside_a_frame_is_refused_at_its_end():
    frames_ = [event_frame("messageStart", {"role": "assistant"}), event_frame("messageStop", {"stopReason": "x"})]
    data = b"".join(frames_)
    for cut in range(1, len(data)):
        decoder = FrameDecoder()
        got = decoder.feed(data[:cut])
        assert [f.raw for f in got] == frames_[:1] if cut >= len(frames_[0]) else got == []
        if cut == len(frames_[0]):
            decoder.close()  # at a frame boundary: nothing is missing
            continue
        with pytest.raises(TruncatedFrame, match="ended .* into a frame"):
            decoder.close()


def test_after_a_broken_frame_nothing_more_is_read():
    decoder = FrameDecoder()
    with pytest.raises(ChecksumMismatch):
        decoder.feed(SAMPLE[:-1] + b"\x00")
    with pytest.raises(ChecksumMismatch):
        decoder.feed(SAMPLE)
    with pytest.raises(ChecksumMismatch):
        decoder.close()


# Headers sections built piece by piece: whole headers, then now and then one that is not (the mark says which).
WHOLE = st.tuples(NAMES, HEADER_VALUES).map(lambda h: (encode_frame([Header(h[0], *h[1])], b"")[12:-4], set()))
NOT_WHOLE = st.sampled_from([
    (b"\x04name\x07\x00\x05abc", {"cut"}),  # a string shorter than its length
    (b"\x04name\x06\x01\x00", {"cut"}),  # a byte array shorter than its length
    (b"\x02id\x09" + b"u" * 10, {"cut"}),  # a UUID of 10 bytes
    (b"\x04name\x04\x00\x01", {"cut", "both"}),  # an integer cut short
    (b"\x04name\x0a", {"both"}),  # no such type
    (b"\x04name\x07\x00\x02\xff\xfe", {"both"}),  # not UTF-8
    (b"\x09name", {"cut"}),  # a name longer than what is left
])


@st.composite
def header_sections(draw) -> tuple[bytes, set[str]]:
    pieces = draw(st.lists(WHOLE, max_size=3))
    if draw(st.integers(0, 5)) == 0 and pieces:
        pieces.append((pieces[0][0], {"both"}))  # a name given twice
    if draw(st.booleans()):
        pieces.append(draw(NOT_WHOLE))  # last: what follows a broken header is read differently by each
    marks = set().union(*(m for _, m in pieces)) if pieces else set()
    return b"".join(p for p, _ in pieces), marks


@settings(max_examples=400, deadline=None)
@given(header_sections(), st.lists(st.integers(0, 1 << 16), max_size=4))
def test_headers_read_as_botocore_reads_them_or_are_refused(section, cuts):
    head, marks = section
    data = frame_with_headers(head)
    mine, theirs = ours(data, cuts), boto_reads(data)
    event(f"botocore {'refuses' if theirs == REFUSED else 'accepts'}, ours {'refuses' if mine == REFUSED else 'accepts'}")
    if mine == REFUSED and theirs != REFUSED:
        # botocore takes a value cut short as a shorter value; we refuse what the frame does not hold.
        assert "cut" in marks, head
    else:
        assert mine == theirs, head
    if marks:
        with pytest.raises(BadHeaders):
            FrameDecoder().feed(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_any_headers_section_we_accept_botocore_reads_the_same(head):
    data = frame_with_headers(head)
    mine = ours(data)
    if mine != REFUSED:
        assert mine == boto_reads(data)


def test_a_large_frame_in_small_chunks_is_linear():
    data = event_frame("chunk", {"bytes": "x" * 2_000_000})
    decoder = FrameDecoder()
    frames_ = [f for i in range(0, len(data), 64) for f in decoder.feed(data[i:i + 64])]
    assert [f.raw for f in frames_] == [data]


# -- the adapter: frames as the engine reads SSE events -------------------------------------------------------


def test_frames_read_as_events_with_their_exact_bytes():
    parser = EventStreamParser()
    events = [e for piece in split(SAMPLE, [7, 100, 101]) for e in parser.feed(piece)]
    assert b"".join(e.raw for e in events) == SAMPLE and parser.idle and parser.close() == []
    assert [(e.event, e.data, e.message_type, e.failure) for e in events] == [
        ("messageStart", '{"role":"assistant"}', "event", False),
        ("contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"Hello"}}', "event", False),
        ("throttlingException", '{"message":"Too many tokens, please wait before trying again."}', "exception", True),
    ]
    assert all(isinstance(e, FrameEvent) for e in events)


def test_an_error_frame_reads_as_its_code_and_message():
    frame = encode_frame([Header.of(":message-type", "error"), Header.of(":error-code", "InternalFailure"),
                          Header.of(":error-message", "boom")], b"")
    (e,) = EventStreamParser().feed(frame)
    assert (e.event, e.data, e.failure) == ("InternalFailure", '{"message":"boom"}', True)


def test_the_parser_holds_an_unfinished_frame_and_refuses_it_at_the_end():
    parser = EventStreamParser()
    assert parser.feed(SAMPLE[:30]) == [] and parser.pending == SAMPLE[:30] and not parser.idle
    with pytest.raises(TruncatedFrame):
        parser.close()
