"""Mid-stream resume (issue 21), the pure parts: what the client was given of a cut answer, how its continuation is
asked for, and how the continuation's events are joined to what the client already has.

Per client protocol, one module `protocols/<name>/resume.py` makes its `Resumer` (`RESUMER`), which the protocol's
registration carries (`Registration.resumer`). The engine, for a stream cut after its first token:
1. has fed an `Observer` every event the repairer was fed (and every block it forwarded unparsed, `quiet`);
2. asks it what was delivered (`Delivered`); when `resumable` is false (a tool call or reasoning was open and cannot
   be continued, or the request asked for JSON and its JSON began: `asking.STRUCTURED`), the stream ends honestly as
   before;
3. asks how the continuation will really be asked (`method_for`: `prefill` where the target's model continues a
   trailing assistant turn and the resumer says this request and partial answer can be carried so,
   `Resumer.prefills`; else `instruction`; `again` when nothing reached the client), and records, logs and builds the
   seam from that method; builds the continuation request in the client's protocol (`Resumer.continuation_body`, by
   exactly that method), asking for no more output than the client's cap leaves (`Resumer.output_cap`; when none is
   left, `capped` makes `delivered` not resumable: `asking.CAP_REACHED`); the usual leg machinery translates it to
   the target;
4. feeds the continuation's events, parsed in the client's protocol, to a `Splicer` (`Observer.splicer(seam)`), and
   the events it returns to the same repairer: one message for the client (`seam.Seam` trims the overlap).

While resume is on, what the client is sent passes a `Holder` first (`Resumer.holder`, for a protocol whose tool
calls arrive in fragments; the engine makes one when its `marker` first comes by): a tool call reaches the client
whole or not at all, so a cut inside one resumes from the last complete block, and the observer never sees a half
call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from protocols.capabilities import Capabilities
from protocols.events import Event
from protocols.resume.asking import CAP_REACHED, OutputCap
from protocols.resume.seam import Seam

Method = Literal["prefill", "instruction", "again"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """What the client holds of a cut answer."""

    text: str  # the answer's text as the client has it, all text blocks joined (the partial a continuation extends)
    resumable: bool  # False: the cut fell where no continuation can go on (inside a tool call or reasoning, ...)
    why_not: str = ""  # when not resumable: a few words for the log and the flow
    output_tokens: int = 0  # the output tokens the answer so far spent (reported, else estimated: `asking.spent`)

    def carried(self) -> tuple[dict, ...]:
        """The partial answer's blocks a continuation request carries besides its text (whole tool calls), in the
        protocol's own shape."""
        return ()

    @property
    def nothing(self) -> bool:
        """Nothing a request can carry reached the client (a cut inside the answer's first tool call, held back:
        the client has seen heartbeats, perhaps reasoning): there is nothing to go on from, so the continuation is
        the request again, as it came (`again`), not an instruction to continue an empty turn."""
        return not self.text and not self.carried()


class Splicer(Protocol):
    failed: bool  # the seam refused the continuation (it started over, or read two ways): none of it reached the client

    def feed(self, event: Event) -> list[Event]:
        """One event of the continuation (in the client's protocol) in; the events the client's repairer gets."""
        ...

    def finish(self) -> list[Event]:
        """At the continuation's end (before its completion events are fed, or at a cut): what the seam still held."""
        ...


class SeamSplicer:
    """What every splicer does around its seam: the continuation's events held while the seam decides (`_pending`),
    released with the text it let through (`_release`: each protocol's own), or all dropped when the seam refuses
    the continuation (`failed`)."""

    def __init__(self, seam: Seam) -> None:
        self.failed = False
        self._seam = seam
        self._pending: list[dict] = []

    def finish(self) -> list[Event]:
        return self._flush()

    def _through_seam(self, event: dict, text: str) -> list[Event]:
        """An event of the continuation with its `text` (taken out of it) fed to the seam: held until the seam
        decides, then released with those held before it; once decided, passed on with what the seam lets by."""
        released = self._seam.feed(text)
        if self._seam.failed:
            return self._fail()
        if not self._seam.decided:
            self._pending.append(event)
            return []
        if self._pending:  # the seam decided on this event: it goes out with those held before it
            self._pending.append(event)
            return self._release(released)
        return self._passed(event, released)

    def _flush(self) -> list[Event]:
        """At the continuation's end, or an event no more of its text can come before: what the seam still held,
        decided now, with the events held."""
        if self._seam.decided or self.failed:
            return []
        released = self._seam.finish()
        if self._seam.failed:
            return self._fail()
        return self._release(released)

    def _release(self, text: str) -> list[Event]:
        """The events held while the seam decided, with `text`, what it let through of theirs."""
        raise NotImplementedError

    def _passed(self, event: dict, text: str) -> list[Event]:
        """An event with the text the seam, decided before it, lets by of its own."""
        raise NotImplementedError

    def _fail(self) -> list[Event]:
        self.failed, self._pending = True, []
        return []


class Observer(Protocol):
    def feed(self, event: Event) -> None:
        """An event the client's repairer was fed, in order."""
        ...

    def quiet(self, block: bytes) -> None:
        """A block forwarded to the client without being parsed (Repairer.quiet): kept, read only at a cut."""
        ...

    def delivered(self) -> Delivered: ...

    def splicer(self, seam: Seam) -> Splicer:
        """A splice of a continuation onto what was observed (ids, indexes, sequence numbers continue)."""
        ...


class Holder(Protocol):
    holding: bool  # a tool call is open: everything bound for the client waits (order is kept)
    # In every event that opens a tool call (a class attribute: known before a holder is made): a block without it,
    # while none is open, passes as it is.
    marker: ClassVar[bytes]

    def feed(self, out: bytes) -> bytes:
        """Whole SSE events bound for the client, in order; what may be sent now. An open tool call's events (and
        any after them) are held until the event that completes the call, then released together. Cheap when no
        tool call is open (a bytes search, no parsing). Held bytes never released (a cut) are simply dropped."""
        ...


class Resumer(Protocol):
    name: str  # the client protocol's registered name

    @property
    def output_cap(self) -> OutputCap:
        """Where its requests cap the answer's output, and the least its API takes (a continuation asks for what
        the client's cap leaves: `continuation_body`, `capped`)."""
        ...

    @property
    def holder(self) -> type[Holder] | None:
        """What holds a tool call back until it is whole: one made for a client stream (`holder()`) at its first
        `marker`; None when the protocol's tool calls arrive whole (Gemini)."""
        ...

    def observer(self, body: dict) -> Observer:
        """A fresh observer for one client stream; `body` is the client's request."""
        ...

    def prefills(self, body: dict, delivered: Delivered) -> bool:
        """Whether the continuation of `delivered`, for the client's request `body`, can be asked by prefill (of a
        model that takes one): not when the partial answer ends in a tool call or carries one (its result must
        follow it: the request then ends in a tool turn, not in the assistant's), nor when the request cannot take
        a prefill (Anthropic with thinking on, structured output)."""
        ...

    def continuation_body(self, body: dict, delivered: Delivered, method: Method, caps: Capabilities) -> dict:
        """The client's request asking for the rest of the answer, by exactly `method` (`method_for`'s): `prefill`
        puts the partial answer as a trailing assistant (model) turn (whitespace stripped where
        `caps.prefill_strip`, `caps.prefill_marker` set on it); `instruction` adds it as an assistant turn (its tool
        calls with a result each: not run yet) followed by a short user turn asking to continue exactly where it
        stopped, without repeating. (`again` is the client's request itself: see `continuation_body` below.)"""
        ...


def method_for(resumer: Resumer, body: dict, delivered: Delivered, caps: Capabilities,
               refuses_prefill: bool = False) -> Method:
    """How the continuation of `delivered` is really asked of a model with `caps` (`refuses_prefill`: it refused
    one), for the client's request `body`: what the flow records, the log says and the seam expects."""
    if delivered.nothing:
        return "again"
    takes = caps.prefill and not refuses_prefill
    return "prefill" if takes and resumer.prefills(body, delivered) else "instruction"


def continuation_body(resumer: Resumer, body: dict, delivered: Delivered, method: Method, caps: Capabilities
                      ) -> dict:
    """The continuation request in the client's protocol (the client's `body` itself when asked `again`), asking for
    at most what the client's output cap leaves of it (a request without a cap asks for none)."""
    asked = body if method == "again" else resumer.continuation_body(body, delivered, method, caps)
    left = output_left(resumer, body, delivered)
    return asked if left is None else resumer.output_cap.asking(asked, left)


def output_left(resumer: Resumer, body: dict, delivered: Delivered) -> int | None:
    """The output the client's cap in `body` leaves after what `delivered` spent; None when it sets no cap."""
    cap = resumer.output_cap.of(body)
    return None if cap is None else cap - delivered.output_tokens


def capped(resumer: Resumer, body: dict, delivered: Delivered) -> Delivered:
    """`delivered`, not resumable when its answer spent the client's output cap (or all but less than the protocol's
    API takes: a continuation asking for more would run past it): the answer ends with the protocol's token-cap
    stop, as the uncut one would have."""
    left = output_left(resumer, body, delivered)
    if not delivered.resumable or left is None or left >= resumer.output_cap.least:
        return delivered
    return dataclasses.replace(delivered, resumable=False, why_not=CAP_REACHED)


# How vendors word a refusal of a trailing assistant (model) turn (resume-notes §1), lowercased.
PREFILL_REFUSALS = ("prefill", "ending with a model turn", "must end with a user message",
                    "expected last role user or tool")


def refuses_prefill(status: int, body: bytes) -> bool:
    """Whether an error answer to a continuation asked by prefill refuses the prefill itself."""
    if status != 400:
        return False
    text = body[:4096].decode("utf-8", "replace").lower()
    return any(words in text for words in PREFILL_REFUSALS)


def seam_for(delivered: Delivered, method: Method, caps: Capabilities) -> Seam:
    """The seam of a continuation asked for by `method` (the prefill as `prefill_text` sends it; asked `again`, the
    answer from its start: the client has none of its text)."""
    text = delivered.text
    if method == "instruction":
        return Seam(text, exact=False)
    sent = text.rstrip() if caps.prefill_strip else text
    return Seam(text, exact=True, stripped=text[len(sent):], echo=sent if caps.prefill_echo else "")


__all__ = ["CAP_REACHED", "Delivered", "Holder", "Method", "Observer", "OutputCap", "Resumer", "Seam", "SeamSplicer",
           "Splicer", "capped", "continuation_body", "method_for", "output_left", "refuses_prefill", "seam_for"]
