"""Attempts on one target. `KeyAttempts` goes over the target's key pool: a key picked (waiting for a lease while
every usable key is at its max_concurrent), the wait the retry policy asks, the lease, one attempt, the key's rest;
retried while the policy says so. What one attempt on one key does is given to it (`Attempt.on` over HTTP), so a
WebSocket upgrade can go over the same loop. `Attempt` builds the upstream request, sends it, classifies the answer
and hands it on: sent again at once, in a loop, without what the upstream refused (a stream, the usage option, a
parameter)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable

import httpx

from protocols.base import Aggregator, Protocol
from protocols.resume import refuses_prefill
from protocols.vendor_errors import ErrorKind, VendorError
from protocols.windows import iso
from rewrite.config import StreamingConfig
from rewrite.exchange.answers import BODY_CUTS, Answers
from rewrite.exchange.clock import Clock
from rewrite.exchange.job import Job, error_protocol, every_key_resting
from rewrite.exchange.outgoing import TargetCall
from rewrite.exchange.pump import ClientStream, Pump, piece_reader
from rewrite.exchange.resume import Resume
from rewrite.inspection.steps import Capture
from rewrite.intake.big_json import TOO_DEEP
from rewrite.policy import retry
from rewrite.policy.forcing import refuses_stream
from rewrite.policy.outcomes import FailureKind, Note
from rewrite.policy.retry import Failure
from rewrite.pool.affinity import BOUND, COMPACTION, MOVED, NEW, Affinity
from rewrite.pool.keypool import Pick, Resting
from rewrite.pool.windows import passed_over
from rewrite.providers import Provider
from rewrite.providers.credentials import KeyPool, mask
from rewrite.routing.targets import FALL_THROUGH_STATUS, error_headers
from rewrite.upstream.bodies import BodyTooLarge, read_whole
from rewrite.upstream.client import response_headers

logger = logging.getLogger("rotator")

# The most of an error body Rotator reads (decoded): past it, the body is a cut like any broken one.
ERROR_BODY_MAX = 1 << 20
# An attempt that never reached the vendor (through the egress proxy, if any): counts against the key.
NO_CONNECTION = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)
# What an attempt returns when the upstream refused something Rotator can leave out: it is sent again at once.
AGAIN = Failure(FailureKind.SENT_AGAIN, "sent again without what the upstream refused")
# A continuation's attempt that had no first token when the resume deadline passed: abandoned, its key not rested
# (it was given less than its first-token timeout).
PAST_DEADLINE = Failure(FailureKind.FIRST_TOKEN_TIMEOUT, "no first token by the resume deadline", retryable=False)

TryKey = Callable[[str | None], Awaitable[Failure | None]]
# The pins an answer created, and the affinity they are bound with (rewrite/exchange/affinity.py `created`).
Created = Callable[[], tuple[Affinity, tuple[str, ...]] | None]


class KeyAttempts:
    """The attempts on `provider`'s `model` over its key pool (or one attempt without a key, for no pool); none
    started, waited for or retried past `until` (a continuation's resume deadline)."""

    def __init__(self, cfg: StreamingConfig, clock: Clock, job: Job, provider: Provider, model: str,
                 proto: Protocol | None, until: float = math.inf, tokens: float = 0,
                 affinity: Affinity | None = None, wait: float = 0.0, created: Created | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.until = until
        self.job = job
        self.provider = provider
        self.model = model
        self.proto = proto  # the client's protocol, for the shape of Rotator's own error answer
        self.key: str | None = None  # the key of the last attempt
        self.tried = False  # whether an attempt was made (else every key was resting)
        self.held: contextlib.ExitStack | None = None  # the lease kept past `run` (keep_lease), for the caller to close
        self.tokens = tokens  # the request's, estimated: what its keys' quota windows must still hold
        self.passed: set[str] = set()  # the keys noted as passed over for a quota window
        # The request's conversation, for this pool (rewrite/pool/affinity.py): a busy bound key is waited for up to
        # `wait` seconds; the key that serves is bound, with the pins its answer `created`.
        self.affinity = affinity
        self.wait = wait
        self.created = created
        self.conversation = ""  # the name the conversation is bound under (the last pick's)
        self.pinned_rest = False  # ended with the 429 of a pin whose key rests too long (see `run`)
        self._impatient = False  # the bound key stayed busy past `wait`: placed elsewhere
        self._unbind: str | None = None  # the bound key that failed: unbound once the next pick saw it failed

    async def run(self, try_key: TryKey, keep_lease: bool = False) -> Failure | None:
        """None when `try_key` served the client (on `self.key`); else why the target failed, before the first
        token (every key resting, when none may be tried within first_token_timeout). With `keep_lease`, the lease
        of the attempt that served is kept in `self.held` (a WebSocket holds its key for as long as it is open)."""
        pool, cfg, clock = self.provider.pool, self.cfg, self.clock
        attempts = 1 + cfg.first_token_retries
        failure: Failure | None = None
        key: str | None = None
        for n in range(attempts):
            if clock.loop.time() >= self.until:
                if pool is not None:
                    self._unbound(pool)
                return PAST_DEADLINE
            prev = key
            pick = Pick(None)
            if pool is not None:
                pick = await self._pick(pool, prev)
                key = pick.key
                if key is None:  # every key out, or every usable one stayed at its max_concurrent
                    break
                self.key = key
                self.job.key = mask(key)
            wait = retry.wait_before(n, pick.wait, failure, pool is None or key == prev, pool is not None,
                                     cfg.first_token_timeout)
            if wait is not None and clock.loop.time() + wait >= self.until:
                pick.drop()
                return PAST_DEADLINE
            if wait is None:
                pick.drop()
                break
            if wait:
                await clock.sleep(wait)
            began = clock.loop.time()
            # The key is given back however the attempt ends, unless it is kept for what the attempt opened.
            self.tried = True
            with contextlib.ExitStack() as lease:
                if pool is not None and key is not None:
                    lease.enter_context(pool.lease(key, self.model, pick.held, pick.wait, self.tokens))
                failure = await try_key(key)
                if failure is None and keep_lease:
                    self.held = lease.pop_all()
            if pool is not None and key is not None:
                self._rest(pool, key, failure)
                self._bind(pool, key, pick, failure)
            if failure is None:
                return None
            if not failure.retryable or n + 1 == attempts:
                break
            self.job.note(Note.RETRY, f"attempt {n + 1} failed ({failure.reason}); retrying", attempt=n + 1,
                          reason=failure.reason, key=self.job.key, seconds=round(clock.loop.time() - began, 3))
        if pool is not None:
            self._unbound(pool)
        if failure is None:  # every key rests longer than a request may wait: nothing was sent upstream
            assert pool is not None
            self.job.key = None
            affinity = self.affinity
            if affinity is not None and affinity.hard and pick.why == BOUND and pick.key is not None and pick.wait:
                resting = Resting(pick.wait, rejected=False, pinned=affinity.said)  # (its state is there alone)
                self.pinned_rest = True
            else:
                resting = pool.resting(self.model, pick, self.tokens)
            return every_key_resting(self.provider, self.proto, resting, windows=bool(self.passed))
        return failure

    async def _pick(self, pool: KeyPool, avoid: str | None) -> Pick:
        """The pool's key for the next attempt and the seconds until it is back; while every usable key is at its
        max_concurrent, wait for a lease to come back (up to first_token_timeout). A None key: none to be had."""
        give_up = min(self.clock.loop.time() + self.cfg.first_token_timeout, self.until)
        prefetch, self.job.prefetch = self.job.prefetch, None
        affinity, patient = self.affinity, not self._impatient
        bound_until = min(self.clock.loop.time() + self.wait, give_up)
        while (pick := await pool.take(avoid, self.model, prefetch, self.tokens, affinity=affinity,
                                       patient=patient)).busy:
            # A conversation's bound key at its max_concurrent is waited for up to `wait`, then left.
            deadline = bound_until if patient and pick.why == BOUND else give_up
            returned = pool.returned()
            if not await self.clock.supervise(returned, functools.partial(float, deadline)):
                returned.cancel()
                if deadline >= give_up:
                    break
                patient = False
                self._impatient = True
        if prefetch is not None:
            prefetch.drop()  # (a no-op once taken; else it was another pool's or model's, or the pool decided alone)
        self._passed_over(pool, pick)
        self._chosen(pick, avoid)
        self.conversation = pick.conversation
        self._unbound(pool)
        return pick

    def _unbound(self, pool: KeyPool) -> None:
        if self._unbind is not None and self.affinity is not None:
            pool.unbind(self._unbind, self.affinity)
        self._unbind = None

    def _chosen(self, pick: Pick, avoid: str | None) -> None:
        """Say on the flow why a conversation's key was chosen (`Pick.why`), the key masked."""
        if not pick.why or pick.key is None or self.affinity is None:
            return
        why = pick.why
        if why == BOUND:
            said = f"bound: {self.affinity.said}"
        elif why == NEW:
            said = "new: most headroom"
        elif why == MOVED:
            failed = pick.bound is not None and pick.bound == avoid
            said = f"moved: key {'failed' if failed else 'busy' if self._impatient else 'resting'}"
        else:
            said = why
        if why == COMPACTION:
            logger.info("rotator: %s %s: conversation compacted: placed again on key %s", self.provider.name,
                        self.job.id[:8], mask(pick.key))
        self.job.note(Note.AFFINITY, f"key {mask(pick.key)}: {said}", key=mask(pick.key), why=why,
                      bound=mask(pick.bound) if pick.bound else None)

    def _bind(self, pool: KeyPool, key: str, pick: Pick, failure: Failure | None) -> None:
        """The conversation is bound to the key that served it (with the pins its answer created), or unbound from
        it by a deletion of its pin's state; dropped from the bound key when that key failed. (A client that leaves
        ends the attempts with CancelledError: the binding stays.)"""
        affinity = self.affinity
        if failure is not None:
            if affinity is not None and pick.why == BOUND:
                self._unbind = key  # (after the next pick, which says the conversation moved from it; or at the end)
            return
        if affinity is not None and affinity.drops:
            pool.unbind(key, affinity)
        elif affinity is not None:
            pool.bind(key, affinity, pick.conversation or affinity.name)
        created = self.created() if self.created is not None else None
        if created is not None:
            pins, extra = created
            pool.bind(key, pins, pick.conversation or pins.name, extra)

    def _passed_over(self, pool: KeyPool, pick: Pick) -> None:
        """Say on the flow which keys the pick passed over for a quota window, which window (as this process knows
        it) and until when (once a key)."""
        if not pick.passed:
            return
        now = time.time()
        known = {s.secret: (label, unit) for s, label, unit, _ in
                 passed_over(pool.states, pool.quotas, self.model, self.tokens, now)}
        for key, seconds in pick.passed:
            if key == pick.key or key in self.passed:
                continue
            self.passed.add(key)
            label, unit = known.get(key, ("", ""))
            what = f"its {label} {unit} window" if label else "a quota window the request counts in"
            self.job.note(Note.WINDOW, f"key {mask(key)} passed over: {what} would be exceeded (resets "
                          f"{iso(now + seconds)}, in {math.ceil(seconds)} s)", key=mask(key), window=label or None,
                          unit=unit or None, resets_at=iso(now + seconds))

    def _rest(self, pool: KeyPool, key: str, failure: Failure | None) -> None:
        """Tell the pool how the key did."""
        if failure is None:
            pool.succeeded(key)
            return
        rest = pool.failed(key, failure, self.model)
        if failure.stalled:
            logger.info("rotator: %s %s: key %s rests %g s (%s)", self.provider.name, self.job.id[:8], mask(key),
                        rest, failure.reason)


class Attempt:
    """One HTTP attempt of `call`'s target on one key, and what is done with the answer; its first token due by
    `until` at the latest (a continuation's resume deadline)."""

    def __init__(self, call: TargetCall, cfg: StreamingConfig, clock: Clock, answers: Answers, pump: Pump,
                 resume: Resume | None = None, until: float = math.inf) -> None:
        self.call = call
        self.until = until
        self.cfg = cfg
        self.clock = clock
        self.answers = answers
        self.pump = pump
        self.resume = resume  # the request's, when its client protocol has a resumer (rewrite/exchange/resume.py)

    async def on(self, key: str | None) -> Failure | None:
        """One attempt on `key`, sent again at once without what the upstream refused for as long as it refuses
        something new."""
        while (failure := await self._send(key)) is AGAIN:
            pass
        return failure

    def in_client_shape(self, failure: Failure) -> Failure:
        """The vendor's error answer, in the client's protocol (for a translated target)."""
        translation = self.call.leg.translation
        if failure.status is None or translation is None:
            return failure
        status, body = translation.error(failure.status, failure.body)
        return dataclasses.replace(failure, status=status, headers=error_headers(failure.headers), body=body)

    async def _send(self, key: str | None) -> Failure | None:
        call, req, clock = self.call, self.call.req, self.clock
        start = clock.loop.time()
        whole = start + req.total_timeout
        deadline = min(start + self.cfg.first_token_timeout if call.upstream_stream else whole, self.until)
        try:
            sending = asyncio.ensure_future(call.client.send(call.build(key), stream=True))
        except httpx.HTTPError as e:
            return Failure(FailureKind.BAD_REQUEST, f"bad upstream request: {e}", retryable=False)
        except ValueError as e:  # a header that cannot be sent (upstream.encode_headers): perhaps the key's
            return Failure(FailureKind.BAD_REQUEST, f"bad upstream request: {e}")
        except RecursionError:  # a body deep enough to parse, too deep to copy or encode
            answer = error_protocol(call.provider, req.proto).error_body(400, f"Rotator: {TOO_DEEP}")
            return Failure(FailureKind.BAD_REQUEST, TOO_DEEP, 400, [("content-type", "application/json")], answer,
                           retryable=False)
        try:
            if not await clock.supervise(sending, lambda: deadline):
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
                if deadline >= self.until:
                    return PAST_DEADLINE
                timeout = FailureKind.FIRST_TOKEN_TIMEOUT if call.upstream_stream else FailureKind.REQUEST_TIMEOUT
                return Failure(timeout, f"{timeout} (no response headers)", stalled=call.upstream_stream)
            resp = sending.result()
            capture = call.capture(resp)
            if resp.status_code < 400:
                call.seen(resp.status_code, resp.headers.multi_items(), b"", key)
        except httpx.TransportError as e:
            connect = isinstance(e, NO_CONNECTION)
            return Failure(FailureKind.CONNECT if connect else FailureKind.TRANSPORT,
                           f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, stalled=connect)
        finally:
            if not sending.done():
                sending.cancel()
        try:
            if resp.status_code >= 400:
                body = await self._error_body(resp, deadline)
                if isinstance(body, Failure):
                    return body
                if capture is not None:
                    capture.add(body)
                call.seen(resp.status_code, resp.headers.multi_items(), body, key)
                error = call.errors.read(resp.status_code, resp.headers.multi_items(), body, time.time())
                return self._refused(error, body, key) or self._error(error, resp, body)
            if (proto := req.proto) is not None and "text/event-stream" in resp.headers.get("content-type", ""):
                return await self._stream(resp, proto, deadline, capture)
            if call.asking is not None:  # (nothing but a stream can be spliced into the client's answer)
                return Failure(FailureKind.BAD_ANSWER, "the continuation was not answered as a stream", retryable=False)
            if (translation := call.leg.translation) is not None:
                return await self.answers.within(self.answers.translated(call, translation, resp, capture), whole)
            return await self.answers.within(self.answers.raw(call, resp, capture), whole)
        except BodyTooLarge as e:
            return Failure(FailureKind.ENDED_EARLY, f"{e}, before the answer started")
        except BODY_CUTS as e:
            return Failure(FailureKind.ENDED_EARLY, f"{type(e).__name__} before the answer started")
        finally:
            await resp.aclose()

    async def _error_body(self, resp: httpx.Response, deadline: float) -> bytes | Failure:
        """An error answer's body, read within the attempt's own deadline (heartbeats meanwhile) and up to
        ERROR_BODY_MAX bytes: a body that stalls is a stall of this attempt, retried like a first-token timeout."""
        reading = asyncio.ensure_future(read_whole(piece_reader(resp, ERROR_BODY_MAX), ERROR_BODY_MAX))
        try:
            if not await self.clock.supervise(reading, lambda: deadline):
                if deadline >= self.until:
                    return PAST_DEADLINE
                streamed = self.call.upstream_stream
                timeout = FailureKind.FIRST_TOKEN_TIMEOUT if streamed else FailureKind.REQUEST_TIMEOUT
                return Failure(timeout, f"{timeout} (status {resp.status_code}, its body stalled)",
                               stalled=streamed)
            return reading.result()
        finally:
            if not reading.done():
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

    def _refused(self, error: VendorError, body: bytes, key: str | None) -> Failure | None:
        """AGAIN when the error refuses something the request can go without (remembered for the next ones)."""
        call = self.call
        if call.asking == "prefill" and refuses_prefill(error.status, body):
            call.provider.prefill_refusals.add(call.model)
            return Failure(FailureKind.PREFILL_REFUSED, f"{call.model} refused the prefill", error.status,
                           retryable=False)
        if call.aggregate and refuses_stream(error):
            call.unforce()
            return AGAIN
        if call.asks_usage() and call.req.meter.refused(error):
            call.provider.refuses_stream_options = True
            call.job.note(Note.USAGE_REFUSED, f"{call.provider.name} refused stream_options: its Chat streams "
                          "go upstream without it, as the client sent them (their usage is not known)")
            return AGAIN
        return AGAIN if call.drops_refused(error) or call.drops_foreign(error, key) else None

    def _error(self, error: VendorError, resp: httpx.Response, body: bytes) -> Failure | None:
        """An error answer: retried, handed to the next target, or forwarded to the client."""
        call = self.call
        if error.kind is ErrorKind.QUOTA:
            call.spent(error)
        failure = retry.decide(error, resp.headers.multi_items(), body, call.provider.pool is not None)
        if failure is not None:
            return failure
        # The next target may serve it (not when a login was refused: its client must know); a continuation's error
        # never reaches the client (it ends as it was cut).
        if (resp.status_code in FALL_THROUGH_STATUS and call.more and call.login is None) or call.asking is not None:
            return Failure(FailureKind.STATUS, f"status {resp.status_code}", resp.status_code,
                           resp.headers.multi_items(), body, retryable=False)
        self.answers.error(call, resp.status_code, resp.headers, body)
        return None

    async def _stream(self, resp: httpx.Response, proto: Protocol, first_deadline: float,
                      capture: Capture | None) -> Failure | None:
        """An SSE answer (to a client speaking `proto`): pumped to the client (or folded, for a forced stream),
        ended honestly if cut."""
        call, answers, resume = self.call, self.answers, self.resume
        repairer, aggregator = call.leg.readers(call.req.client_stream, proto, call.adapters)
        repairer = call.plan_events(repairer)
        out, holder, watch = answers.out, None, None
        if resume is not None and resume.on_for(call):
            repairer, out, holder, watch = resume.watch(repairer, out, aggregator is not None)
        stream = ClientStream(out, call.job, self.clock, repairer, holder, watch)
        answers.repairer = repairer
        translated_from = call.leg.translation.upstream if call.leg.translation else None
        cause = await self.pump.run(resp, stream, aggregator, first_deadline, capture, translated_from)
        if not repairer.started and repairer.early_error is not None:
            return self._failed_early(resp, repairer.early_error, stream, aggregator, proto, cause)
        if not repairer.started:
            ended = f"stream ended before the first token ({cause})"
            if cause == "idle timeout":
                if first_deadline >= self.until:
                    return PAST_DEADLINE
                return Failure(FailureKind.FIRST_TOKEN_TIMEOUT, "first-token timeout", stalled=True)
            return Failure(FailureKind.ENDED_EARLY, ended)
        if resume is not None and resume.on_for(call) and resume.takes(call, stream, aggregator, cause, resp.headers):
            return None
        if aggregator is not None:
            answers.folded(call, proto, aggregator, repairer, cause, resp.headers)
        elif not repairer.complete:
            if call.leg.sealed and resume is not None and resume.wanted(call):
                call.job.note(Note.SIGNED, "the cut answer was not continued: the client's signed body is not "
                              "rewritten, and no route names a next target", skipped=["continuation"])
            stream.end_honestly(cause, self.cfg.on_truncation)
        return None

    def _failed_early(self, resp: httpx.Response, early: tuple[int, bytes], stream: ClientStream,
                      aggregator: Aggregator | None, proto: Protocol, cause: str) -> Failure | None:
        """An error among the stream's first events, before any content (an error inside a 200): read as the error
        answer it stands for (`early`: its status and body). A transient one, or a spent quota, is the attempt's
        failure: asked again, or left for the next target (the client, if none serves, gets the stream as it came);
        any other is the request's own, and the client gets it now."""
        call = self.call
        status, body = early
        headers = resp.headers.multi_items()
        error = call.errors.read(status, headers, body, time.time())
        if error.kind is ErrorKind.QUOTA:
            call.spent(error)
        failure = retry.decide(error, headers, body, call.provider.pool is not None)
        if failure is None:
            if aggregator is not None:
                self.answers.folded(call, proto, aggregator, stream.repairer, cause, resp.headers)
            else:
                stream.begin(stream.early or b"", response_headers(resp.headers))
            return None
        said = f"an error inside the 200 stream, as status {status}" + (f": {error.message[:120]}" if error.message
                                                                          else "")
        if aggregator is not None:  # (a folded answer's client gets the error answer it stands for)
            return dataclasses.replace(failure, reason=said, headers=[("content-type", "application/json")])
        return dataclasses.replace(failure, reason=said, status=200, headers=headers, body=stream.early or b"")
