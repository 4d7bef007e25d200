"""The clocks of one request: when the upstream last sent something and the client was last written to, the
heartbeats during silences, and the supervisor that waits for a task against a deadline that may move."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from protocols.base import SSE
from rewrite.exchange.job import Job
from rewrite.intake.loopback import Responder
from rewrite.policy.outcomes import Note
from rewrite.waiting import first_done


def stream_headers(content_type: str) -> list[tuple[str, str]]:
    """The head of a stream Rotator writes (a translated one, or committed early by a heartbeat)."""
    return [("content-type", content_type), ("cache-control", "no-cache")]


SSE_HEADERS = stream_headers(SSE)


class Clock:
    """`last_rx` and `last_tx` are written by the pump on every streamed event (plain attributes: no call)."""

    def __init__(self, out: Responder | None, job: Job, heartbeat: bytes | None, interval: float,
                 headers: list[tuple[str, str]] = SSE_HEADERS) -> None:
        self.loop = asyncio.get_running_loop()
        self.out = out  # None: no client to write to (a WebSocket upgrade's attempts)
        self.job = job
        self.heartbeat = heartbeat  # None: no heartbeats (not a client's SSE stream)
        self.interval = interval
        self.headers = headers  # the client stream's, should a heartbeat commit it
        self.last_rx = self.last_tx = self.t0 = self.loop.time()
        # Set when a deadline moves earlier than the supervisor is sleeping for (the first token switches the
        # first-token deadline for the idle one).
        self.wake: asyncio.Future = self.loop.create_future()

    async def supervise(self, task: asyncio.Future, deadline: Callable[[], float]) -> bool:
        """Wait for `task`, sending heartbeats during silences. False if `deadline()` passed first."""
        interval = self.interval
        while True:
            now = self.loop.time()
            due = deadline()
            beat = self.last_tx + interval if self.heartbeat is not None else math.inf
            if now >= due:
                return False
            if now >= beat:
                self.beat()
                continue
            await first_done(task, self.wake, timeout=min(due, beat) - now)
            if task.done():
                return True
            if self.wake.done():
                self.wake = self.loop.create_future()

    async def sleep(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
        end = self.loop.time() + seconds
        await self.supervise(sleeper, lambda: end + 1)

    def beat(self) -> None:
        assert self.heartbeat is not None and self.out is not None
        if not self.out.committed:
            self.out.start(200, list(self.headers))
            self.job.note(Note.COMMITTED, "status 200 sent early, to keep the client alive with heartbeats")
        self.out.write(self.heartbeat)
        self.last_tx = self.loop.time()

    def first_token(self) -> None:
        """The first token is in: the supervisor now watches the idle deadline instead of the first-token one."""
        if not self.wake.done():
            self.wake.set_result(None)
        if self.job.ttft is None:  # (a continuation's first token is not the answer's)
            self.job.ttft = round(self.loop.time() - self.t0, 3)
