"""The upstream's raw answer as an attempt reads it (`Capture`), where the flow's steps keep it: the answer before
Rotator translated or rewrote it (the steps plug-in, rewrite/plugins/steps.py, records them; the flow's LLM view shows
them, rewrite/inspection/views.py). An answer keeps at most MAX_BODY bytes.
"""

from __future__ import annotations

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
