"""The lean transport's hand-written response parsers (rewrite/upstream/framing.py) against h11, httpx's own: the
same bytes, split anywhere, give the same status, reason, headers and body, or both refuse them. Where framing.py
refuses on purpose what h11 takes (see its docstring), the bytes must show why."""

import re

import h11
import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rewrite.upstream.framing import ChunkedDecoder, body_framing, parse_head

REFUSED = "refused"
FRAMING = (b"content-length", b"transfer-encoding")  # (h11 keeps one of several equal Content-Lengths)
# What framing.py refuses and h11 does not (the generator marks each part of a response it puts in).
ON_PURPOSE = {"obs-fold", "bare-lf", "101"}



def mostly(usual, odd):
    """`usual` about seven times in eight."""
    return st.integers(0, 7).flatmap(lambda i: odd if i == 3 else usual)


TEXT = mostly(st.text("abc XYZ-09:;,\t\x80", max_size=12).map(str.encode), st.binary(max_size=12))
ODD = st.sampled_from([b"", b" ", b"\t", b"\x00", b"\r", b"\n", b"\x0b", b"\x0c", b"\x80\xff", b"\x7f", b"a b",
                       b":", b"\r\n", b"\r\n "])
VALUE = mostly(TEXT, st.one_of(ODD, st.tuples(TEXT, ODD, TEXT).map(b"".join)))
NAME = mostly(st.sampled_from([b"content-type", b"X-Req", b"retry-after", b"Connection", b"a", b"x_y!~"]),
              st.one_of(TEXT, st.tuples(st.sampled_from([b"x", b""]), ODD).map(b"".join)))


@st.composite
def status_lines(draw) -> tuple[bytes, set[str]]:
    version = draw(mostly(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]), st.sampled_from(
        [b"HTTP/2.0", b"HTTP/1.1 ", b"HTP/1.1", b"http/1.1", b"HTTP/11", b""])))
    code = draw(mostly(st.sampled_from([b"200", b"429", b"204", b"304", b"500"]), st.sampled_from(
        [b"101", b"999", b"099", b"000", b"2_00", b"+20", b" 200", b"20", b"2000", "２".encode()])))
    reason = draw(mostly(st.sampled_from([b" OK", b"", b" ", b" Too Many Requests", b"  odd\tspacing "]),
                         VALUE.map(lambda v: b" " + v)))
    return version + b" " + code + reason, {"101"} if code == b"101" and version.startswith(b"HTTP/") else set()


@st.composite
def header_lines(draw, framing: list[tuple[bytes, bytes]]) -> tuple[list[bytes], set[str]]:
    lines, marks = [], set()
    seps = mostly(st.sampled_from([b": ", b":", b":\t"]), st.sampled_from([b" : ", b" :", b"", b"\x00:"]))
    fields = draw(st.lists(st.tuples(NAME, seps, VALUE), max_size=4))
    for name, sep, value in fields:
        lines.append(name + sep + value)
    for name, value in framing:
        lines.insert(draw(st.integers(0, len(lines))), name + b": " + value)
    if lines and draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from([b" folded", b"\tmore", b"  "])))
    return lines, marks


def joined(lines: list[bytes], draw) -> tuple[bytes, set[str]]:
    """Lines and the empty line after them, each ended by CRLF or now and then a bare LF."""
    ends = [draw(st.sampled_from([b"\r\n"] * 12 + [b"\n"])) for _ in range(len(lines) + 1)]
    text = b"".join(line + end for line, end in zip([*lines, b""], ends, strict=True))
    marks = {"bare-lf"} if re.search(rb"(?<!\r)\n", text) else set()
    if re.search(rb"\n[ \t]", text):
        marks.add("obs-fold")
    return text, marks


@st.composite
def chunked_bodies(draw) -> tuple[bytes, set[str]]:
    out, marks = [], set()
    for data in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
        size = b"%x" % len(data)
        size = draw(mostly(st.sampled_from([size, size.upper(), b"00" + size, size + b";ext=1", size + b" \t",
                                            size + b";a\r", size + b";q=\"x\""]),
                           st.sampled_from([b" " + size, b"0x" + size, b"+" + size, b"%x" % (len(data) + 1), b"1" * 21,
                                            b"g", b"-1", b"1_0", size + b"\n", b""])))
        ending = draw(mostly(st.just(b"\r\n"), st.sampled_from([b"", b"\n", b"\r", b"xx"])))
        out.append(size + b"\r\n" + data + ending)
    trailers, trailer_marks = draw(st.one_of(st.just(([], set())), header_lines([])))
    last, end_marks = joined(trailers, draw)
    out.append(draw(st.sampled_from([b"0", b"000", b"0;done", b"0 "])) + b"\r\n" + last)
    marks |= trailer_marks | end_marks
    body = b"".join(out)
    return body, marks


@st.composite
def responses(draw) -> tuple[bytes, set[str]]:
    interim = draw(st.sampled_from([b"", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early\r\nlink: </a>\r\n\r\n"]))
    status, marks = draw(status_lines())
    framing = draw(mostly(st.sampled_from([
        [], [(b"Content-Length", b"5")], [(b"content-length", b"5, 5")], [(b"Content-Length", b"5")] * 2,
        [(b"Transfer-Encoding", b"chunked")], [(b"Transfer-Encoding", b"chunked")], [(b"Transfer-Encoding", b"chunked")],
        [(b"transfer-encoding", b"Chunked")], [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"5")],
    ]), st.sampled_from([
        [(b"Content-Length", b"5"), (b"content-length", b"6")], [(b"Content-Length", b"+5")], [(b"Content-Length", b"")],
        [(b"Content-Length", b"0x5")], [(b"Content-Length", b"1" * 21)], [(b"Content-Length", b"5,")],
        [(b"Transfer-Encoding", b"gzip, chunked")], [(b"Transfer-Encoding", b"chunked")] * 2,
        [(b"Transfer-Encoding", b"chunked, chunked")], [(b"Transfer-Encoding", b"identity")],
    ])))
    lines, header_marks = draw(header_lines(framing))
    head, end_marks = joined([status, *lines], draw)
    marks |= header_marks | end_marks
    if any(name.lower() == b"transfer-encoding" for name, _ in framing):
        body, body_marks = draw(chunked_bodies())
        marks |= body_marks
    else:
        body = draw(mostly(st.binary(min_size=6, max_size=12), st.binary(max_size=5)))
    raw = interim + head + body
    cut = draw(st.sampled_from([None] * 4 + [draw(st.integers(0, len(raw)))]))
    return raw[:cut], marks


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    return [raw[a:b] for a, b in zip(points, points[1:], strict=False)]


def ours(raw: bytes, cuts: list[int]):
    """What the transport makes of `raw` (then the connection's end): it reads a head up to its first CRLFCRLF."""
    try:
        pos = 0
        status = 0
        while status < 200:
            end = raw.find(b"\r\n\r\n", pos)
            if end < 0:
                return REFUSED
            status, reason, headers = parse_head(raw[pos:end])
            pos = end + 4
        length, _ = body_framing("GET", status, headers)
        rest = raw[pos:]
        if length is None:
            chunks, body = ChunkedDecoder(), b""
            for piece in split(rest, cuts):
                if not chunks.done:
                    body += chunks.feed(piece)
            if not chunks.done:
                chunks.eof()
        elif length >= 0:
            if len(rest) < length:
                return REFUSED
            body = rest[:length]
        else:
            body = rest
    except httpx.RemoteProtocolError:
        return REFUSED
    return status, reason, [h for h in headers if h[0].lower() not in FRAMING], body


def h11s(raw: bytes, cuts: list[int]):
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "vendor.test")]))
    conn.send(h11.EndOfMessage())
    for piece in split(raw, cuts):
        conn.receive_data(piece)
    conn.receive_data(b"")
    got, body = None, b""
    try:
        while True:
            e = conn.next_event()
            if isinstance(e, h11.Response):
                headers = [(n, v) for n, v in e.headers.raw_items() if n.lower() not in FRAMING]
                got = (e.status_code, bytes(e.reason), headers)
            elif isinstance(e, h11.Data):
                body += e.data
            elif isinstance(e, h11.EndOfMessage):
                return (*got, body)
            elif e is h11.NEED_DATA or e is h11.PAUSED or isinstance(e, h11.ConnectionClosed):
                return REFUSED
    except h11.RemoteProtocolError:
        return REFUSED


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses(), st.lists(st.integers(0, 1 << 16), max_size=8))
def test_responses_split_anywhere_read_as_h11_reads_them_or_are_refused(response, cuts):
    raw, marks = response
    mine, theirs = ours(raw, cuts), h11s(raw, cuts)
    event(f"h11 {'refuses' if theirs == REFUSED else 'accepts'}, ours {'refuses' if mine == REFUSED else 'accepts'}")
    if mine == REFUSED and theirs != REFUSED:
        assert marks & ON_PURPOSE, f"refused what h11 reads: {raw!r} -> {theirs}"
    else:
        assert mine == theirs, raw


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=30), max_size=5), st.lists(st.integers(0, 1 << 16), max_size=8),
       st.sampled_from([b"", b"x-trailer: 1\r\n", b"a: b\r\nc:\r\n"]))
def test_a_valid_chunked_answer_split_anywhere_reads_whole(chunks, cuts, trailers):
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-a:  b c \r\n\r\n" + b"".join(
        b"%x;e=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailers + b"\r\n"
    assert ours(raw, cuts) == h11s(raw, cuts) == (200, b"OK", [(b"x-a", b"b c")], b"".join(chunks))


def test_what_is_refused_on_purpose_is_refused_with_a_one_line_reason():
    for head in (b"HTTP/1.1 200 OK\r\na: b\r\n folded", b"HTTP/1.1 101 Switching", b"HTTP/1.1 200 OK\na: b"):
        try:
            parse_head(head)
        except httpx.RemoteProtocolError as e:
            assert re.fullmatch(r"malformed [a-z ]+ b'.*'", str(e)), str(e)
        else:
            raise AssertionError(head)
