import json
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import members as members_module
from protocols.members import member_spans, rewritten, with_members, with_members_in_pieces

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                                            max_size=4), max_leaves=20)
objects = st.dictionaries(st.text(), values, max_size=6)
tricky_text = st.text(alphabet='ab"\\{}[]:, \n\u00e9', max_size=8)  # quotes, backslashes and brackets inside strings
tricky = st.dictionaries(tricky_text, st.recursive(tricky_text | st.integers(), lambda inner: st.lists(
    inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3), max_leaves=10), max_size=5)


def written(body: dict, indent: int | None, ascii_only: bool) -> bytes:
    return b" \n" + json.dumps(body, indent=indent, ensure_ascii=ascii_only).encode() + b"\n"


@settings(max_examples=300)
@given(objects | tricky, st.sampled_from([None, 0, 2]), st.booleans())
def test_the_members_found_are_json_loads_own(body, indent, ascii_only):
    raw = written(body, indent, ascii_only)
    spans = member_spans(raw)
    assert spans is not None and list(spans) == list(body)
    assert {k: json.loads(raw[a:b]) for k, (a, b) in spans.items()} == body


@settings(max_examples=300)
@given(objects | tricky, objects, st.sampled_from([None, 2]))
def test_members_spliced_in_read_as_the_rewritten_body(body, members, indent):
    raw = written(body, indent, False)
    spliced = with_members(raw, members)
    assert spliced is not None and json.loads(spliced) == {**body, **members}
    assert json.loads(with_members(raw, members, body)) == {**body, **members}  # (the walk stops early)


def test_a_repeated_member_is_replaced_where_json_loads_reads_it():
    raw = b'{"stream": false, "model": "m", "stream": false}'
    assert json.loads(with_members(raw, {"stream": True})) == {"stream": True, "model": "m"}


def test_forcing_a_stream_changes_only_the_stream_member():
    raw = b'{"model": "m", "stream" :false, "messages": [{"content": "a \\" } ] \\\\"}], "max_tokens": 1.0e3}'
    before = json.loads(raw)
    after = rewritten(raw, before, {**before, "stream": True})
    assert after == raw.replace(b"false", b"true")


@pytest.mark.parametrize("raw", [b"", b"[1, 2]", b'{"a": 1', b'{"a": [1, }', b'{"a" 1}', b'{"a": 1} x', b'{a: 1}',
                                 b'{"a\x01": 1}', b'{"\xff": 1}'])  # (a key json.loads refuses: a control, not UTF-8)
def test_what_is_not_an_objects_text_has_no_members(raw):
    assert member_spans(raw) is None and with_members(raw, {"stream": True}) is None


def test_a_member_dropped_is_not_spliced():
    assert rewritten(b'{"a": 1, "b": 2}', {"a": 1, "b": 2}, {"a": 1}) is None


def test_the_usage_option_goes_in_front_of_the_clients_own_bytes():
    raw = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"content": "hi \u00e9"}]},
                     ensure_ascii=False).encode()
    before = json.loads(raw)
    asked = rewritten(raw, before, {**before, "stream_options": {"include_usage": True}})
    assert json.loads(asked) == {**before, "stream_options": {"include_usage": True}}
    assert raw[1:] in asked  # everything else exactly as the client wrote it


def pieces_of(raw: bytes, cuts: list[int]) -> list[bytes]:
    ends = sorted({0, *(c % (len(raw) + 1) for c in cuts), len(raw)})
    return [raw[a:b] for a, b in zip(ends, ends[1:]) if b > a]


@settings(max_examples=300)
@given(objects | tricky, objects, st.sampled_from([None, 2]), st.lists(st.integers(0, 10_000), max_size=6),
       st.sampled_from([1, 16, 64 << 10]))
def test_members_spliced_into_pieces_read_as_the_rewritten_body_and_the_rest_is_not_copied(body, members, indent,
                                                                                            cuts, head):
    """Cut anywhere (inside a key, a number, an escape), a body held as pieces gets its members where json.loads
    reads them, or None (then the caller joins it); the pieces past the head are the same objects."""
    raw = written(body, indent, False)
    pieces = pieces_of(raw, cuts)
    with mock.patch.object(members_module, "HEAD", head):
        out = with_members_in_pieces(pieces, members, body)
    if out is None:
        return
    assert json.loads(b"".join(out)) == {**body, **members}
    kept = out[1:]
    assert all(a is b for a, b in zip(kept, pieces[len(pieces) - len(kept):], strict=True))


def test_a_member_far_into_a_large_body_is_spliced_without_copying_the_rest():
    body = {"model": "m", "stream": False, "messages": [{"content": "x" * 100_000} for _ in range(40)]}
    raw = json.dumps(body).encode()
    pieces = pieces_of(raw, list(range(0, len(raw), 1 << 20)))
    out = with_members_in_pieces(pieces, {"stream": True}, body)
    assert out is not None and out[1:] == pieces[1:] and all(a is b for a, b in zip(out[1:], pieces[1:]))
    assert json.loads(b"".join(out)) == {**body, "stream": True}


@pytest.mark.parametrize("cut", range(1, 9))
def test_a_name_repeated_across_two_pieces_is_not_spliced_there(cut):
    """A later member that repeats the name (json.loads reads that one) is found even when the pieces cut its name
    in two: the whole body is then the caller's to join."""
    raw = b'{"stream": false, "model": "m", "stream": false}'
    at = raw.rindex(b'"stream"') + cut
    assert with_members_in_pieces([raw[:at], raw[at:]], {"stream": True}, json.loads(raw)) is None
    assert with_members_in_pieces([raw], {"stream": True}, json.loads(raw)) is None


@pytest.mark.parametrize("raw", [b'{}', b' {\n }', b'{"a": 1}'])
def test_a_member_put_in_front_of_a_body_cut_just_after_its_brace_sees_what_follows(raw):
    at = raw.index(b"{") + 1
    with mock.patch.object(members_module, "HEAD", 1):
        out = with_members_in_pieces([raw[:at], raw[at:]], {"stream": True}, json.loads(raw))
    assert out is None or json.loads(b"".join(out)) == {**json.loads(raw), "stream": True}
