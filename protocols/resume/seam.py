"""The seam between the text a client already has and a continuation's text, sans-I/O.

A continuation is fed in as its text deltas arrive. Its first characters are held back until it is known how much of
them repeats what the client has: with an exact prefill nothing does, except the whitespace that could not be sent
(Anthropic refuses a prefill ending in it) and, for a vendor that echoes the prefill (Mistral), the prefill itself;
with a continuation asked for in words, the longest repeat of the partial's end of at least `min_overlap` characters
(a shorter match may be the text itself). A continuation whose start is the answer's start started over: it fails.
"""

from __future__ import annotations

MIN_OVERLAP = 8  # characters: a shorter repeat is not trusted (a model that started over matches mid-word)
HOLD = 64  # characters held back before an overlap is decided, at least


class Seam:
    """Fed a continuation's text (`feed`, then `finish` at its end), it returns what the client gets.

    `tail`: the text of the answer the client has (the open text block); `exact`: the continuation came from a
    prefill; `stripped`: whitespace at the end of `tail` left out of the prefill; `echo`: the prefill as sent, when
    the vendor repeats it first. After a decision, `trimmed` is how many characters were dropped; `failed` means the
    continuation started over (or did not echo as expected) and must not be spliced.
    """

    def __init__(self, tail: str, *, exact: bool, stripped: str = "", echo: str = "",
                 min_overlap: int = MIN_OVERLAP, hold: int = HOLD) -> None:
        self.tail, self.exact, self.stripped, self.echo = tail, exact, stripped, echo
        self.min_overlap, self.hold = min_overlap, hold
        self.held = ""
        self.decided = False
        self.failed = False
        self.trimmed = 0

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
        cut = self._exact_cut(final) if self.exact else self._overlap_cut(final)
        if cut is None:
            return ""
        if cut < 0:
            self.failed, self.held = True, ""
            return ""
        out = self.held[cut:]
        self.decided, self.trimmed, self.held = True, cut, ""
        return out

    def _restarts(self, text: str, final: bool) -> bool | None:
        """Whether `text` begins as the answer began (None: too short to tell yet)."""
        m = min(len(self.tail), self.hold)
        if m < self.min_overlap:
            return False
        if len(text) < m:
            return None if self.tail.startswith(text) and not final else False
        return text[:m] == self.tail[:m]

    def _exact_cut(self, final: bool) -> int | None:
        held, n = self.held, 0
        if self.echo:
            if len(held) < len(self.echo):
                return None if self.echo.startswith(held) and not final else -1
            if not held.startswith(self.echo):
                return -1
            n = len(self.echo)
        rest, k = held[n:], 0
        while k < len(self.stripped) and k < len(rest) and rest[k] == self.stripped[k]:
            k += 1
        if k == len(rest) and k < len(self.stripped) and not final:
            return None
        restarts = self._restarts(rest[k:], final)
        if restarts is None:
            return None
        return -1 if restarts else n + k

    def _overlap_cut(self, final: bool) -> int | None:
        held, tail = self.held, self.tail
        restarts = self._restarts(held, final)
        if restarts is None or (len(held) < self.hold and not final):
            return None
        if restarts:
            return -1
        for k in range(len(tail), self.min_overlap - 1, -1):
            m = min(k, len(held))
            if tail[len(tail) - k:len(tail) - k + m] == held[:m]:
                if k <= len(held):
                    return k
                return len(held) if final else None  # it may still be repeating a longer stretch
        return 0
