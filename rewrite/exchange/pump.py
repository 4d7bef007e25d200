"""The pump: one upstream stream (SSE, or an AWS event stream: its parser is the attempt's) read, parsed, repaired
and written to the client, under the first-token and idle deadlines; and the client's side of a streamed answer
(`ClientStream`), which outlives one upstream response.

One pump task per upstream response reads, parses and writes; the clock (rewrite/exchange/clock.py) supervises it
against the deadlines and the heartbeat. Writes to the client are synchronous and whole events, so a heartbeat can
never split an event. The client's status and headers are committed at the first content byte, or at the first
heartbeat (whichever comes first)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import httpx

from protocols.base import Aggregator, Repairer
from protocols.events import BrokenStream, StreamParser
from protocols.resume import Holder
from protocols.sse import SSEParser
from protocols.translate.base import MALFORMED
from rewrite.accounting.usage import Meter
from rewrite.exchange.clock import SSE_HEADERS, Clock
from rewrite.exchange.job import Job
from rewrite.intake.loopback import Responder
from rewrite.lifecycle.views import Tapped
from rewrite.policy.outcomes import Note
from rewrite.upstream.bodies import BodyTooLarge, decoded
from rewrite.upstream.client import response_headers
from rewrite.upstream.transport import FastBody

logger = logging.getLogger("rotator")

Reader = Callable[[], Awaitable[bytes]]


class Abandoned(Exception):
    """Raised by a repairer that wants no more of this response (a continuation the seam refused)."""

Pusher = Callable[[Callable[[bytes], bool]], Awaitable[None]]


def piece_reader(resp: httpx.Response, cap: int) -> Reader:
    """The upstream body's next piece, b"" at its end. A FastBody (the lean transport's, rewrite/upstream/transport.py)
    is read directly, skipping httpx's per-piece layers; one with a content-encoding is decoded in bounded steps,
    BodyTooLarge past `cap` decoded bytes (rewrite/upstream/bodies.py)."""
    body = resp.stream
    if isinstance(body, FastBody):
        raw = body.next_piece
    elif resp.is_stream_consumed:  # a response built whole (not one the transport gives): its decoded bytes
        left = [resp.content]

        async def whole() -> bytes:
            return left.pop() if left else b""

        return whole
    else:
        pieces = resp.aiter_raw()
        raw = lambda: anext(pieces, b"")  # noqa: E731  (a one-line reader, as whole() above)
    encoding = resp.headers.get("content-encoding")
    return decoded(raw, encoding, cap) if encoding else raw


def piece_pusher(resp: httpx.Response) -> Pusher | None:
    """For a FastBody: its `push`, which hands pieces over as they arrive without waking a task for each (a streamed
    event's largest cost in Rotator's own code)."""
    body = resp.stream
    if isinstance(body, FastBody) and "content-encoding" not in resp.headers:
        return body.push
    return None


class ClientStream:
    """The client's side of one streamed answer: the writer, the repairer that tracks what the client was sent and
    says how to end it. It outlives one upstream response: a resumed answer would go on with a second one."""

    def __init__(self, out: Responder, job: Job, clock: Clock, repairer: Repairer, holds: type[Holder] | None = None,
                 watch: Callable[[bytes], bytes] | None = None, on_first: Callable[[], None] | None = None,
                 claim: Callable[[], None] | None = None) -> None:
        self.out = out
        self.job = job
        self.clock = clock
        self.repairer = repairer
        # While resume is on (rewrite/exchange/resume.py): what the client is sent passes `holder` first (a tool
        # call held until it is whole), one of `holds` made at the first tool call (its `marker`); a folded
        # stream's passes `watch` (kept for a continuation, held the same). A streamed answer is kept by the
        # client's writer itself (Responder.flow_body).
        self.holds = holds
        self.holder: Holder | None = None
        self.watch = watch
        self.early: bytes | None = None  # what came before an error among the first events (Repairer.early_error)
        self.on_first = on_first  # told when the first token came (the lifecycle's `first_token`)
        # Called at the first token before anything else (a race's attempt claims the client's answer: it raises
        # when the other attempt won; rewrite/exchange/race.py).
        self.claim = claim

    def first_token(self) -> None:
        """The first token came: the answer is claimed, the clocks switch to the idle deadline, and whoever asked
        is told."""
        if self.claim is not None:
            claim, self.claim = self.claim, None
            claim()
        self.clock.first_token()
        if self.on_first is not None:
            on_first, self.on_first = self.on_first, None
            on_first()

    def begin(self, first: bytes, headers: list[tuple[str, str]]) -> None:
        """The first token: commit the status (unless a heartbeat did) and write what was held back until now."""
        self.first_token()
        out = self.out
        if not out.committed:
            out.start(200, headers)
        out.write(first)
        self.clock.last_tx = self.clock.last_rx
        self.job.delivered = self.repairer.complete

    def end_honestly(self, cause: str, ending: str) -> None:
        """The upstream stopped before the completion signal: end the stream so that it says it was cut."""
        self.job.note(Note.REPAIRED, f"stream ended without its completion signal ({cause}); ended as {ending}",
                      cause=cause)
        self.out.write(self.repairer.end(ending))
        # The end of the response goes with the ending: a client that closes as soon as it reads the ending
        # (the OpenAI SDK does at [DONE]) must not beat it to mitmproxy.
        self.out.finish()
        self.job.delivered = True


class Pump:
    """Reads upstream streams for one request. `translated_from`: the upstream protocol's name when the events are
    translated (for the usage meter); `stream_headers`: the client's, for a stream Rotator writes (translated)."""

    def __init__(self, clock: Clock, meter: Meter, max_body: int, idle_timeout: float,
                 stream_headers: list[tuple[str, str]] = SSE_HEADERS) -> None:
        self.stream_headers = stream_headers
        self.clock = clock
        self.meter = meter
        self.max_body = max_body
        self.idle_timeout = idle_timeout

    def twin(self) -> Pump:
        """A pump for an attempt that runs beside this one's (a race): its own usage meter."""
        return Pump(self.clock, self.meter.fork(), self.max_body, self.idle_timeout, self.stream_headers)

    async def run(self, resp: httpx.Response, stream: ClientStream, aggregator: Aggregator | None,
                  first_deadline: float, capture: Tapped | None, translated_from: str | None,
                  parser: Callable[[], StreamParser] = SSEParser) -> str:
        """Pump `resp` (its events as `parser` reads them) into `stream` (or, with an aggregator, into it) until the
        upstream ends or a deadline passes (the first token's until it is in, then the idle one). Returns how the
        upstream ended."""
        pumping = asyncio.ensure_future(self.read(resp, stream, aggregator, capture, translated_from, parser))
        idle, clock, repairer = self.idle_timeout, self.clock, stream.repairer

        def deadline() -> float:
            return clock.last_rx + idle if repairer.started else first_deadline

        try:
            finished = await clock.supervise(pumping, deadline)
        finally:
            if not pumping.done():
                pumping.cancel()
                await asyncio.gather(pumping, return_exceptions=True)
        return "idle timeout" if finished is False else pumping.result()

    async def read(self, resp: httpx.Response, stream: ClientStream, aggregator: Aggregator | None,
                   capture: Tapped | None, translated_from: str | None, parser: Callable[[], StreamParser]) -> str:
        """Read the upstream, track it, and write what the client receives. Returns how the upstream ended."""
        next_piece = piece_reader(resp, self.max_body)
        push = piece_pusher(resp) if aggregator is None else None
        if capture is not None:  # the raw stream, for the flow's steps
            next_piece, push = capture.reader(next_piece), None
        feed = self.meter.tap(stream.repairer.feed, translated_from)
        try:
            if aggregator is not None:
                await self._fold(parser(), next_piece, feed, stream, aggregator)
            else:
                headers = self.stream_headers if translated_from is not None else response_headers(resp.headers)
                await self._stream(parser(), next_piece, push, feed, stream, headers)
        except httpx.TransportError as e:
            return f"upstream reset: {type(e).__name__}"
        except BodyTooLarge as e:
            return str(e)
        except httpx.DecodingError as e:
            return f"upstream body undecodable: DecodingError: {e}"
        except (BrokenStream, Abandoned) as e:  # (an event too large, a frame that is not one)
            return str(e)
        except MALFORMED as e:  # valid JSON of a shape the protocol's reader cannot follow: a broken body too
            logger.warning("rotator: %s: upstream event not understood: %s: %s", stream.job.id[:8],
                           type(e).__name__, e)
            logger.debug("rotator: where the upstream event was not understood", exc_info=True)
            return f"upstream event not understood ({type(e).__name__})"
        return "upstream ended"

    async def _fold(self, parser: StreamParser, next_piece: Reader, feed: Callable, stream: ClientStream,
                    aggregator: Aggregator) -> None:
        """A forced stream: every event to the aggregator, nothing to the client."""
        clock, job, repairer, watch = self.clock, stream.job, stream.repairer, stream.watch
        loop = clock.loop
        while chunk := await next_piece():
            clock.last_rx = loop.time()
            for e in parser.feed(chunk):
                data = feed(e)
                if watch is not None:
                    watch(data)
                aggregator.feed(e)
            if repairer.started and (job.ttft is None or stream.on_first is not None or stream.claim is not None):
                stream.first_token()
        for e in parser.close():  # a last block whose blank line ended in a lone CR
            data = feed(e)
            if watch is not None:
                watch(data)
            aggregator.feed(e)

    async def _stream(self, parser: StreamParser, next_piece: Reader, push: Pusher | None, feed: Callable,
                      stream: ClientStream, headers: list[tuple[str, str]]) -> None:
        """A client's stream: held back until its first token (a retry stays possible until then), then written
        as it comes. `headers`: the client's, should the first token commit the status."""
        clock, job, out, repairer = self.clock, stream.job, stream.out, stream.repairer
        loop, holds, holder = clock.loop, stream.holds, stream.holder
        marker = holds.marker if holds is not None else None

        def hold(data: bytes) -> bytes:
            """`data` through the stream's holder, made at its first tool call."""
            nonlocal holder
            if holder is None:
                assert holds is not None
                holder = stream.holder = holds()
            return holder.feed(data)

        def fed(events: list) -> bytes:
            data = feed(events[0]) if len(events) == 1 else b"".join([feed(e) for e in events])
            if (holder is not None and holder.holding) or (marker is not None and data.find(marker) >= 0):
                data = hold(data)
            return data

        if not repairer.started:  # (a stream already begun goes on with this response: nothing is held)
            held: list[bytes] = []
            ended = False
            while not repairer.started and not ended and repairer.early_error is None:
                chunk = await next_piece()
                if chunk:
                    clock.last_rx = loop.time()
                    events = parser.feed(chunk)
                else:
                    events, ended = parser.close(), True  # (a last block whose blank line ended in a lone CR)
                if events:
                    held.append(fed(events))
            if not repairer.started:
                if repairer.early_error is not None:  # the attempt's failure: what came is kept for the client
                    stream.early = b"".join(held)
                return
            stream.begin(b"".join(held), headers)
            if ended:
                return
            await out.drain()

        quiet, forward = repairer.quiet, self.meter.forwarder()
        # asyncio's clock without the method around it (a call less per event), unless the loop has its own
        now = time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time

        def on_piece(chunk: bytes) -> bool:
            """One piece after the first token, read or pushed (as it arrives, without a task woken for it).
            True: the client is not keeping up (stop pushing; the read loop drains)."""
            clock.last_rx = t = now()
            if parser.idle and quiet(chunk):  # the usual delta, one whole block: no need to read it
                data = forward(chunk) if forward is not None else chunk
                if data is not None:
                    if holder is not None and holder.holding:  # (a quiet block never opens a tool call)
                        data = holder.feed(data)
                    if data:  # (nothing: a tool call held back; heartbeats go on meanwhile)
                        out.write(data)
                        clock.last_tx = t
                    return out.blocked
            events = parser.feed(chunk)
            if events:  # (`fed` written out: a call less per event)
                data = feed(events[0]) if len(events) == 1 else b"".join([feed(e) for e in events])
                if (holder is not None and holder.holding) or (marker is not None and data.find(marker) >= 0):
                    data = hold(data)
                if data:
                    out.write(data)
                    clock.last_tx = t
                job.delivered = repairer.complete
            return out.blocked

        while True:
            if push is not None:  # pieces handled as they arrive, until the body ends or the client lags
                await push(on_piece)
                await out.drain()
            chunk = await next_piece()
            if not chunk:
                break
            on_piece(chunk)
            await out.drain()
        if events := parser.close():
            out.write(fed(events))
            job.delivered = repairer.complete
