"""The steps a transformed request went through, for the flow's view (rewrite/inspection/views.py): for each target
whose upstream request is not the client's own bytes (translated, adapted, sent as a stream, asked for usage), that
request as it left Rotator (its credential masked, as its payer shows it) and, where Rotator translates or rewrites
the answer, the upstream's raw answer as the attempt reads it (`Capture`). A native request sent as it came records
nothing; the flow's view shows what was recorded (rewrite/inspection/steps.py).

A step holds the bytes that were sent anyway (no copy) until the request ends; then it becomes the small JSON-like
dict the flow keeps, in `rotator.steps` (`record`). Credentials are masked before a step is made: a step never holds
a key."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewrite.intake.big_json import Upload
from rewrite.lifecycle.events import Built, Finished, Tap
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.views import ClientView, RequestView, TargetView

STEPS = "steps"  # its name in the flow's `rotator` metadata
MAX_BODY = 64 * 1024  # bytes of one body a step keeps (a request's, an answer's); the rest is counted


class Capture:
    """The head of an upstream answer (its first MAX_BODY bytes) and its whole size."""

    __slots__ = ("status", "content_type", "head", "size")

    def __init__(self, status: int, content_type: str) -> None:
        self.status = status
        self.content_type = content_type
        self.head = bytearray()
        self.size = 0

    def add(self, data: bytes) -> None:
        if len(self.head) < MAX_BODY:
            self.head += data[: MAX_BODY - len(self.head)]
        self.size += len(data)

    def reader(self, next_piece):
        """`next_piece` (an async reader of the body's pieces) that keeps what it reads here as well."""

        async def read() -> bytes:
            piece = await next_piece()
            self.add(piece)
            return piece

        return read


@dataclass(slots=True)
class Step:
    """One target's upstream request (credentials masked) and the answer it gave."""

    target: str  # provider/model
    protocol: str  # what the upstream speaks
    changes: list[str]  # what Rotator did to the client's request, in words
    method: str = "POST"
    url: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Upload = b""
    answer: Capture | None = None


class Steps(Plugin):
    name = STEPS

    def engage(self, ctx: RequestView) -> Part | None:
        return Recording(ctx) if ctx.req is not None and ctx.req.proto is not None else None


class Recording(Part):
    def __init__(self, ctx: RequestView) -> None:
        self.job, self.req = ctx.job, ctx.req
        self.steps: dict[int, Step] = {}  # by id() of the target's call, in the order the targets were tried

    def built(self, e: Built) -> None:
        """Keep the upstream request of this target (its last attempt's)."""
        call, out = e.call, e.outbound
        step = self.steps.get(id(call))
        if step is None:
            step = self.steps[id(call)] = Step(call.name, call.protocol.name if call.protocol else "", [])
        step.changes = changes(call, self.req)
        step.method, step.url, step.headers, step.body = (out.method, out.url + (f"?{out.query}" if out.query else ""),
                                                          out.headers, out.content)
        step.answer = None

    def tap(self, e: Tap) -> Capture | None:
        """Where the current attempt's raw answer is kept, when Rotator translates or rewrites it for the client."""
        call = e.call
        step = self.steps.get(id(call))
        if step is None or not (call.translation is not None or call.rewrites.answering or call.aggregate):
            return None
        step.answer = Capture(e.status, e.content_type)
        return step.answer

    def finished(self, e: Finished) -> None:
        if self.steps:
            self.job.records[STEPS] = [record(s) for s in self.steps.values()]


def changes(call: TargetView, req: ClientView | None) -> list[str]:
    """What Rotator did to the client's request for this target, in words."""
    said = []
    asked = req.asked if req is not None else ""
    if call.translation is not None:
        said.append(f"translated from {call.translation.client} to {call.translation.upstream}")
        said += call.translation.fitted
    elif not call.unchanged:
        said.append(f"model {asked} sent as {call.model}" if call.model != asked
                    else "conversation state put into the body")
    if call.aggregate:
        said.append("sent as a stream (force_upstream_stream), the answer folded back into JSON")
    elif call.ask_usage:
        said.append("asked for the usage chunk (stream_options.include_usage)")
    chain = call.rewrites
    if chain.adapters:
        said.append("adapters: " + ", ".join(a.name for a in chain.adapters))
    return said + call.said


def body_record(data: bytes | bytearray | Upload, size: int | None = None) -> dict:
    """A body as text, at most MAX_BODY bytes of it, and how many bytes were left out."""
    if isinstance(data, Upload):  # (a large body, never joined whole)
        size = data.size
        data = data.head(MAX_BODY)
    size = len(data) if size is None else size
    kept = bytes(data[:MAX_BODY])
    return {"body": kept.decode("utf-8", "replace"), "size": size, "left_out": max(0, size - len(kept))}


def record(step: Step) -> dict:
    """A step as the flow keeps it."""
    out = {
        "kind": "upstream",
        "target": step.target,
        "protocol": step.protocol,
        "changes": list(step.changes),
        "request": {"method": step.method, "url": step.url, "headers": [list(h) for h in step.headers],
                    **body_record(step.body)},
    }
    if step.answer is not None:
        a = step.answer
        out["answer"] = {"status": a.status, "content_type": a.content_type, **body_record(a.head, a.size)}
    return out
