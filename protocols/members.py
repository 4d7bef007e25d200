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
from collections.abc import Callable, Collection
from dataclasses import dataclass

_WS = re.compile(rb"[ \t\n\r]*")
_SCALAR = re.compile(rb"[^,}\]\s]+")  # a number, true, false or null, up to what follows it
_CONTROL = re.compile(rb"[\x00-\x1f]")  # (not allowed in a JSON string as they are)
_QUOTE, _BACKSLASH = 34, 92
_MARKS = b'"[]{}'  # what a walk through a nested value stops at
_OPENING = (ord("["), ord("{"))
_CLOSING = (ord("]"), ord("}"))
_SPACE = b" \t\n\r"
_BEFORE_SCALAR = b" \t\n\r,:[{"
_SCALAR_MOST = 4096  # bytes of a number walked back over (past it, the caller reads the text whole)


def member_spans(raw: bytes, wanted: frozenset[str] | None = None, counted: bool = False
                 ) -> dict[str, tuple[int, int]] | None:
    """Each top-level member of the JSON object `raw` as the offsets of its value's text (the last one where a key
    is repeated, as json.loads keeps); None if `raw` is not an object's text. With `wanted`, the walk stops once it
    found them all, if each one's quoted name is nowhere else in `raw` (so no later member repeats it; a repeat that
    spells the name with escapes is not looked for); `counted`: the caller made sure of that."""
    if wanted is not None and not counted and any(raw.count(_quoted(k)) != 1 for k in wanted):
        wanted = None
    found: set[str] = set()
    pos = after_space(raw, 0)
    if raw[pos : pos + 1] != b"{":
        return None
    if wanted is not None and not wanted:
        return {}
    pos = after_space(raw, pos + 1)
    spans: dict[str, tuple[int, int]] = {}
    if raw[pos : pos + 1] == b"}":
        return spans if after_space(raw, pos + 1) == len(raw) else None
    while True:
        key_end = _string_end(raw, pos) if raw[pos : pos + 1] == b'"' else None
        if key_end is None:
            return None
        key = raw[pos:key_end]
        pos = after_space(raw, key_end)
        if raw[pos : pos + 1] != b":":
            return None
        start = after_space(raw, pos + 1)
        end = _value_end(raw, start)
        if end is None:
            return None
        name = _name(key)
        if name is None:
            return None
        spans[name] = (start, end)
        if wanted is not None and name in wanted:
            found.add(name)
            if len(found) == len(wanted):
                return spans
        pos = after_space(raw, end)
        sep = raw[pos : pos + 1]
        if sep == b"}":
            return spans if after_space(raw, pos + 1) == len(raw) else None
        if sep != b",":
            return None
        pos = after_space(raw, pos + 1)


EXHAUSTED = -2  # (a walk through a value that passed the strings and brackets it was allowed)
WALK_STEPS = 16  # strings and brackets a walk from either end passes in one member before it leaves it


@dataclass(frozen=True, slots=True)
class TopLevel:
    """An object's top-level members as walks from both ends of its text found them: `front` and `back` each as
    (name, value start, value end) in text order, and `middle`, the text neither walked (from its first member's key
    to its last member's value end; empty where the walks met): a member with a long history, left to the parser."""

    front: tuple[tuple[str, int, int], ...]
    middle: tuple[int, int]
    back: tuple[tuple[str, int, int], ...]


def top_level(raw: bytes, steps: int = WALK_STEPS) -> TopLevel | None:
    """The top-level members of the JSON object `raw` (its punctuation checked, not its values); None where it is
    no object's text. A member whose value has more than `steps` strings and brackets stops the walk from the front,
    and the one from the back walks to it."""
    pos = after_space(raw, 0)
    if raw[pos : pos + 1] != b"{":
        return None
    pos = after_space(raw, pos + 1)
    front: list[tuple[str, int, int]] = []
    if raw[pos : pos + 1] == b"}":
        return TopLevel((), (pos, pos), ()) if after_space(raw, pos + 1) == len(raw) else None
    while True:
        key_end = _string_end(raw, pos) if raw[pos : pos + 1] == b'"' else None
        name = _name(raw[pos:key_end]) if key_end is not None else None
        colon = after_space(raw, key_end) if key_end is not None else 0
        if name is None or raw[colon : colon + 1] != b":":
            return None
        start = after_space(raw, colon + 1)
        end = _value_end(raw, start, steps)
        if end == EXHAUSTED:
            break
        if end is None:
            return None
        front.append((name, start, end))
        sep = after_space(raw, end)
        if raw[sep : sep + 1] == b"}":
            return TopLevel(tuple(front), (sep, sep), ()) if after_space(raw, sep + 1) == len(raw) else None
        if raw[sep : sep + 1] != b",":
            return None
        pos = after_space(raw, sep + 1)
    back = _walk_back(raw, pos, steps)
    if back is None:
        return None
    middle_end, members = back
    return TopLevel(tuple(front), (pos, middle_end), tuple(reversed(members)))


def _walk_back(raw: bytes, first: int, steps: int) -> tuple[int, list[tuple[str, int, int]]] | None:
    """The members from the object's end back to the one whose key is at `first` (or to one whose value has more
    than `steps` strings and brackets): where the members not walked end, and those walked, last first."""
    last = _before_space(raw, len(raw) - 1)
    if raw[last : last + 1] != b"}":
        return None
    last = _before_space(raw, last - 1)
    members: list[tuple[str, int, int]] = []
    while True:
        start = _value_start(raw, last, steps)
        if start == EXHAUSTED:
            return last + 1, members
        colon = _before_space(raw, start - 1) if start is not None else -1
        key_last = _before_space(raw, colon - 1)
        if colon < first or raw[colon] != 58 or raw[key_last] != _QUOTE:  # (58: a colon)
            return None
        key = last_quote(raw, key_last)
        name = _name(raw[key : key_last + 1]) if key >= first else None
        if name is None:
            return None
        members.append((name, start or 0, last + 1))
        if key == first:
            return first, members
        sep = _before_space(raw, key - 1)
        last = _before_space(raw, sep - 1)
        if raw[sep] != 44 or last < first:  # (44: a comma)
            return None


def _value_start(raw: bytes, last: int, steps: int) -> int | None:
    """Where the value whose last byte is at `last` starts (a walk back, as `_value_end`'s forward)."""
    end = raw[last]
    if end == _QUOTE:
        start = last_quote(raw, last)
        return start if start >= 0 else None
    if end not in _CLOSING:
        start = last
        while start > 0 and raw[start - 1] not in _BEFORE_SCALAR:
            start -= 1
            if last - start > _SCALAR_MOST:
                return None
        return start
    return _brackets(raw, last, steps, back=True)


def last_quote(raw: bytes, at: int) -> int:
    """The last quote before `at` that no backslash escapes; -1 if none."""
    while (at := raw.rfind(_QUOTE, 0, at)) >= 0 and escaped(raw, at):
        pass
    return at


def escaped(raw: bytes, quote: int) -> bool:
    """Whether a backslash escapes the quote at `quote` (an odd run of them before it)."""
    before = quote - 1
    while before >= 0 and raw[before] == _BACKSLASH:
        before -= 1
    return (quote - 1 - before) % 2 == 1


def _before_space(raw: bytes, pos: int) -> int:
    while pos >= 0 and raw[pos] in _SPACE:
        pos -= 1
    return pos


def _name(key: bytes) -> str | None:
    """A member's name from its quoted text; None if that is not a JSON string."""
    if key.find(b"\\") < 0:  # (no escape: the text between the quotes, as json.loads reads it, at a tenth its cost)
        if _CONTROL.search(key):
            return None
        try:
            return key[1:-1].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
    try:
        name = json.loads(key)
    except ValueError:
        return None
    return name if isinstance(name, str) else None


def _value_end(raw: bytes, start: int, steps: int = -1) -> int | None:
    """Where the value starting at `start` ends; None if it does not (or its brackets do not balance). `steps`: how
    many strings and brackets the walk may pass, EXHAUSTED after that (-1: no bound)."""
    first = raw[start : start + 1]
    if first == b'"':
        return _string_end(raw, start)
    if first not in (b"[", b"{"):
        scalar = _SCALAR.match(raw, start)
        return scalar.end() if scalar is not None else None
    return _brackets(raw, start, steps)


def _brackets(raw: bytes, bracket: int, steps: int, back: bool = False) -> int | None:
    """Where the container whose bracket is at `bracket` ends (after its closing one), or `back` from its closing
    one, starts; None if its brackets do not balance, EXHAUSTED past `steps` strings and brackets. The next (or
    last) of each mark comes from bytes.find (memory speed); one found inside a string skipped is looked up again
    past it. The Python steps are one per string and bracket."""
    size = len(raw)
    string: Callable[[bytes, int], int | None]
    if back:
        look, string, nearest, gone, deeper, pos = _rfind, last_quote, max, -1, _CLOSING, bracket
    else:
        look, string, nearest, gone, deeper, pos = _find, _string_end, min, size, _OPENING, bracket + 1
    ahead = [look(raw, mark, pos, size) for mark in _MARKS]
    depth = 1
    while True:
        at = nearest(ahead)
        if at == gone:
            return None
        if not steps:
            return EXHAUSTED
        steps -= 1
        mark = raw[at]
        if mark == _QUOTE:
            skipped = string(raw, at)
            if skipped is None or skipped < 0:
                return None
            pos = skipped
            ahead = [look(raw, m, pos, size) if (a >= pos if back else a < pos) else a
                     for a, m in zip(ahead, _MARKS, strict=True)]
            continue
        depth += 1 if mark in deeper else -1
        pos = at if back else at + 1
        if not depth:
            return pos
        ahead[_MARKS.index(mark)] = look(raw, mark, pos, size)


def after_space(raw: bytes | memoryview, pos: int) -> int:
    """Where the JSON white space from `pos` ends."""
    space = _WS.match(raw, pos)
    return space.end() if space is not None else pos


def _find(raw: bytes, mark: int, pos: int, size: int) -> int:
    at = raw.find(mark, pos)
    return size if at < 0 else at


def _rfind(raw: bytes, mark: int, pos: int, size: int) -> int:
    return raw.rfind(mark, 0, pos)


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
    return None if spans is None else _spliced(raw, spans, members)


def with_members_in_pieces(pieces: list[bytes], members: dict, present: Collection[str]) -> list[bytes] | None:
    """`with_members` for an object's text held as `pieces` (a large body as it arrived), `present` its keys: the
    pieces the members stand in joined and spliced, the others kept as they are (not copied). None where that
    cannot be done, and the caller joins them all: a member's quoted name found elsewhere too, or not within the
    first HEAD bytes."""
    wanted = frozenset(k for k in members if k in present)
    if any(_count(pieces, _quoted(k)) != 1 for k in wanted):
        return None
    taken, size = 0, 0
    while taken < len(pieces) and size < HEAD:
        size += len(pieces[taken])
        taken += 1
    head = b"".join(pieces[:taken])
    spans = member_spans(head, wanted, counted=True)
    # (a member's value that ends where the head does may go on in the next piece: a number cut in two; and a
    # member put in front needs to see whether the object is empty)
    cut = taken < len(pieces)
    if spans is None or (cut and any(spans[k][1] >= len(head) for k in wanted)):
        return None
    if cut and after_space(head, head.index(b"{") + 1) >= len(head):
        return None
    return [_spliced(head, spans, members), *pieces[taken:]]


HEAD = 64 << 10  # how far into a body held as pieces its members are looked for


def _count(pieces: list[bytes], needle: bytes) -> int:
    """How often `needle` occurs in the pieces' text (-1 when a piece is too short to tell across its ends)."""
    edge = len(needle) - 1
    if any(len(piece) < edge for piece in pieces[1:-1]):
        return -1
    found = sum([piece.count(needle) for piece in pieces])
    return found + sum([(a[-edge:] + b[:edge]).count(needle) for a, b in zip(pieces, pieces[1:])])


def _quoted(key: str) -> bytes:
    return json.dumps(key).encode()


def _spliced(raw: bytes, spans: dict[str, tuple[int, int]], members: dict) -> bytes:
    """`raw` with `members` set at their `spans` (those it has not go in front)."""
    edits = sorted((spans[k], compact(v)) for k, v in members.items() if k in spans)
    new = {k: v for k, v in members.items() if k not in spans}
    view = memoryview(raw)  # (the parts between the edits are not copied before the one join)
    parts: list[bytes | memoryview] = []
    done = 0
    if new:  # in front: `{"new": ...,` where the object opened
        done = raw.index(b"{") + 1
        empty = raw[after_space(raw, done) : after_space(raw, done) + 1] == b"}"
        parts.append(compact(new)[:-1] + (b"" if empty else b","))
    for (start, end), value in edits:
        parts += (view[done:start], value)
        done = end
    parts.append(view[done:])
    return b"".join(parts)


def compact(value: object) -> bytes:
    """`value` as compact JSON (what a spliced member's value is written as)."""
    return json.dumps(value, separators=(",", ":")).encode()


def rewritten(raw: bytes, before: dict, after: dict) -> bytes | None:
    """The text of `after`, a copy of `before` (json.loads of `raw`) with members added or replaced, written as
    `raw` with only those members spliced in; None if `after` drops one of `before`'s or `raw` is no object."""
    changed = changes(before, after)
    return None if changed is None else with_members(raw, changed, before)


def changes(before: dict, after: dict) -> dict | None:
    """The members `after` (a copy of `before`) adds or replaces; None if it drops one of `before`'s."""
    if any(k not in after for k in before):
        return None
    return {k: v for k, v in after.items() if k not in before or before[k] is not v}
