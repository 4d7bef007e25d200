"""JSON read as `json.loads` reads it, at orjson's speed wherever the two agree.

orjson refuses some of what json takes (NaN and Infinity, lone surrogates, numbers past a float's range, deep nesting)
and reads an integer past 64 bits as a float where json keeps it exact; a body or event Rotator writes again from its
parse would then carry it changed. Such text is read by json; everything else (nearly every body and event) by
orjson.
"""

from __future__ import annotations

import json

import orjson

# Digits from which an integer may be past 64 bits (-9223372036854775809 is; orjson reads up to 2**64 - 1).
LONG_NUMBER = 19
_SAMPLE_STEP = 6  # (three multiples of 6 fall in any 18 integers in a row: see holds_long_number)
_DIGITS = frozenset(b"0123456789")
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)


def loads(data: bytes | bytearray | memoryview | str) -> object:
    """`data` read as `json.loads` reads it (ValueError where it refuses it, RecursionError where it is too deep)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data if isinstance(data, (str, bytes, bytearray)) else bytes(data))
    # (text orjson read is valid UTF-8: encoding it cannot fail)
    if holds_long_number(data.encode() if isinstance(data, str) else data):
        return json.loads(data if isinstance(data, (str, bytes, bytearray)) else bytes(data))
    return value


def holds_long_number(data: bytes | bytearray | memoryview) -> bool:
    """Whether `data` holds a run of LONG_NUMBER or more ASCII digits. Not every byte is looked at: such a run holds
    three bytes in a row of every _SAMPLE_STEP-th (any 18 in a row do), so a run is measured only where that sample
    has three digits in a row (at most one place in 250 of a screenshot's base64; in prose and code, rarely)."""
    every = data[::_SAMPLE_STEP]
    sampled = (every if isinstance(every, bytes) else bytes(every)).translate(_DIGITS_AS_ZERO)
    at = sampled.find(b"000")
    while at >= 0:
        start = end = at * _SAMPLE_STEP
        if bytes(data[start : start + 2 * _SAMPLE_STEP + 1]).isdigit():  # (the run holds these three and between)
            while start and data[start - 1] in _DIGITS:
                start -= 1
            while end < len(data) and data[end] in _DIGITS:
                end += 1
            if end - start >= LONG_NUMBER:
                return True
        at = sampled.find(b"000", at + 1)
    return False
