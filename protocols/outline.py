"""A large JSON body read without building its long strings: what every reader of the body gets from a full parse,
but each string longer than LONG_TEXT characters a `LongText` (its length, its first and last characters), and where
each top-level member's value lies in the text.

An agent's body is mostly base64 screenshots: parsing it whole builds a Python string for each (and the kernel faults
in fresh pages for them) only for the engine to throw them away. Here the long strings are found without a walk of
the text (a string longer than LONG_TEXT holds one of the offsets every LONG_TEXT bytes: only the quotes around those
offsets are looked up, with `bytes.find`), each checked as JSON would check it (its escapes and UTF-8; not for a raw
control character, which JSON writers escape: that would cost a scan of every byte, and the whole parse refuses it
where the body is rewritten), and the text without them is parsed by orjson (sse.loads, exactly as `json` reads it);
the members' places come from protocols/members.py's walks from both ends. Anything unsure (a run of the text between
two quotes that could be outside a string, a string orjson refuses) gives None: the caller parses the body whole.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

from protocols import sse
from protocols.evidence import HEAD, TAIL
from protocols.members import TopLevel, after_space, compact, escaped, last_quote, top_level

LONG_TEXT = 64 << 10  # characters: a string longer is read as a LongText
_QUOTE = b'"'
# Bytes a run of JSON text outside any string may hold (numbers, literals, brackets, separators, white space): a run
# between two quotes with any other byte is inside a string.
_STRING_ONLY = re.compile(rb"[^0-9eE+\-.,:\[\]{}truefalsn \t\n\r]")
_LOOKED_AT = 1024  # bytes at each end of a run searched for one of those
# A long string's stand-in in the text orjson reads: a NUL (no client's text starts so) and a per-process nonce.
_PLACEHOLDER = "\x00" + "".join(chr(97 + b % 26) for b in os.urandom(12)) + ":"


class LongText(str):
    """Stands in for a string longer than LONG_TEXT: its text is the real one's first HEAD and last TAIL characters,
    `len()` and `size` the real one's length, what a conversation's evidence reads of a long text
    (protocols/evidence.py). It is never written out: a body holding one is parsed whole before it is. (Written
    into a mark whole, an f-string, it gives its ends: what readers write so are ids, roles and names, never that
    long.)"""

    __slots__ = ("size",)
    size: int

    def __new__(cls, ends: str, size: int) -> LongText:
        text = super().__new__(cls, ends)
        text.size = size
        return text

    def __len__(self) -> int:
        return self.size

    def __reduce__(self) -> tuple[type[LongText], tuple[str, int]]:
        return LongText, (str.__str__(self), self.size)


def stand_in(text: str) -> LongText:
    """The LongText that stands in for `text`."""
    return LongText(text[:HEAD] + text[-TAIL:], len(text))


@dataclass(slots=True)
class Outline:
    """A body read without its long strings: the parse (`body`, a dict), whether it holds a LongText (`skeletal`), and
    the places of its top-level members as the walks found them (`members`)."""

    body: dict
    skeletal: bool
    members: TopLevel
    middle: frozenset[str]  # the members read from the text between the walks (`members.middle`)

    def places(self, names: Collection[str]) -> dict[str, tuple[int, int]] | None:
        """Where the value of each of `names` the body has lies in its text (the one json.loads keeps, where a
        member is repeated); None if one of them is among the members no walk passed."""
        if any(name in self.middle for name in names):
            return None
        found = {}
        for name, start, end in (*self.members.front, *self.members.back):
            if name in names:
                found[name] = (start, end)
        return found


def outline(raw: bytes, most: int | None = None) -> Outline | None:
    """`raw` (a JSON object's text) read as json.loads reads it, its long strings as LongText; None where that cannot
    be made sure of (the caller parses it whole), or where more than `most` bytes are outside the long strings.
    ValueError and RecursionError as sse.loads raises them (the caller parses it whole to say which)."""
    longs = long_strings(raw)
    if longs is None or (most is not None and len(raw) - sum(end - at for at, (end, _) in longs.items()) > most):
        return None
    members = top_level(raw)
    if members is None:
        return None
    body: dict = {}
    for name, start, end in members.front:
        body[name] = _value(raw, start, end, longs)
    middle: dict = {}
    if members.middle[0] < members.middle[1]:
        a, b = members.middle
        read = _value(raw, a, b, longs, b"{", b"}")
        if not isinstance(read, dict):
            return None
        middle = read
        body.update(middle)
    for name, start, end in members.back:
        body[name] = _value(raw, start, end, longs)
    return Outline(body, bool(longs), members, frozenset(middle))


def _value(raw: bytes, start: int, end: int, longs: dict[int, tuple[int, LongText]], before: bytes = b"",
           after: bytes = b"") -> object:
    """The JSON text raw[start:end] read, its long strings (by their opening quote) put back as their LongText."""
    inside = [at for at in longs if start <= at < end]
    if not inside:
        return sse.loads(raw[start:end] if not before else before + raw[start:end] + after)
    view = memoryview(raw)  # (the text between the long strings is copied once, by the join)
    parts: list[bytes | memoryview] = [before]
    done, stand_ins = start, dict[str, LongText]()
    for at in inside:
        after_it, text = longs[at]
        name = f"{_PLACEHOLDER}{len(stand_ins)}"
        stand_ins[name] = text
        parts += (view[done:at], b'"\\u0000', name[1:].encode(), b'"')
        done = after_it
    parts += (view[done:end], after)
    value = sse.loads(b"".join(parts))
    return _put_back(value, stand_ins)


def _put_back(value: object, stand_ins: dict[str, LongText]) -> object:
    """`value` with each placeholder string replaced by its LongText, in place (the walk stops once all are)."""
    if isinstance(value, str):
        return stand_ins.get(value, value)
    left = len(stand_ins)
    stack: list = [value]
    while stack and left:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for k, v in pairs:
            kind = v.__class__
            if kind is str:
                if v.startswith(_PLACEHOLDER) and v in stand_ins:
                    item[k] = stand_ins[v]
                    left -= 1
            elif kind is dict or kind is list:
                stack.append(v)
    return value


def long_strings(raw: bytes) -> dict[int, tuple[int, LongText]] | None:
    """The strings of `raw` longer than LONG_TEXT characters that are values, not keys: by their opening quote,
    where they end (after the closing quote) and their LongText; None where a run between two quotes may not be a
    string, or a long string is not what JSON takes."""
    found: dict[int, tuple[int, LongText]] = {}
    size = len(raw)
    ascii_only = raw.isascii()
    at = LONG_TEXT
    while at < size:
        closing = _next_quote(raw, at)
        opening = last_quote(raw, at)
        if closing < 0:
            break
        if opening < 0 or closing - opening - 1 <= LONG_TEXT:
            at += LONG_TEXT
            continue
        start, end = opening + 1, closing
        if not (_STRING_ONLY.search(raw, start, min(end, start + _LOOKED_AT))
                or _STRING_ONLY.search(raw, max(start, end - _LOOKED_AT), end)):
            return None  # (numbers and brackets all along: a string of them, or no string at all)
        after = closing + 1
        while after < size and raw[after] in b" \t\n\r":
            after += 1
        if raw[after : after + 1] != b":":  # (a long key stays in the text)
            text = _checked(raw, start, end, ascii_only)
            if text is None:
                return None
            if len(text) > LONG_TEXT:
                found[opening] = (closing + 1, text)
        at = (closing // LONG_TEXT + 1) * LONG_TEXT
    return found


def _checked(raw: bytes, start: int, end: int, ascii_only: bool) -> LongText | None:
    """The string whose text is raw[start:end], as JSON reads it (as a LongText); None if JSON refuses it."""
    if raw.find(b"\\", start, end) < 0 and (ascii_only or raw[start:end].isascii()):
        return LongText((raw[start : start + HEAD] + raw[end - TAIL : end]).decode("ascii"), end - start)
    try:
        text = sse.loads(raw[start - 1 : end + 1])
    except (ValueError, RecursionError):
        return None
    return stand_in(text) if isinstance(text, str) else None


def _next_quote(raw: bytes, at: int) -> int:
    """The first quote at or after `at` that no backslash escapes; -1 if none."""
    while (at := raw.find(_QUOTE, at)) >= 0 and escaped(raw, at):
        at += 1
    return at


def spliced_pieces(pieces: Sequence[bytes | memoryview], places: dict[str, tuple[int, int]], members: dict
                   ) -> list[bytes | memoryview] | None:
    """The object's text held as `pieces` with `members` set: each at its value's place in the whole text
    (`places`, as protocols/outline.py found them), those without one in front; the bytes between as they were, not
    copied. None where a member goes in front of an object with none (`places` empty)."""
    edits = sorted((places[k], compact(v)) for k, v in members.items() if k in places)
    new = {k: v for k, v in members.items() if k not in places}
    if new:
        brace = after_space(pieces[0], 0) if pieces else 0
        if not places or bytes(pieces[0][brace : brace + 1]) != b"{":
            return None
        edits.insert(0, ((brace + 1, brace + 1), compact(new)[1:-1] + b","))
    starts = list(accumulate(map(len, pieces), initial=0))

    def between(a: int, b: int) -> Iterator[memoryview]:
        i = bisect_right(starts, a) - 1
        while a < b:
            end = min(b, starts[i + 1])
            yield memoryview(pieces[i])[a - starts[i] : end - starts[i]]
            a, i = end, i + 1

    out: list[bytes | memoryview] = []
    done = 0
    for (start, end), value in edits:
        out += between(done, start)
        out.append(value)
        done = end
    out += between(done, starts[-1])
    return [piece for piece in out if len(piece)]
