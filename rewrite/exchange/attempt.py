"""One HTTP attempt of a target on one credential (`Attempt`): the upstream request built, sent, its answer
classified and handed on: an error answer judged once (rewrite/policy/verdict.py) and sent again at once, in a
loop, without what the upstream refused (a stream, the usage option, parameters, another account's state); an SSE
answer pumped to the client; any other forwarded (rewrite/exchange/answers.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

import protocols
from protocols.base import Aggregator, Protocol
from protocols.refused_params import without
from protocols.vendor_errors import ErrorKind, VendorError
from rewrite.exchange.answers import BODY_CUTS, Answers
from rewrite.exchange.job import error_protocol
from rewrite.exchange.keys import FirstTokenDeadline
from rewrite.exchange.leg import error_headers
from rewrite.exchange.pump import ClientStream, Pump, piece_reader
from rewrite.exchange.resume import Resume
from rewrite.exchange.target import MAX_REFUSED_PARAMS, Target
from rewrite.intake.big_json import TOO_DEEP
from rewrite.lifecycle.events import Answered, FirstToken, Reading, Refusal, Refused, Tap
from rewrite.lifecycle.payer import Ticket
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure
from rewrite.policy.verdict import Act, Asked, judge
from rewrite.upstream.bodies import BodyTooLarge, read_whole
from rewrite.upstream.client import response_headers

if TYPE_CHECKING:
    from protocols.unified import Usage
    from rewrite.exchange.context import Context
    from rewrite.lifecycle.views import Tapped

# The most of an error body Rotator reads (decoded): past it, the body is a cut like any broken one.
ERROR_BODY_MAX = 1 << 20
# An attempt that never reached the vendor (through the egress proxy, if any): counts against the key.
NO_CONNECTION = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)
# What an attempt returns when the upstream refused something Rotator can leave out: it is sent again at once.
AGAIN = Failure(FailureKind.SENT_AGAIN, "sent again without what the upstream refused")


class Attempt:
    """One HTTP attempt of `call`'s target on one credential, and what is done with the answer; its first token due
    by `until` at the latest (a continuation's resume deadline)."""

    def __init__(self, ctx: Context, call: Target, answers: Answers, pump: Pump, resume: Resume | None = None,
                 until: float = math.inf) -> None:
        self.ctx = ctx
        self.call = call
        self.until = until
        self.cfg = ctx.streaming
        self.clock = ctx.clock
        self.answers = answers
        self.pump = pump
        self.resume = resume  # the request's, when its client protocol has a resumer (rewrite/exchange/resume.py)
        # A race's attempt (rewrite/exchange/race.py, `racer`): called before anything of its answer reaches the
        # client; and when its first token is due at the latest (the first attempt's).
        self.claim: Callable[[], None] | None = None
        self.first_by = math.inf

    def racer(self, claim: Callable[[], None], first_by: float) -> Attempt:
        """A twin of this attempt for a race: its own pump and usage meter, its answer claimed with `claim` (which
        raises Outrun once the other attempt won), its first token due by `first_by`."""
        twin = Attempt(self.ctx, self.call, self.answers, self.pump.twin(), self.resume, self.until)
        twin.claim, twin.first_by = claim, first_by
        return twin

    def spent(self) -> Usage | None:
        """The usage the vendor reported of this attempt so far (a race's loser: as far as it came)."""
        return self.pump.meter.usage()

    def _claim(self) -> None:
        """This attempt's answer goes to the client from now on: a race's winner's usage is the request's."""
        if self.claim is not None:
            claim, self.claim = self.claim, None
            claim()
            self.ctx.req.meter.adopt(self.pump.meter)

    async def on(self, ticket: Ticket) -> Failure | None:
        """One attempt on `ticket`, sent again at once without what the upstream refused for as long as it refuses
        something new."""
        while (failure := await self._send(ticket)) is AGAIN:
            pass
        return failure

    def in_client_shape(self, failure: Failure) -> Failure:
        """The vendor's error answer, in the client's protocol (for a translated target)."""
        translation = self.call.leg.translation
        if failure.status is None or translation is None:
            return failure
        status, body = translation.error(failure.status, failure.body)
        return dataclasses.replace(failure, status=status, headers=error_headers(failure.headers), body=body)

    async def _send(self, ticket: Ticket) -> Failure | None:
        call, req, clock = self.call, self.call.req, self.clock
        start = clock.loop.time()
        whole = start + req.total_timeout
        own = start + self.cfg.first_token_timeout if call.upstream_stream else whole
        due = FirstTokenDeadline.of(own, self.until, self.first_by)
        try:
            sending = asyncio.ensure_future(call.ctx.client.send(call.build(ticket), stream=True))
        except httpx.HTTPError as e:
            return Failure(FailureKind.BAD_REQUEST, f"bad upstream request: {e}", retryable=False)
        except ValueError as e:  # a header that cannot be sent (upstream.encode_headers): perhaps the key's
            return Failure(FailureKind.BAD_REQUEST, f"bad upstream request: {e}")
        except RecursionError:  # a body deep enough to parse, too deep to copy or encode
            answer = error_protocol(call.provider, req.proto).error_body(400, f"Rotator: {TOO_DEEP}")
            return Failure(FailureKind.BAD_REQUEST, TOO_DEEP, 400, [("content-type", "application/json")], answer,
                           retryable=False)
        try:
            if not await clock.supervise(sending, lambda: due.at):
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
                return due.missed(f"{self._timeout()} (no response headers)", call.upstream_stream)
            resp = sending.result()
            capture = self._tap(resp)
            if resp.status_code < 400:
                self._answered(ticket, resp, b"")
        except httpx.TransportError as e:
            connect = isinstance(e, NO_CONNECTION)
            return Failure(FailureKind.CONNECT if connect else FailureKind.TRANSPORT,
                           f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, stalled=connect)
        except BaseException:  # cancelled (the client left, the race lost) as the answer's head came: closed unread
            if sending.done() and not sending.cancelled() and sending.exception() is None:
                await sending.result().aclose()
            raise
        finally:
            if not sending.done():
                sending.cancel()
        try:
            if resp.status_code >= 400:
                body = await self._error_body(resp, due)
                if isinstance(body, Failure):
                    return body
                body = ticket.scrubbed(body, call.carried(ticket))
                if capture is not None:
                    capture.add(body)
                self._answered(ticket, resp, body)
                error = call.errors.read(resp.status_code, resp.headers.multi_items(), body, time.time())
                return self._error(ticket, error, resp, body)
            if (proto := req.proto) is not None and call.streams(resp.headers.get("content-type", "")):
                return await self._stream(ticket, resp, proto, due, capture)
            if call.continues_by is not None:  # (nothing but a stream can be spliced into the client's answer)
                return Failure(FailureKind.BAD_ANSWER, "the continuation was not answered as a stream", retryable=False)
            self._claim()
            if (translation := call.leg.translation) is not None:
                return await self.answers.within(self.answers.translated(call, translation, resp, capture), whole)
            return await self.answers.within(self.answers.raw(call, resp, capture), whole)
        except BodyTooLarge as e:
            return Failure(FailureKind.ENDED_EARLY, f"{e}, before the answer started")
        except BODY_CUTS as e:
            return Failure(FailureKind.ENDED_EARLY, f"{type(e).__name__} before the answer started")
        finally:
            await resp.aclose()

    def _tap(self, resp: httpx.Response) -> Tapped | None:
        """Where a plug-in keeps the raw answer (the flow's steps), when Rotator translates or rewrites it."""
        hooks = self.ctx.hooks
        if not hooks.wants(Tap):  # (before the content type is looked up)
            return None
        return hooks.ask(Tap, self.call, resp.status_code, resp.headers.get("content-type", ""))

    def _answered(self, ticket: Ticket, resp: httpx.Response, body: bytes) -> None:
        hooks = self.ctx.hooks
        if hooks.wants(Answered):  # (before the headers are listed)
            hooks.announce(Answered, self.call, ticket, resp.status_code, resp.headers.multi_items(), body)

    def _timeout(self) -> FailureKind:
        return FailureKind.FIRST_TOKEN_TIMEOUT if self.call.upstream_stream else FailureKind.REQUEST_TIMEOUT

    async def _error_body(self, resp: httpx.Response, due: FirstTokenDeadline) -> bytes | Failure:
        """An error answer's body, read within the attempt's own deadline (heartbeats meanwhile) and up to
        ERROR_BODY_MAX bytes: a body that stalls is a stall of this attempt, retried like a first-token timeout (and,
        as one, a stall of its key only if the attempt had its whole timeout: `FirstTokenDeadline.missed`)."""
        reading = asyncio.ensure_future(read_whole(piece_reader(resp, ERROR_BODY_MAX), ERROR_BODY_MAX))
        try:
            if not await self.clock.supervise(reading, lambda: due.at):
                return due.missed(f"{self._timeout()} (status {resp.status_code}, its body stalled)",
                                  self.call.upstream_stream)
            return reading.result()
        finally:
            if not reading.done():
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

    def _asked(self, ticket: Ticket, error: VendorError) -> Asked:
        """What the refused attempt asked, for the verdict."""
        call = self.call
        rewritable = call.leg.protocol is not None and not call.payer.sealed
        refusable: tuple[str, ...] = ()
        foreign: frozenset[str] = frozenset()
        if rewritable and error.refused:
            sent = call.sent_body()
            named = [p for p in error.refused
                     if sent is not None and p not in call.refused and without(sent, p) is not None]
            if named and len(call.refused) + len(named) <= MAX_REFUSED_PARAMS:
                refusable = tuple(named)
        if rewritable and error.kind is ErrorKind.FOREIGN and ticket.key is not None:
            assert call.leg.protocol is not None
            reader = protocols.registered(call.leg.protocol.name).evidence
            sent = call.sent_body()
            if reader is not None and sent is not None:
                known = call.lessons.foreign.get(ticket.key, set())
                foreign = frozenset(set(reader.foreign(sent)) - known)
        usage_option = call.req.meter.usage_option if call.ask_usage else ""
        return Asked(call.payer.pooled, call.more, call.payer.plan, call.continues_by is not None,
                     call.continues_by == "prefill", call.aggregate, usage_option, refusable, foreign)

    def _error(self, ticket: Ticket, error: VendorError, resp: httpx.Response, body: bytes) -> Failure | None:
        """An error answer: sent again without what was refused, retried, handed to the next target, or forwarded
        to the client."""
        call, hooks = self.call, self.ctx.hooks
        headers = resp.headers.multi_items()
        verdict = judge(error, headers, body, self._asked(ticket, error))
        hooks.announce(Refused, call, ticket, error, verdict)
        if hooks.learners and (verdict.resends or verdict.act is Act.PREFILL):
            hooks.teach(Refusal(call, ticket.key, verdict, self.ctx.job))
        act = verdict.act
        if act is Act.RESEND_WITHOUT_STREAM:  # (sent as the client asked)
            call.aggregate = call.upstream_stream = False
        elif act is Act.RESEND_WITHOUT_USAGE:
            call.ask_usage = False
        elif act is Act.RESEND_WITHOUT_PARAMS:
            call.refused += verdict.drop
            call.left_out.update(verdict.drop)
        elif act is Act.RESEND_WITHOUT_FOREIGN and ticket.key is not None:
            call.foreign.setdefault(ticket.key, set()).update(verdict.drop)
        if verdict.resends:
            return AGAIN
        if act is Act.PREFILL and verdict.failure is not None:
            return dataclasses.replace(verdict.failure, reason=f"{call.model} refused the prefill")
        if verdict.failure is not None:
            return verdict.failure
        self._claim()
        self.answers.error(call, resp.status_code, resp.headers, body)
        return None

    async def _stream(self, ticket: Ticket, resp: httpx.Response, proto: Protocol, due: FirstTokenDeadline,
                      capture: Tapped | None) -> Failure | None:
        """A streamed answer (to a client speaking `proto`): pumped to the client (or folded, for a forced stream),
        ended honestly if cut."""
        call, answers, resume, hooks = self.call, self.answers, self.resume, self.ctx.hooks
        repairer, aggregator = call.readers(proto)
        if (e := hooks.pass_along(Reading, "repairer", call, ticket, repairer)) is not None:
            repairer = e.repairer
        out, holds, watch = answers.out, None, None
        if resume is not None and call.resumes:
            if resume.continuing is None and aggregator is None:  # a first attempt's stream: tool calls held whole
                holds = resume.resumer.holder
            else:  # a folded answer's events kept; a continuation's spliced
                repairer, out, watch = resume.watch(repairer, out, aggregator is not None)
        on_first = (lambda: hooks.announce(FirstToken, call, ticket)) if hooks.wants(FirstToken) else None
        built = call.leg.answers  # (this attempt's answer, as the plug-ins that keep it get it)

        def claim() -> None:  # (a race's attempt: its answer becomes the request's)
            self._claim()
            answers.repairer, call.leg.answers = repairer, built

        stream = ClientStream(out, call.ctx.job, self.clock, repairer, holds, watch, on_first,
                              claim if self.claim is not None else None)
        answers.repairer = repairer
        translated_from = call.leg.translation.upstream if call.leg.translation else None
        cause = await self.pump.run(resp, stream, aggregator, due.at, capture, translated_from, call.parser)
        if not repairer.started and repairer.early_error is not None:
            return self._failed_early(ticket, resp, repairer.early_error, stream, aggregator, proto, cause)
        if not repairer.started:
            ended = f"stream ended before the first token ({cause})"
            if cause == "idle timeout":
                return due.missed("first-token timeout")
            return Failure(FailureKind.ENDED_EARLY, ended)
        # (a stream cut after its stop reason is whole: only its last events were lost, and its ending says so)
        if resume is not None and call.resumes and (resume.continuing is not None or not repairer.finished):
            resume.take(call, stream, aggregator, cause, resp.headers)  # a cut to continue, or a continuation's end
            return None
        if aggregator is not None:
            self._claim()
            answers.folded(call, proto, aggregator, repairer, cause, resp.headers)
        elif not repairer.complete:
            if call.payer.sealed and call.resume_wanted:
                call.ctx.job.note(Note.SIGNED, "the cut answer was not continued: the client's signed body is not "
                                  "rewritten, and no route names a next target", skipped=["continuation"])
            stream.end_honestly(cause, self.cfg.on_truncation)
        return None

    def _failed_early(self, ticket: Ticket, resp: httpx.Response, early: tuple[int, bytes], stream: ClientStream,
                      aggregator: Aggregator | None, proto: Protocol, cause: str) -> Failure | None:
        """An error among the stream's first events, before any content (an error inside a 200): read as the error
        answer it stands for (`early`: its status and body). A transient one, or a spent quota, is the attempt's
        failure: asked again, or left for the next target (the client, if none serves, gets the stream as it came);
        any other is the request's own, and the client gets it now."""
        call, hooks = self.call, self.ctx.hooks
        status, body = early
        headers = resp.headers.multi_items()
        error = call.errors.read(status, headers, body, time.time())
        verdict = judge(error, headers, body, Asked(call.payer.pooled))
        hooks.announce(Refused, call, ticket, error, verdict)
        failure = verdict.failure
        if failure is None:
            if aggregator is not None:
                self._claim()
                self.answers.folded(call, proto, aggregator, stream.repairer, cause, resp.headers)
            else:
                stream.begin(stream.early or b"", response_headers(resp.headers))
            return None
        said = f"an error inside the 200 stream, as status {status}" + (f": {error.message[:120]}" if error.message
                                                                          else "")
        if aggregator is not None:  # (a folded answer's client gets the error answer it stands for)
            return dataclasses.replace(failure, reason=said, headers=[("content-type", "application/json")])
        return dataclasses.replace(failure, reason=said, status=200, headers=headers, body=stream.early or b"")
