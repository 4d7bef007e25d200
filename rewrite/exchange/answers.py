"""What the client gets when it is not a pumped stream: a non-stream answer forwarded (or translated, or rewritten by
adapters), the folded answer of a forced stream, the vendor's errors in the client's protocol, and Rotator's own
answers (a refusal before any upstream call, the honest failure when every target failed)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable

import httpx

from protocols.base import Aggregator, Protocol, Repairer
from protocols.sse import dumps, load_object
from protocols.translate import TranslationError
from protocols.translate.base import MALFORMED
from rewrite.exchange.clock import Clock
from rewrite.exchange.job import Job, error_protocol
from rewrite.exchange.leg import Translation, error_headers
from rewrite.exchange.pump import piece_reader
from rewrite.exchange.request import ClientRequest
from rewrite.exchange.target import Target
from rewrite.intake.loopback import Responder
from rewrite.lifecycle.views import Tapped
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure
from rewrite.upstream.bodies import read_whole
from rewrite.upstream.client import response_headers

# The status of a failure that is the vendor's own stream, failed before its content (Attempt._failed_early).
EARLY_ERROR_STATUS = 200
# Upstream stream headers that do not describe a folded JSON answer.
STREAM_ONLY_HEADERS = frozenset({"content-type", "cache-control", "x-accel-buffering"})
# How an upstream body breaks: the connection fails, or its bytes do not decode under their content-encoding
# (httpx's DecodingError is not a TransportError). Either is a cut.
BODY_CUTS = (httpx.TransportError, httpx.DecodingError)


class Answers:
    """`repairer`: the client stream's, once a pump made one (else one is made for an error event)."""

    def __init__(self, out: Responder, job: Job, req: ClientRequest, clock: Clock, max_body: int,
                 request_timeout: float) -> None:
        self.out = out
        self.job = job
        self.req = req
        self.clock = clock
        self.max_body = max_body  # of a body decoded or held whole
        self.request_timeout = request_timeout
        self.repairer: Repairer | None = None

    # -- the upstream's answer --------------------------------------------------------------------------------

    async def within(self, forwarding: Awaitable[Failure | None], deadline: float) -> Failure | None:
        """Run `forwarding` (an answer that is not an SSE stream) until `deadline`. Reached before anything was
        sent to the client, that is a retryable failure; after, the answer is cut."""
        if deadline == math.inf:
            return await forwarding
        task = asyncio.ensure_future(forwarding)
        try:
            if await self.clock.supervise(task, lambda: deadline):
                return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not self.out.committed:
            return Failure(FailureKind.REQUEST_TIMEOUT, "request timeout (no answer)")
        self.job.note(Note.CUT, f"request timeout: the answer was cut after {self.request_timeout:g} s")
        return None

    def error(self, call: Target, status: int, headers: httpx.Headers, body: bytes) -> None:
        """The vendor's error answer, in the client's protocol."""
        if self.out.committed:
            self.out.write(self.repair_state().error_event(body.decode("utf-8", "replace")[:500], status))
            return
        if call.leg.translation is not None:
            status, body = call.leg.translation.error(status, body)
            self.out.start(status, error_headers(headers.multi_items()))
        else:
            self.out.start(status, response_headers(headers))
        self.out.write(self.for_client(status, body))

    async def translated(self, call: Target, translation: Translation, resp: httpx.Response,
                         capture: Tapped | None) -> Failure | None:
        """A translated target's non-stream answer (a target opted out of forced streaming), for the client."""
        data = await read_whole(piece_reader(resp, self.max_body), self.max_body)
        if capture is not None:
            capture.add(data)
        body = load_object(data)
        if body is None:
            return Failure(FailureKind.BAD_ANSWER, f"the {translation.upstream} answer is not a JSON object",
                           retryable=False)
        try:
            answer = translation.answer(body, call.leg)
        except TranslationError as e:
            return Failure(FailureKind.BAD_ANSWER, str(e)[:200], retryable=False)
        self.out.start(resp.status_code, [("content-type", "application/json")])
        self.out.write(dumps(answer))
        return None

    async def raw(self, call: Target, resp: httpx.Response, capture: Tapped | None) -> Failure | None:
        """The answer as it comes (or, for adapters that rewrite answers, rewritten whole)."""
        next_piece = piece_reader(resp, self.max_body)
        adapters = call.adapters
        if adapters.answering and resp.status_code == 200:  # a whole JSON answer the adapters rewrite
            data = await read_whole(next_piece, self.max_body)
            if capture is not None:
                capture.add(data)
            body = load_object(data)
            self.out.start(200, response_headers(resp.headers))
            self.out.write(dumps(adapters.answer_body(body)) if body is not None else data)
            return None
        first = await next_piece()  # a body that breaks before its first byte is retried (see Attempt)
        if not self.out.committed:
            self.out.start(resp.status_code, response_headers(resp.headers))
        self.out.write(first)
        try:
            while chunk := await next_piece():
                self.out.write(chunk)
                await self.out.drain()
        except BODY_CUTS as e:
            self.job.note(Note.CUT, f"upstream body cut: {type(e).__name__}: {e}"[:300])
        return None

    def folded(self, call: Target, proto: Protocol, aggregator: Aggregator, repairer: Repairer, cause: str,
               headers: httpx.Headers) -> None:
        """A forced stream folded back into the JSON answer the client asked for (`proto`: the client's)."""
        if not repairer.complete:
            self.job.note(Note.REPAIRED, f"forced stream ended without its completion signal ({cause}); "
                          "answered as truncated", cause=cause)
        error = aggregator.error
        answer = None
        if error is not None:
            message = str(error.get("message") or error) if isinstance(error, dict) else str(error)
            self.job.note(Note.FAILED, f"forced stream carried an error: {message[:200]}")
        else:
            try:
                answer = dumps(aggregator.result())
            except MALFORMED as e:  # what the stream said cannot be folded into an answer
                message = f"rotator: the upstream's answer could not be read ({type(e).__name__})"
                self.job.note(Note.FAILED, f"forced stream could not be folded: {type(e).__name__}: {e}"[:300])
        if answer is None:
            self.out.start(502, [("content-type", "application/json")])
            self.out.write(proto.error_body(502, message))
            return
        kept = [(n, v) for n, v in response_headers(headers) if n.lower() not in STREAM_ONLY_HEADERS]
        if call.leg.translation is not None:  # another vendor's headers do not describe the client's answer
            kept = []
        self.out.start(200, [*kept, ("content-type", "application/json")])
        self.out.write(answer)

    # -- Rotator's own answers --------------------------------------------------------------------------------

    def refuse(self, reason: str) -> None:
        """Answer 400 in the client's protocol (its provider's family's for another path), before any upstream call."""
        req = self.req
        proto = error_protocol(req.called, req.proto or req.route.protocol)
        self.now(400, proto.error_body(400, f"Rotator: {reason}"), f"bad request: {reason}"[:200])

    def now(self, status: int, body: bytes, reason: str) -> None:
        """Answer the client before any upstream call (a request no target can take as it is)."""
        self.job.note(Note.FAILED, reason, reason=reason)
        if self.out.committed:  # heartbeats went out while an earlier target was tried
            self._error_event(reason, status)
            return
        self.out.start(status, [("content-type", "application/json")])
        self.out.write(body)

    def give_up(self, failure: Failure) -> None:
        """Every target failed: the last failure, honestly (in-stream, once the status is committed)."""
        self.job.note(Note.FAILED, f"giving up: {failure.reason}", reason=failure.reason)
        if self.out.committed and failure.status == EARLY_ERROR_STATUS and failure.body:  # the vendor's own events
            self.out.write(failure.body)
            self.out.finish()
            self.job.delivered = True
            return
        if self.out.committed:
            self._error_event(f"upstream failed: {failure.reason}", failure.status or 502)
            return
        if failure.status is not None:
            self.out.start(failure.status, response_headers(failure.headers))
            self.out.write(self.for_client(failure.status, failure.body))
            return
        status = 504 if failure.kind.timeout else 502
        message = f"Rotator: the upstream failed: {failure.reason}"
        if self.req.proto is not None:
            self.out.start(status, [("content-type", "application/json")])
            self.out.write(self.req.proto.error_body(status, message))
        else:
            self.out.start(status, [("content-type", "text/plain")])
            self.out.write(message.encode() + b"\n")

    def _error_event(self, message: str, status: int) -> None:
        self.out.write(self.repair_state().error_event(message, status))
        self.out.finish()
        self.job.delivered = True

    def for_client(self, status: int, body: bytes) -> bytes:
        """A vendor's error answer as the client is given it: as it came, or as its client's dialect has it
        (Provider.client_error: a retry delay its client would sleep out for hours, bounded)."""
        return self.req.called.client_error(status, body)

    def repair_state(self) -> Repairer:
        if self.repairer is None:
            assert self.req.proto is not None
            self.repairer = self.req.proto.repairer(self.req.body)
        return self.repairer

    def whole_answer(self) -> bytes | None:
        """The JSON answer the client got, when it was a whole one (for its usage)."""
        body = self.out.flow_body
        if self.req.client_stream or self.out.status != 200 or body.left_out:
            return None
        return body.shown() if self.req.dialect is None else self.req.dialect.opened_answer(body.shown())
