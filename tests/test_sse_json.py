"""protocols/sse.py `loads` and `dumps`: JSON read and written at orjson's speed, exactly as json reads and writes
it."""

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import sse
from protocols.sse import LONG_NUMBER, dumps, holds_long_number, load_object, loads


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([0, 1, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30,
                           -(10**25), rng.randrange(-(10**22), 10**22)])
    if kind == 1:
        return rng.choice([0.5, -0.0, 1e300, 1e-300, 3.141592653589793, float(rng.randrange(10**6)) / 7])
    if kind == 2:
        return "".join(rng.choice('ab"\\\n\t\u00e9\u4e2d\U0001f600 0123456789') for _ in range(rng.randrange(40)))
    if kind == 3:
        return rng.choice([None, True, False])
    if kind == 4:
        return "1" * rng.randrange(15, 25)  # (a long run of digits in a string: read by json, the same)
    if kind in (5, 6):
        return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_any_json_reads_as_json_reads_it_from_bytes_text_or_a_view():
    rng = random.Random(11)
    for _ in range(3000):
        value = random_value(rng)
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5, separators=rng.choice([(",", ":"), (", ", ": ")]))
        expected = repr(json.loads(text))  # (repr tells 1 from 1.0 and keeps NaN comparable)
        raw = text.encode()
        assert repr(loads(text)) == repr(loads(raw)) == repr(loads(memoryview(raw))) == expected, text
        assert repr(loads(raw, walk=True)) == repr(loads(memoryview(raw), walk=True)) == expected, text


@pytest.mark.parametrize("text", [
    '{"n": NaN, "i": Infinity, "m": -Infinity}', '{"s": "\\ud800"}', '{"x": 1e400}', '{"a": 1, "a": 2}',
    '{"big": 123456789012345678901234567890}', '[-9223372036854775809, 18446744073709551616]', '"text"', "12",
])
def test_what_orjson_refuses_or_reads_otherwise_reads_as_json_reads_it(text):
    assert repr(loads(text)) == repr(loads(text.encode())) == repr(json.loads(text))
    assert repr(loads(text.encode(), walk=True)) == repr(json.loads(text))


@pytest.mark.parametrize("number", [-(2**63) - 1, 2**64, 10**20, -(10**30)])
def test_an_integer_orjson_reads_as_a_float_is_found_deep_in_a_large_body_by_the_walk(number):
    """Past 64 bits orjson reads an integer as a float; the walk finds it however deep it is and wherever in a
    body of screenshots (whose base64 the text search would have sampled), and json reads the body then."""
    image = {"type": "image", "source": {"type": "base64", "data": "iVBORw0KGgo" * 30000}}
    body = {"model": "m", "messages": [{"role": "user", "content": [image, {"type": "tool_result", "content": [
        {"type": "json", "value": {"ids": [1, 2.5, number]}}]}]}]}
    raw = json.dumps(body).encode()
    assert sse.holds_huge_float(sse.orjson.loads(raw))
    read = loads(memoryview(raw), walk=True)
    assert read == body and type(read["messages"][0]["content"][1]["content"][0]["value"]["ids"][2]) is int
    assert not sse.holds_huge_float(sse.orjson.loads(json.dumps(dict(body, messages=[])).encode()))


@pytest.mark.parametrize("data", [b"{not json", b"", b'{"a": "\xff"}', "[1,"])
def test_what_json_refuses_is_a_value_error(data):
    with pytest.raises(ValueError):
        json.loads(data)
    with pytest.raises(ValueError):
        loads(data)


def test_nesting_too_deep_for_json_is_a_recursion_error():
    with pytest.raises(RecursionError):
        loads("[" * 100_000 + "]" * 100_000)


def test_long_runs_of_digits_are_found_wherever_they_are():
    """The sampled search finds exactly the runs a plain search over every byte finds."""
    rng = random.Random(7)
    every_byte = re.compile(rb"[0-9]{%d}" % LONG_NUMBER)
    for _ in range(20000):
        data = bytes(rng.choice(b"0123456789a") for _ in range(rng.randint(0, 70)))
        found = bool(every_byte.search(data))
        assert holds_long_number(data) is found and holds_long_number(memoryview(data)) is found, data
    text = json.dumps({"content": "line 123456 of 987654321 " * 3000, "n": 12}).encode()
    assert not holds_long_number(text)
    assert holds_long_number(text[:-1] + b"1" * LONG_NUMBER + b"}")



JSONISH = st.one_of(
    st.text(max_size=12),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                 max_leaves=8).map(lambda v: json.dumps(v)),
)


@settings(max_examples=300, deadline=None)
@given(data=JSONISH, before=st.sampled_from(["", " ", "\n", "\ufeff"]),
       after=st.sampled_from(["", " ", "\r\n", "x", " {}", "\u00a0"]))
def test_an_events_json_reads_as_json_reads_it(data, before, after):
    text = before + data + after
    try:
        expected = json.loads(text)
    except ValueError:
        expected = None
    assert repr(load_object(text)) == repr(expected if isinstance(expected, dict) else None)


def test_any_value_is_written_as_json_writes_it():
    """Compact, and read back as json reads what json writes: integers past 64 bits exact, NaN and Infinity as
    json writes them (orjson would write null), lone surrogates and keys that are not strings as json has them."""
    rng = random.Random(12)
    deep: list = [1]
    for _ in range(300):  # (deeper than orjson writes)
        deep = [deep]
    odd = [float("nan"), float("inf"), -float("inf"), "\ud800x", {1: "one", None: 2}, 10**30, deep]
    for i in range(3000):
        value = random_value(rng) if i % 10 else {"odd": rng.choice(odd), "rest": random_value(rng)}
        written = dumps(value)
        assert repr(json.loads(written)) == repr(json.loads(json.dumps(value))), value


def test_written_compact_non_ascii_as_utf8_and_a_lone_surrogate_escaped():
    assert dumps({"a": [1, {"b": None}], "c": True}) == b'{"a":[1,{"b":null}],"c":true}'
    assert dumps({"t": "\u00e9\u4e2d\U0001f600"}) == '{"t":"\u00e9\u4e2d\U0001f600"}'.encode()
    assert dumps({"t": "\ud800"}) == b'{"t":"\\ud800"}'
    assert dumps({"n": float("nan"), "i": 2**64}) == b'{"n":NaN,"i":18446744073709551616}'
