"""The client's writer for a call a login's client sent in an envelope of its own (rewrite/providers/login.py,
protocols/envelope.py): the engine reads, repairs and writes the plain call inside; what it writes is put
back in the envelope here, on its way to the client. The login's own events come through as they came (their
bytes the envelope's, kept when the pump's parser opened them); Rotator's own events (an honest ending, an
error event) and another target's answers are put in an envelope; errors go as they are."""

from __future__ import annotations

from protocols.envelope import Envelope, EnvelopedAnswers
from rewrite.intake.loopback import Responder

SSE = "text/event-stream"


class EnvelopedWriter(Responder):
    """`out`, writing what the client is sent in its envelope."""

    __slots__ = ("_out", "_envelope", "_answers", "_sse")

    def __init__(self, out: Responder, envelope: Envelope, answers: EnvelopedAnswers) -> None:
        # (the connection is `out`'s; `answers`: the events the pump's parser opened, put back here)
        self._out, self._envelope, self._answers, self._sse = out, envelope, answers, False

    def __getattr__(self, name: str):  # (the writer's state is `out`'s: flow_body, status, headers, finished, ...)
        return getattr(self._out, name)

    @property
    def committed(self) -> bool:
        return self._out.committed

    @property
    def blocked(self) -> bool:
        return self._out.blocked

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self._sse = any(n.lower() == "content-type" and SSE in v for n, v in headers)
        self._out.start(status, headers)

    def write(self, data: bytes) -> None:
        if data:
            self._out.write(self._answers.stream(data) if self._sse else self._envelope.enveloped_answer(data))

    async def drain(self) -> None:
        await self._out.drain()

    def finish(self) -> None:
        self._out.finish()
