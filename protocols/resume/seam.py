"""The seam between the text a client already has and a continuation's text, sans-I/O.

A continuation is fed in as its text deltas arrive. Its first characters are held back (HOLD, or for as long as they
may still be a repeat of the partial's end) until it is known how much of them repeats what the client has. After a
prefill the vendor should go on exactly (a vendor that echoes the prefill, Mistral, says it first); asked in words, a
model often starts a few words back. Either way, a repeat of the partial's end is removed where the evidence fits
(`Seam._verdict`), whitespace comparing equal to whitespace of any kind or length:
- two or more words, from a word's start to the partial's end;
- one whole word (the partial ends after it, or the continuation goes on after it with no letter);
- MIN_OVERLAP characters or more, wherever they start (a model may go back to a piece of a word);
- whitespace the partial ends with, said again (or the whitespace a prefill could not carry, Anthropic's), not
  what the continuation adds to it (a blank line, the next line's indent);
- all of a partial shorter than MIN_OVERLAP characters, ending with a whole word: the continuation started over.
A continuation that reads both ways is refused rather than guessed at: one that starts as the answer started (a
longer partial said again from its start, a short partial's first word), and one that says the partial's last word
again longer (" the" + " theme park": "the" again, finished, or the next word?). Refused, it reaches the client not
at all, and the answer ends honestly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MIN_OVERLAP = 8  # characters: a repeat this long is trusted wherever it starts; a shorter one must be whole words
HOLD = 64  # characters held back before an overlap is decided, at least
# Characters of the partial's end a repeat in other whitespace is looked for in (or 4 times what is held, if more);
# a longer stretch said again is followed wherever it starts, as it was written.
LOOK_BACK = 4096
STARTED_OVER = "started over"
UNCLEAR = "unclear seam"

_RUNS = re.compile(r"\s+|\S+")
_WORDS = re.compile(r"\w+")
_TRIM, _WEAK = "trim", "weak"  # verdicts on a repeat; a refusal is its reason (STARTED_OVER, UNCLEAR)


def _collapsed(text: str) -> tuple[str, list[int]]:
    """`text` with each whitespace run as one space, and for each of its characters the end in `text` of what it
    stands for."""
    out: list[str] = []
    ends: list[int] = []
    for run in _RUNS.finditer(text):
        piece = run.group()
        if piece[0].isspace():
            out.append(" ")
            ends.append(run.end())
        else:
            out.append(piece)
            ends.extend(range(run.start() + 1, run.end() + 1))
    return "".join(out), ends


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class Seam:
    """Fed a continuation's text (`feed`, then `finish` at its end), it returns what the client gets.

    `tail`: the text of the answer the client has (the open text block); `exact`: the continuation came from a
    prefill; `stripped`: whitespace at the end of `tail` left out of the prefill; `echo`: the prefill as sent, when
    the vendor repeats it first. After a decision, `trimmed` is how many characters were dropped; `failed` means the
    continuation started over, read two ways at the seam, or did not echo as expected, and must not be spliced
    (`refused` says which).
    """

    def __init__(self, tail: str, *, exact: bool, stripped: str = "", echo: str = "", hold: int = HOLD) -> None:
        self.tail, self.exact, self.stripped, self.echo = tail, exact, stripped, echo
        self.hold = hold
        self.held = ""
        self.decided = False
        self.failed = False
        self.refused = ""
        self.trimmed = 0
        self._along = 0  # where in the partial a long repeat may be under way (see _repeating)

    def feed(self, text: str) -> str:
        if self.failed:
            return ""
        if self.decided:
            return text
        self.held += text
        return self._decide(final=False)

    def finish(self) -> str:
        """At the continuation's end: what is still held back, once decided."""
        if self.decided or self.failed:
            return ""
        return self._decide(final=True)

    def _decide(self, final: bool) -> str:
        cut = self._cut(final)
        if cut is None:
            return ""
        if isinstance(cut, str):
            self.failed, self.refused, self.held = True, cut, ""
            return ""
        out = self.held[cut:]
        self.decided, self.trimmed, self.held = True, cut, ""
        return out

    def _cut(self, final: bool) -> int | str | None:
        """How many held characters repeat what the client has; None: not known yet; a reason: refused."""
        held, n = self.held, 0
        if self.exact and self.echo:
            if len(held) < len(self.echo):
                return None if self.echo.startswith(held) and not final else UNCLEAR
            if not held.startswith(self.echo):
                return UNCLEAR
            n = len(self.echo)
        rest = held[n:]
        if len(rest) < self.hold and not final:
            return None
        restarts = self._restarts(rest, final)
        if restarts is None:
            return None
        if restarts:
            return STARTED_OVER
        cut = self._overlap(rest, final)
        return cut if cut is None or isinstance(cut, str) else n + cut

    def _restarts(self, text: str, final: bool) -> bool | None:
        """Whether `text` begins as a partial of MIN_OVERLAP characters or more began (None: too short to tell)."""
        m = min(len(self.tail), self.hold)
        if m < MIN_OVERLAP:
            return False
        if len(text) < m:
            return None if self.tail.startswith(text) and not final else False
        return text[:m] == self.tail[:m]

    def _overlap(self, rest: str, final: bool) -> int | str | None:
        """The characters of `rest` that repeat the partial's end (the longest repeat the evidence supports)."""
        tail = self.tail
        if not tail or not rest:
            return 0
        if not final and self._repeating(rest):
            return None  # a stretch of the partial said again, still under way
        hn, ends = _collapsed(rest)
        start = max(0, len(tail) - max(LOOK_BACK, 4 * len(rest) + self.hold))
        tn, _ = _collapsed(tail[start:])
        before = (" " if tail[start - 1].isspace() else tail[start - 1]) if start else ""
        lead = hn[0] == " "
        firsts = {hn[0], hn[1]} if lead and len(hn) > 1 else {hn[0]}
        said = (hn, hn[1:])
        for s in sorted(i for c in firsts for i in _positions(tn, c)):
            skip = 1 if lead and tn[s] != " " else 0  # (whitespace before the repeat the partial has not there)
            if len(tn) - s <= len(hn) - skip and hn.startswith(tn[s:], skip):
                x = tn[s:]
                at = skip + len(x)
            elif tn.startswith(said[skip], s):
                if not final:
                    return None  # it may still be repeating a longer stretch
                continue  # (it ended inside a stretch of the partial: not a repeat of its end)
            else:
                continue
            if at == len(hn) and not final:
                return None  # what comes next tells whether the repeat ends with a whole word
            prev = tn[s - 1] if s else before
            whole = start == 0 and (s == 0 or s == 1 and tn[0] == " ")
            verdict = self._verdict(x, prev, whole, hn, at)
            if verdict == _TRIM:
                if x[-1] != " ":
                    return ends[at - 1]
                space = ends[at - 2] if at >= 2 else 0  # the continuation's whitespace where the partial's ends
                return space + self._space_said_again(rest[space:ends[at - 1]])
            if verdict != _WEAK:
                return verdict
        return STARTED_OVER if self._short_restart(rest) else 0

    def _repeating(self, rest: str) -> bool:
        """Whether `rest` is a stretch of the partial said again that does not reach its end yet (the continuation
        may still be repeating it): found once, then followed as the continuation grows."""
        at, tail = self._along, self.tail
        if not tail.startswith(rest, at) or at + len(rest) >= len(tail):
            at = tail.find(rest, at, len(tail) - 1)  # (a longer stretch said again starts no earlier)
            self._along = len(tail) if at < 0 else at
        return at >= 0

    def _verdict(self, x: str, prev: str, whole: bool, hn: str, at: int) -> str:
        """Whether the repeat `x` of the partial's end (normalised; `prev`: the partial's character before it,
        "" at its start; `whole`: all of the partial), followed in the continuation by `hn[at:]`, is one."""
        # Whole words: the partial ends after one, or the continuation goes on after the repeat with no letter.
        closed = not _word(x[-1]) or at == len(hn) or not _word(hn[at])
        if whole:  # said again from its start: a short partial's restart is trimmed where it reads one way
            return _TRIM if len(self.tail) < MIN_OVERLAP and closed else STARTED_OVER
        if len(x) >= MIN_OVERLAP:
            return _TRIM
        if not (x[0] == " " or prev in ("", " ") or not (_word(prev) and _word(x[0]))):
            return _WEAK  # (it starts inside a word: too short to tell from the text itself)
        words = len(_WORDS.findall(x))
        if words >= 2:
            return _TRIM
        if words == 0:  # whitespace (a separator said again) or punctuation alone
            return _TRIM if x == " " else _WEAK
        # One whole word; the partial's last word said again longer reads two ways: that word again, finished, or
        # the next word or letters (" the" + " theme park", " ma" + "mama said").
        return _TRIM if closed else UNCLEAR

    def _space_said_again(self, space: str) -> int:
        """How much of the continuation's whitespace `space`, where the partial ends with whitespace, says that
        again, whatever its kind or length: as many line ends as the partial's (more are new: a blank line), and the
        indent after them it repeats (more is new); spaces that come where the partial has a line end are the next
        line's indent."""
        tail = self.tail
        i = len(tail)
        while i and tail[i - 1].isspace():
            i -= 1
        ending = tail[i:]
        lines = ending.count("\n")
        if not lines:
            end = space.find("\n")
            return len(space) if end < 0 else end
        at = 0
        for _ in range(lines):
            end = space.find("\n", at)
            if end < 0:
                return 0
            at = end + 1
        indent = ending[ending.rfind("\n") + 1:]
        return at + len(indent) if space.startswith(indent, at) else at

    def _short_restart(self, rest: str) -> bool:
        """A partial shorter than MIN_OVERLAP whose first whole word the continuation starts with: it started over
        (the one that says all of the partial again is trimmed instead)."""
        if len(self.tail) >= MIN_OVERLAP:
            return False
        tail = self.tail.lstrip()
        first = _WORDS.match(tail)
        if first is None or first.end() == len(tail):
            return False
        said = rest.lstrip()
        word = first.group()
        return said.startswith(word) and (len(said) == len(word) or not _word(said[len(word)]))


def _positions(text: str, ch: str) -> Iterator[int]:
    i = text.find(ch)
    while i >= 0:
        yield i
        i = text.find(ch, i + 1)
