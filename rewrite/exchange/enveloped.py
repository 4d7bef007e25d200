"""The client's writer for a call its client sent in an envelope whose answers are in it too (a login's, Code
Assist's; a cloud platform's, Bedrock's InvokeModel: rewrite/providers/wire.py, protocols/envelope.py): the engine
reads, repairs and writes the plain call inside; what it writes is put back in the envelope here, on its way to the
client. The wire's own events come through as they came (their bytes the envelope's, kept when the pump's parser
opened them); Rotator's own events (an honest ending, an error event) and another target's answers are put in an
envelope (a plain stream's content type made the envelope's, when its streams have their own: an AWS event
stream); errors go as they are."""

from __future__ import annotations

from protocols.base import SSE
from protocols.envelope import Envelope, EnvelopedAnswers
from rewrite.intake.loopback import Responder


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
        own = self._envelope.stream_type
        kind = next((v for n, v in headers if n.lower() == "content-type"), "")
        self._sse = SSE in kind or (own is not None and own in kind)
        if own is not None and SSE in kind:  # (a plain stream, another target's or Rotator's: put in the envelope's)
            headers = [(n, own if n.lower() == "content-type" else v) for n, v in headers]
        self._out.start(status, headers)

    def write(self, data: bytes) -> None:
        if data:
            self._out.write(self._answers.stream(data) if self._sse else self._envelope.enveloped_answer(data))

    async def drain(self) -> None:
        await self._out.drain()

    def finish(self) -> None:
        self._out.finish()
