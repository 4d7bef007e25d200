"""Running a cut stream and its continuation through a protocol's resume module as the engine does: the first
attempt's events through the repairer (and the observer), then the continuation's through the splicer and the same
repairer. And the cases the seam's property tests draw: an answer as a model says it, where it was cut, and how the
continuation starts."""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Callable

from hypothesis import assume
from hypothesis import strategies as st

import protocols
import protocols.resume
from protocols.base import Repairer
from protocols.capabilities import Capabilities
from protocols.events import Event
from protocols.resume import Delivered, Holder, Method, seam_for
from protocols.resume.seam import MIN_OVERLAP, Seam
from tests.support import fake_vendor
from tests.support.streams import parse, play

CREATED = 1761000000


def vendor_events(protocol: str, fault: fake_vendor.Fault, index: int = 0, body: dict | None = None) -> list:
    events = {"openai_responses": fake_vendor.responses_events, "gemini": fake_vendor.gemini_events,
              "openai_chat": fake_vendor.chat_events, "anthropic_messages": fake_vendor.anthropic_events}[protocol]
    ctx = fake_vendor.Ctx(index, f"fake-model-{index}", CREATED + index, body or {"model": "fake-model"}, fault)
    return list(events(ctx))


def vendor_stream(protocol: str, fault: fake_vendor.Fault, index: int = 0, body: dict | None = None) -> bytes:
    return b"".join(ev.data for ev in vendor_events(protocol, fault, index, body))


def through_delta(protocol: str, fault: fake_vendor.Fault, n: int, body: dict | None = None) -> tuple[bytes, int]:
    """The fault's stream, and how many of its events go up to its n-th content delta (where to cut it)."""
    events = vendor_events(protocol, fault, 0, body)
    deltas = [i for i, ev in enumerate(events) if ev.delta]
    return b"".join(ev.data for ev in events), deltas[n - 1] + 1 if n else 0


@dataclasses.dataclass
class Run:
    delivered: Delivered
    out: bytes = b""
    failed: bool = False
    method: Method | None = None


def cut_and_resume(protocol: str, first: bytes, k: int, continuation: bytes | None, *, exact: bool = False,
                   request: dict | None = None, seam: Callable[[Delivered], Seam] | None = None) -> Run:
    """`first` cut after its k-th event; then `continuation` (if any) spliced on, through `seam` (of what was
    delivered; else a plain one, `exact` or not); the bytes the client received."""
    resumer = protocols.registered(protocol).resumer
    assert resumer is not None
    request = request or {"model": "fake-model", "stream": True}
    repairer = protocols.get(protocol).repairer(request)
    observer = resumer.observer(request)
    out = b""
    for event in parse(first)[:k]:
        observer.feed(event)
        out += repairer.feed(event)
    run = Run(observer.delivered(), out)
    if continuation is None:
        return run
    splicer = observer.splicer(seam(run.delivered) if seam else Seam(run.delivered.text, exact=exact))
    spliced = [e for event in parse(continuation) for e in splicer.feed(event)] + splicer.finish()
    run.failed = splicer.failed
    run.out += play(repairer, spliced) + repairer.end()
    return run


def held_cut_and_resume(protocol: str, first: bytes, k: int, continuation: Callable[[Delivered, Method], bytes], *,
                        caps: Capabilities, request: dict) -> Run:
    """As the engine runs it (rewrite/exchange/resume.py): `first` cut after its k-th event, what its repairer
    passes going through the protocol's holder (a tool call whole or not at all) to the client; at the cut, an
    observer and the client's repairer fed what the client was sent, the continuation asked as `method_for` decides
    for a model with `caps`; `continuation(delivered, method)` (the vendor's answer) through a repairer of its own,
    a holder, the splicer and the client's repairer; an honest ending where the seam refused it."""
    resumer = protocols.registered(protocol).resumer
    assert resumer is not None
    proto = protocols.get(protocol)

    def held(repairer: Repairer, holder: Holder | None, event: Event) -> bytes:
        out = repairer.feed(event)
        return holder.feed(out) if holder is not None else out

    def new_holder() -> Holder | None:  # (none: the protocol's calls arrive whole)
        return resumer.holder() if resumer.holder is not None else None

    repairer, holder = proto.repairer(request), new_holder()
    out = b"".join(held(repairer, holder, event) for event in parse(first)[:k])
    observer, client = resumer.observer(request), proto.repairer(request)
    for event in parse(out):
        observer.feed(event)
        client.feed(event)
    delivered = observer.delivered()
    run = Run(delivered, out)
    if not delivered.resumable:
        run.out += client.end()
        return run
    run.method = protocols.resume.method_for(resumer, request, delivered, caps)
    splicer = observer.splicer(seam_for(delivered, run.method, caps))
    inner, holder = proto.repairer(request), new_holder()
    for event in parse(continuation(delivered, run.method)):
        spliced = [s for e in parse(held(inner, holder, event)) for s in splicer.feed(e)]
        if splicer.failed:
            break
        run.out += play(client, spliced)
    run.failed = splicer.failed
    if not run.failed and not client.complete:
        run.out += play(client, splicer.finish())
    if not client.complete:
        run.out += client.end()
    return run


# ------------------------------------------------------------------------------------------------------------------
# The seam's cases. An answer is distinct words, none the start of another (so that it reads one way only), each led
# by its whitespace (one space or line end) as a model's tokens are; a cut falls after whitespace, at a word's end,
# inside a word or within the first characters; the continuation says the answer's rest after a head: the text from
# 0-8 tokens back, or from the start (it started over), perhaps in other whitespace.

CUTS = ("whitespace", "word end", "inside a word", "first characters")
# (whitespace before, letters, a digit: words end with their only digit, so none starts another; punctuation after)
TOKENS = st.lists(st.tuples(st.sampled_from((" ", " ", " ", "\n")), st.text(string.ascii_lowercase, max_size=6),
                            st.integers(0, 9), st.sampled_from(("", "", ",", "."))),
                  min_size=4, max_size=24, unique_by=lambda token: token[1:3])
# Whitespace said otherwise: a space as other spaces or a tab, a line end with spaces before it (a line end as spaces
# is not the same text: after one, spaces are the next line's indent).
OTHER_SPACE, OTHER_LINE_END = (" ", "  ", "\t"), ("\n", " \n", "\t\n")
# How a continuation is asked for: its seam, from what the client has.
ASKED: dict[str, tuple[Method, Capabilities]] = {
    "instruction": ("instruction", Capabilities()),
    "prefill": ("prefill", Capabilities(prefill=True)),  # (Gemini)
    "prefill, stripped": ("prefill", Capabilities(prefill=True, prefill_strip=True)),  # (Anthropic)
    "prefill, echoed": ("prefill", Capabilities(prefill=True, prefill_echo=True)),  # (Mistral)
}


@dataclasses.dataclass(frozen=True)
class Case:
    tokens: tuple[str, ...]  # the answer as the model says it
    kind: str  # of cut (CUTS)
    cut: int  # characters of the answer the client had
    start: int  # where the continuation's head starts in the answer (`cut`: it has none; 0: it started over)
    head: str  # what it says before the answer's rest: the answer from `start`, perhaps in other whitespace

    @property
    def answer(self) -> str:
        return "".join(self.tokens)

    @property
    def partial(self) -> str:
        return self.answer[:self.cut]

    @property
    def rest(self) -> str:
        return self.answer[self.cut:]

    @property
    def common(self) -> bool:
        """A cut between words of a partial long enough to tell, continued from somewhere after its start: the
        common case, which must join, never fail."""
        return self.kind in ("whitespace", "word end") and self.start > 0 and self.cut >= MIN_OVERLAP

    def continuation(self, asked: str) -> str:
        """What the vendor says when asked so: after a prefill it was sent without its trailing whitespace, the
        model goes on after the text it was sent; an echoing vendor says the prefill first."""
        sent = self.partial.rstrip() if asked == "prefill, stripped" else self.partial
        head = self.answer[len(sent):self.cut] if self.start == self.cut and len(sent) < self.cut else self.head
        return (sent if asked == "prefill, echoed" else "") + head + self.rest

    def seam(self, delivered: Delivered, asked: str) -> Seam:
        method, caps = ASKED[asked]
        return seam_for(delivered, method, caps)


def _cut_points(text: str, kind: str) -> list[int]:
    if kind == "first characters":
        return list(range(1, min(MIN_OVERLAP, len(text))))
    inside = range(1, len(text))
    if kind == "whitespace":
        return [p for p in inside if text[p - 1].isspace()]
    if kind == "word end":
        return [p for p in inside if text[p].isspace()]
    return [p for p in inside if text[p - 1].isalnum() and text[p].isalnum()]


@st.composite
def cases(draw: st.DrawFn, kinds: tuple[str, ...] = CUTS) -> Case:
    tokens = tuple(f"{space if i else ''}{letters}{digit}{mark}"
                   for i, (space, letters, digit, mark) in enumerate(draw(TOKENS)))
    text = "".join(tokens)
    kind = draw(st.sampled_from(kinds))
    points = _cut_points(text, kind)
    assume(points)
    cut = draw(st.sampled_from(points))
    back = draw(st.integers(0, 9))  # tokens back; 9: starts over
    starts = [0]
    for token in tokens[:-1]:
        starts.append(starts[-1] + len(token))
    before = [s for s in starts if s < cut]
    start = 0 if back > min(8, len(before)) else cut if back == 0 else before[-back]
    head = text[start:cut]
    if head and draw(st.booleans()):  # in other whitespace
        head = re.sub(r"\s+", lambda run: draw(st.sampled_from(OTHER_LINE_END if "\n" in run.group() else OTHER_SPACE)),
                      head)
        if head[0].isspace() and draw(st.booleans()):
            head = head.lstrip()
        elif start == 0 and draw(st.booleans()):
            head = " " + head
    return Case(tokens, kind, cut, start, head)
