"""The answer to a request whose client asked for it whole (not a stream), made within mitmproxy's `request` hook.

Such an answer reaches the client only once it is complete, so it need not go through the loopback server (a second
HTTP/1.1 exchange, over the in-memory pipe, and mitmproxy's server side for it): the engine writes it into a
`WholeAnswer`, and the addon gives it to the flow as its response. A stream, and a body too large to be held
(rewrite/intake/big_json.py), go through the loopback server as before.
"""

from __future__ import annotations

import sys

from rewrite.intake.loopback import FlowBody, Responder, not_answered, written


class WholeAnswer(Responder):
    """The engine's answer kept in memory, all of it (no head and tail as a flow shows of a stream), for the flow."""

    __slots__ = ()

    def __init__(self) -> None:  # (no writer: nothing is sent until the answer is whole)
        self.flow_body = FlowBody(head=sys.maxsize, tail=0)
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.finished = False
        self.answered = not_answered

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = headers

    def write(self, data: bytes) -> None:
        if data:
            self.flow_body.add(data)

    @property
    def blocked(self) -> bool:
        return False

    async def drain(self) -> None:
        return None

    def finish(self) -> None:
        self.finished = True

    def fields(self) -> list[tuple[bytes, bytes]]:
        """The answer's headers for the flow, its length among them."""
        return [*written(self.headers), (b"content-length", b"%d" % self.flow_body.size)]

    def body(self) -> bytes:
        return self.flow_body.shown()
