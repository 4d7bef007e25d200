"""Mid-stream resume, the engine's side of one request (docs/reliability.md, "Answers that survive a cut"; the pure
parts are protocols/resume/). While resume is on for the target (`Target.resumes`), a tool call reaches the
client whole or not at all (`Holder`: the pump makes one at a stream's first tool call), and what the client is sent
is what a continuation goes on from: for a stream, the body its writer keeps for the flow anyway (Responder.flow_body:
nothing more an event), so that nothing here runs for a stream that is not cut; for a stream folded into a non-stream
answer, kept as it goes (a list append an event). Both are parsed only at a cut. At a cut
the attempt hands the stream over (`take`) instead of ending it; `Continuation` (rewrite/exchange/continuation.py)
asks for the rest, and each continuation attempt's repairer is wrapped in `Spliced`: its events, in the client's
protocol, go through the protocol's `Splicer` and then the client's own repairer (fed everything the client got, so
it ends the joined answer as the client sees it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

import protocols.translate as translate
from protocols.base import Protocol, Repairer
from protocols.capabilities import Capabilities
from protocols.events import Event, StreamParser
from protocols.resume import Delivered, Holder, Method, Observer, Resumer, Splicer, capped, seam_for
from protocols.resume.kept import KeptEvents
from protocols.resume.seam import Seam
from protocols.sse import SSEParser
from protocols.translate.base import TappedDecoder
from protocols.unified import Answer, ToolIds
from protocols.unified_stream import AnswerBuilder
from rewrite.config import ResumeConfig
from rewrite.exchange.pump import Abandoned, ClientStream
from rewrite.exchange.target import Target
from rewrite.intake.loopback import Responder

ResumeFor = Callable[[str], ResumeConfig]  # a provider's resume settings (Config.resume_for)
Watch = Callable[[bytes], bytes]


class Keeper:
    """What a folded stream's client would be sent, held back while a tool call is open (`Holder`) and kept (a list
    append an event); `watch` is the pump's (ClientStream.watch)."""

    def __init__(self, kept: KeptEvents, holds: type[Holder] | None) -> None:
        self.kept, self.keep = kept, kept.add
        self.holder = holds() if holds is not None else None
        self.marker = holds.marker if holds is not None else None

    def watch(self, data: bytes) -> bytes:
        holder = self.holder
        if holder is not None and (holder.holding or data.find(self.marker) >= 0):  # type: ignore[arg-type]
            data = holder.feed(data)
        if data:
            self.keep(data)
        return data


class Spliced(Repairer):
    """A continuation attempt's repairer: its client-protocol events (tool calls held whole) spliced onto what the
    client has, then through the client's repairer, and kept. Abandoned once the seam refuses the continuation."""

    def __init__(self, inner: Repairer, keep: Callable[[bytes], None] | None, holder: Holder | None,
                 splicer: Splicer, client: Repairer, parser: Callable[[], StreamParser] = SSEParser) -> None:
        self.inner, self.keep, self.holder = inner, keep, holder  # keep: a folded answer's (see Resume.events)
        self.splicer, self.client = splicer, client
        self.parser = parser  # (the client's events: its protocol's stream, or its provider's envelope opened)

    started = property(lambda self: self.inner.started)
    complete = property(lambda self: self.client.complete)
    finished = property(lambda self: self.client.finished)
    failed = property(lambda self: self.client.failed)

    def feed(self, event: Event) -> bytes:
        out = self.inner.feed(event)
        if self.holder is not None:
            out = self.holder.feed(out)
        if not out:
            return b""
        parser = self.parser()
        spliced = [s for e in parser.feed(out) + parser.close() for s in self.splicer.feed(e)]
        if self.splicer.failed:
            raise Abandoned("the seam refused the continuation (it started over, or read two ways)")
        return self._sent(spliced)

    def quiet(self, block: bytes) -> bool:
        return False

    def flush(self) -> bytes:
        """At the continuation's cut: what the seam still held, for the client."""
        return self._sent(self.splicer.finish())

    def _sent(self, events: list[Event]) -> bytes:
        out = b"".join([self.client.feed(e) for e in events])
        if out and self.keep is not None:
            self.keep(out)
        return out

    def end(self, ending: str = "length") -> bytes:
        return self.client.end(ending)

    def error_event(self, message: str, status: int = 502) -> bytes:
        return self.client.error_event(message, status)


class Unsent(Responder):
    """Where a folded answer's continuation is written: nowhere (what it adds is kept, and folded at the end)."""

    def __init__(self) -> None:  # (no connection)
        self.status = 200

    @property
    def committed(self) -> bool:
        return True

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    @property
    def blocked(self) -> bool:
        return False

    async def drain(self) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class Cut:
    """Where the first attempt's stream stopped: its target call, how, and whether it is folded for the client."""

    call: Target
    cause: str
    folded: bool
    headers: httpx.Headers


@dataclass
class Continuing:
    """The continuation being tried: how it was asked, and what it did at the seam."""

    delivered: Delivered
    method: Method
    caps: Capabilities
    client: Repairer
    seam: Seam | None = None
    spliced: Spliced | None = None


@dataclass
class Resume:
    """One request's resume state: the client-bound events kept, the cut, the continuation under way."""

    resumer: Resumer
    proto: Protocol
    body: dict
    settings_for: ResumeFor
    out: Responder  # the client's writer: what it sent is kept for the flow (its flow_body)
    kept: KeptEvents | None = None  # a folded answer's events (made when one is watched)
    cut: Cut | None = None
    continuing: Continuing | None = None
    cause: str = ""  # how the last watched attempt's stream ended
    # What the client was sent, read back: its protocol's stream, or its provider's envelope opened.
    parser: Callable[[], StreamParser] = SSEParser

    def watch(self, repairer: Repairer, out: Responder, folded: bool) -> tuple[Repairer, Responder, Watch | None]:
        """An attempt's repairer, client writer and watch (ClientStream's), but for a first attempt's stream (whose
        holder the pump makes): a first attempt's folded answer held and kept; a continuation's spliced."""
        continuing = self.continuing
        if continuing is None:
            assert folded  # (a first attempt's stream is watched by its client writer alone)
            self.kept = KeptEvents()  # (what an attempt that failed before its first token kept was never sent)
            return repairer, out, Keeper(self.kept, self.resumer.holder).watch
        continuing.seam = seam_for(continuing.delivered, continuing.method, continuing.caps)
        splicer = self.observer().splicer(continuing.seam)
        into_fold = self.cut is not None and self.cut.folded
        keep = self.kept.add if into_fold and self.kept is not None else None
        holds = self.resumer.holder
        continuing.spliced = Spliced(repairer, keep, holds() if holds is not None else None, splicer, continuing.client,
                                 self.parser)
        return continuing.spliced, (Unsent() if into_fold else out), None

    def take(self, call: Target, stream: ClientStream, aggregator: object, cause: str,
             headers: httpx.Headers) -> None:
        """Resume takes a watched attempt's stream over at its end: a continuation attempt's (its outcome the
        continuation reads), or a first attempt's cut before its completion signal (to be continued)."""
        self.cause = cause
        if self.continuing is not None:
            spliced = self.continuing.spliced
            if spliced is not None and not spliced.complete and not spliced.splicer.failed:
                stream.out.write(spliced.flush())  # (the seam's held text: the continuation did go on)
            return
        self.cut = Cut(call, cause, aggregator is not None, headers)
        keeper = getattr(stream.watch, "__self__", None)
        if isinstance(keeper, Keeper):  # (what this attempt kept: another raced beside it kept its own)
            self.kept = keeper.kept

    def observer(self) -> Observer:
        """A fresh observer of everything the client was sent."""
        observer = self.resumer.observer(self.body)
        for event in self.events():
            observer.feed(event)
        return observer

    def delivered(self) -> Delivered:
        """What the client holds of the answer: not to be continued once it spent the client's output cap."""
        return capped(self.resumer, self.body, self.observer().delivered())

    def client_repairer(self) -> Repairer:
        """The client protocol's repairer, fed everything the client was sent: it ends the answer as the client
        has it."""
        repairer = self.proto.repairer(self.body)
        for event in self.events():
            repairer.feed(event)
        return repairer

    @property
    def too_long(self) -> bool:
        """A streamed answer longer than its flow keeps (4 MiB and its end): not continued."""
        return not (self.cut is not None and self.cut.folded) and self.out.flow_body.left_out > 0

    def answer(self) -> Answer:
        """The answer as the client has it, unified (for the plug-ins that keep it: `kept`, once it is continued)."""
        builder = AnswerBuilder()
        tap = TappedDecoder(translate.get(self.proto.name).decoder(ToolIds()), builder)
        for event in self.events():
            tap.feed(event)
        tap.close()
        return builder.result(truncated=not builder.finished)

    def events(self) -> Iterator[Event]:
        """Everything the client was sent (a folded answer: would have been sent), as events."""
        if self.cut is not None and self.cut.folded:
            assert self.kept is not None  # (a folded answer's attempt kept its events: see watch)
            return self.kept.events()
        parser = self.parser()
        return iter(parser.feed(self.out.flow_body.shown()) + parser.close())
