"""What a transformed request looked like on its way: for each target tried, the request as it left Rotator and
the upstream's answer before Rotator translated or rewrote it (the flow's LLM view shows them,
rewrite/inspection/views.py).

Only requests whose upstream body is not the client's get steps (translated, adapted, sent as a stream, asked for
usage); a native request sent as it came records nothing. The request holds the bytes that were sent anyway (no
copy); an answer keeps at most MAX_BODY bytes. `record` turns a step into the small JSON-like dict a flow keeps.
Credentials are masked before a step is made: a step never holds a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rewrite.intake.big_json import Upload

MAX_BODY = 64 * 1024  # bytes of one body a step keeps; the rest is counted


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


def body_record(data: bytes | bytearray | Upload, size: int | None = None) -> dict:
    """A body as text, at most MAX_BODY bytes of it, and how many bytes were left out."""
    if isinstance(data, Upload):  # (a large body, never joined whole)
        size = data.size
        data = data.head(MAX_BODY)
    size = len(data) if size is None else size
    kept = bytes(data[:MAX_BODY])
    return {"body": kept.decode("utf-8", "replace"), "size": size, "left_out": max(0, size - len(kept))}


def record(step: Step) -> dict:
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
