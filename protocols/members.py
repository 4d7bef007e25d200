"""The top-level members of a JSON object's text, found without building their values, and members spliced into
that text with its other bytes as they were.

An agent's request body can be megabytes, and a request that only needs `"stream": true` put in costs a whole
`json.dumps` when written again. The walk here skips a nested value by looking for its next quote or bracket with
`bytes.find` (memory speed), so its Python steps are one per string and bracket, not per character.

It checks the object's own punctuation (keys, colons, commas, the closing brace) and that brackets balance, not
that every nested value is valid JSON: callers use it on text json.loads read, or send the text on as it came.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

_WS = re.compile(rb"[ \t\n\r]*")
_SCALAR = re.compile(rb"[^,}\]\s]+")  # a number, true, false or null, up to what follows it
_QUOTE, _BACKSLASH = 34, 92
_MARKS = b'"[]{}'  # what a walk through a nested value stops at
_OPENING = (ord("["), ord("{"))


def member_spans(raw: bytes, wanted: frozenset[str] | None = None) -> dict[str, tuple[int, int]] | None:
    """Each top-level member of the JSON object `raw` as the offsets of its value's text (the last one where a key
    is repeated, as json.loads keeps); None if `raw` is not an object's text. With `wanted`, the walk stops once it
    found them all, if each one's quoted name is nowhere else in `raw` (so no later member repeats it; a repeat that
    spells the name with escapes is not looked for)."""
    if wanted is not None and any(raw.count(json.dumps(k).encode()) != 1 for k in wanted):
        wanted = None
    found: set[str] = set()
    pos = _after_space(raw, 0)
    if raw[pos : pos + 1] != b"{":
        return None
    if wanted is not None and not wanted:
        return {}
    pos = _after_space(raw, pos + 1)
    spans: dict[str, tuple[int, int]] = {}
    if raw[pos : pos + 1] == b"}":
        return spans if _after_space(raw, pos + 1) == len(raw) else None
    while True:
        key_end = _string_end(raw, pos) if raw[pos : pos + 1] == b'"' else None
        if key_end is None:
            return None
        key = raw[pos:key_end]
        pos = _after_space(raw, key_end)
        if raw[pos : pos + 1] != b":":
            return None
        start = _after_space(raw, pos + 1)
        end = _value_end(raw, start)
        if end is None:
            return None
        try:
            name = json.loads(key)
        except ValueError:
            return None
        spans[name] = (start, end)
        if wanted is not None and name in wanted:
            found.add(name)
            if len(found) == len(wanted):
                return spans
        pos = _after_space(raw, end)
        sep = raw[pos : pos + 1]
        if sep == b"}":
            return spans if _after_space(raw, pos + 1) == len(raw) else None
        if sep != b",":
            return None
        pos = _after_space(raw, pos + 1)


def _value_end(raw: bytes, start: int) -> int | None:
    """Where the value starting at `start` ends; None if it does not (or its brackets do not balance)."""
    first = raw[start : start + 1]
    if first == b'"':
        return _string_end(raw, start)
    if first not in (b"[", b"{"):
        scalar = _SCALAR.match(raw, start)
        return scalar.end() if scalar is not None else None
    # The next of each mark (bytes.find runs at memory speed); a mark found inside a string skipped is looked up
    # again after it. The Python steps are one per string and bracket.
    size = len(raw)
    pos = start + 1
    ahead = [_find(raw, mark, pos, size) for mark in _MARKS]
    depth = 1
    while True:
        at = min(ahead)
        if at == size:
            return None
        mark = raw[at]
        if mark == _QUOTE:
            end = _string_end(raw, at)
            if end is None:
                return None
            pos = end
            ahead = [a if a >= pos else _find(raw, m, pos, size) for a, m in zip(ahead, _MARKS, strict=True)]
            continue
        depth += 1 if mark in _OPENING else -1
        if not depth:
            return at + 1
        pos = at + 1
        ahead[_MARKS.index(mark)] = _find(raw, mark, pos, size)


def _after_space(raw: bytes, pos: int) -> int:
    space = _WS.match(raw, pos)
    return space.end() if space is not None else pos


def _find(raw: bytes, mark: int, pos: int, size: int) -> int:
    at = raw.find(mark, pos)
    return size if at < 0 else at


def _string_end(raw: bytes, quote: int) -> int | None:
    """Where the string whose opening quote is at `quote` ends (after its closing quote); None if it does not."""
    pos = quote + 1
    while (end := raw.find(b'"', pos)) >= 0:
        before = end - 1
        while raw[before] == _BACKSLASH:
            before -= 1
        if (end - 1 - before) % 2 == 0:  # (an even run of backslashes escapes itself, not the quote)
            return end + 1
        pos = end + 1
    return None


def with_members(raw: bytes, members: dict, present: Collection[str] | None = None) -> bytes | None:
    """The JSON object `raw` with `members` set (a member it has takes the new value where it stands, one it lacks
    goes in front), its other bytes as they were; None if `raw` is not an object's text. `present`: the keys `raw`
    has, when known (json.loads read it): the walk then stops at the last of them it needs."""
    spans = member_spans(raw, None if present is None else frozenset(k for k in members if k in present))
    if spans is None:
        return None
    edits = sorted((spans[k], _compact(v)) for k, v in members.items() if k in spans)
    new = {k: v for k, v in members.items() if k not in spans}
    view = memoryview(raw)  # (the parts between the edits are not copied before the one join)
    parts: list[bytes | memoryview] = []
    done = 0
    if new:  # in front: `{"new": ...,` where the object opened
        done = raw.index(b"{") + 1
        empty = raw[_after_space(raw, done) : _after_space(raw, done) + 1] == b"}"
        parts.append(_compact(new)[:-1] + (b"" if empty else b","))
    for (start, end), value in edits:
        parts += (view[done:start], value)
        done = end
    parts.append(view[done:])
    return b"".join(parts)


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def rewritten(raw: bytes, before: dict, after: dict) -> bytes | None:
    """The text of `after`, a copy of `before` (json.loads of `raw`) with members added or replaced, written as
    `raw` with only those members spliced in; None if `after` drops one of `before`'s or `raw` is no object."""
    if any(k not in after for k in before):
        return None
    return with_members(raw, {k: v for k, v in after.items() if k not in before or before[k] is not v}, before)
