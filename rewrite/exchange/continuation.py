"""The continuation of an answer cut after its first token (docs/reliability.md, "Answers that survive a cut").

The request is asked again for the rest of its answer: the partial answer put in as the assistant's turn, by prefill
where the model the target is asked for (after a `rename_model` adapter) continues a trailing assistant turn and the
client protocol's resumer says the request and the partial can be carried so, else followed by a short user turn
asking to go on (protocols/resume/); when nothing of it reached the client (a cut inside its first tool call, held
back), the request is asked again as it came. That method is the one recorded, logged and seamed. Each continuation
goes over the target machinery as any request does (key rotation, rests, the first-token deadline; a target that
fails before the continuation's first token hands it to the next target of the route, translated), and its events
are spliced into the client's stream (rewrite/exchange/resume.py). A target that refuses the prefill is remembered
and asked in words from then on. Bounded by `resume.max_attempts` and `resume.deadline` (by which a continuation's
first token must have come: the attempt under way is abandoned then); past them, or when no continuation can go on
from the cut (a JSON answer's among them: protocols/resume/asking.py), the answer ends honestly as before. A
continuation asks for no more output than the client's cap leaves; an answer that spent the cap is not continued,
and ends with the protocol's token-cap stop (whatever `on_truncation` says: the cap was reached). A continuation the
client leaves is recorded all the same (its seam, and what the vendor reported billing for it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from protocols.base import ENDING_LENGTH, Repairer
from protocols.capabilities import Capabilities
from protocols.resume import CAP_REACHED, Delivered, Method, continuation_body, method_for
from rewrite.exchange.attempt import Attempt
from rewrite.exchange.fallback import Fallback, Legs
from rewrite.exchange.keys import KeyAttempts
from rewrite.exchange.pump import ClientStream, Pump
from rewrite.exchange.resume import Continuing, Resume
from rewrite.exchange.target import Target
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.providers import Provider

logger = logging.getLogger("rotator")

SPLICED = "spliced"
CLIENT_LEFT = "client left"


class Continuation:
    def __init__(self, fallback: Fallback, resume: Resume) -> None:
        self.fallback = fallback
        self.resume = resume
        assert resume.cut is not None
        self.cut = resume.cut
        self.give_up = 0.0  # when no continuation may start any more (its first token due by then at the latest)

    async def run(self) -> None:
        """Continue the cut answer until it is whole, or end it honestly (the cut's cause in the repair's note; each
        continuation's outcome in its own)."""
        f, resume, cut = self.fallback, self.resume, self.cut
        settings = resume.settings_for(cut.call.provider.name)
        self.give_up = f.ctx.clock.loop.time() + settings.deadline
        client = resume.client_repairer()
        ending: str = f.ctx.streaming.on_truncation
        for _ in range(settings.max_attempts):
            delivered = resume.delivered()
            why_not = "the answer is longer than Rotator keeps of it (4 MiB)" if resume.too_long else (
                "" if delivered.resumable else delivered.why_not)
            if why_not:
                f.job.note(Note.RESUMED, f"not continued: {why_not}", outcome="not continued", reason=why_not)
                ending = ENDING_LENGTH if why_not == CAP_REACHED else ending
                break
            if f.ctx.clock.loop.time() >= self.give_up or await self._once(delivered, client) == SPLICED:
                break
        self._finish(client, cut.cause, ending)

    async def _once(self, delivered: Delivered, client: Repairer) -> str:
        """One continuation, over the route's targets from the one that was cut: how it ended."""
        f = self.fallback
        f.req.parse_whole()  # (a large body read as its skeleton: the continuation is written with its long texts)
        if f.req.skeletal:  # (JSON refused it after all: nothing can be written from it)
            return "no target"
        # (a login's signed body is never rewritten: its cut is continued from the route's next target on)
        targets = f.chosen[f.serving + 1:] if f.served is not None and f.served.sealed else f.chosen[f.serving:]
        outcome = "no target"
        for n, (provider, model) in enumerate(targets):
            caps = self._caps(provider, model)
            call = f.legs.target(provider, model, n + 1 < len(targets), f.refused)
            method = method_for(self.resume.resumer, f.req.body, delivered, caps, refuses_prefill=call.lessons.prefill)
            while True:
                if f.ctx.clock.loop.time() >= self.give_up:
                    return outcome
                outcome, kind = await self._ask(call, caps, method, delivered, client)
                if kind is not FailureKind.PREFILL_REFUSED:
                    break
                method = "instruction"
            if kind is None:  # it started: spliced, started over, or cut again
                return outcome
        return outcome

    async def _ask(self, call: Target, caps: Capabilities, method: Method, delivered: Delivered,
                   client: Repairer) -> tuple[str, FailureKind | None]:
        """One continuation on one target: its outcome in words, and the kind of failure when it never started."""
        f, resume = self.fallback, self.resume
        body = continuation_body(resume.resumer, f.req.body, delivered, method, caps)
        ctx = dataclasses.replace(f.ctx, req=f.req.continued(body))
        req = ctx.req
        legs = Legs(ctx)
        legs.routed = f.legs.routed
        leg = legs.leg(call)
        call.take(leg, ctx)
        # (its attempts' streams are spliced, whatever its provider says)
        call.continues_by, call.resumes = method, True
        resume.continuing = continuing = Continuing(delivered, method, caps, client)
        pump = Pump(f.ctx.clock, req.meter, f.pump.max_body, f.pump.idle_timeout, f.pump.stream_headers)
        keys = KeyAttempts(ctx, call.payer, call.provider, call.model, call, until=self.give_up, tokens=req.tokens)
        try:
            failure = await keys.run(Attempt(ctx, call, f.answers, pump, resume, until=self.give_up).on)
        except asyncio.CancelledError:  # the client left: the vendor was asked (and billed) all the same
            f.account(call, keys.ticket, req.meter.usage(), continuation=True)
            self._record(len(delivered.text), method, call.name, continuing, CLIENT_LEFT)
            raise
        finally:
            resume.continuing = None
        seam = continuing.seam
        if failure is not None:
            outcome, kind = f"failed ({failure.reason})", failure.kind
        else:
            f.account(call, keys.ticket, req.meter.usage(), continuation=True)
            spliced = continuing.spliced
            assert spliced is not None
            kind = None
            if spliced.splicer.failed:
                outcome = seam.refused if seam is not None and seam.refused else "started over"
            elif spliced.finished:  # (its stop reason came: whole, its last events lost or not)
                outcome = SPLICED
            else:
                outcome = f"cut again ({resume.cause})"
        self._record(len(delivered.text), method, call.name, continuing, outcome)
        return outcome, kind

    def _caps(self, provider: Provider, model: str) -> Capabilities:
        """The capabilities of the model the host is asked for (a `rename_model` adapter renames `model`)."""
        if provider.models is None:
            return Capabilities()
        return provider.models.get(provider.adapters_for(model).model_sent(model))

    def _record(self, position: int, method: str, target: str, continuing: Continuing, outcome: str) -> None:
        """The seam, on the flow (metadata, a note and its log line)."""
        trimmed = continuing.seam.trimmed if continuing.seam is not None else 0
        seam = {"position": position, "method": method, "target": target, "trimmed": trimmed, "outcome": outcome}
        if dropped := self.resume.proto.held_by_vendor(self.fallback.req.body):  # (no continuation carries them)
            seam["dropped"] = dropped
        job = self.fallback.job
        job.resume.append(seam)
        how = (f"asked again on {target} (nothing of the answer had reached the client)" if method == "again" else
               f"continued at character {position} by {method} on {target}, {trimmed} characters of overlap trimmed")
        job.note(Note.RESUMED, f"{how}: {outcome}", **seam)

    def _finish(self, client: Repairer, cause: str, ending: str) -> None:
        """The answer as the client gets it now: ended honestly (`ending`) unless whole; a folded one folded from
        what was kept."""
        f, cut, resume = self.fallback, self.cut, self.resume
        if cut.folded:
            aggregator = resume.proto.aggregator(resume.body)
            for event in resume.events():
                aggregator.feed(event)
            f.answers.folded(cut.call, resume.proto, aggregator, client, cause, cut.headers)
        elif not client.complete:
            ClientStream(f.answers.out, f.job, f.ctx.clock, client).end_honestly(cause, ending)
        if f.served is not None and f.served.wants_answer and f.job.resume:
            f.answered(f.served, resume.answer())  # (the first attempt's, recorded at its cut, was the partial)
