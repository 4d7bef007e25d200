"""What a protocol's stream is split into (`Event`) and what splits it (`StreamParser`: protocols/sse.py's SSEParser,
an AWS event stream's parser), apart from protocols/base.py so that a parser and the protocols that use one import
both from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol as Interface


@dataclass(slots=True)
class Event:
    """One dispatched SSE block, not changed once made (not frozen: a frozen dataclass takes three times as long to
    make, and one is made for every event of every stream read whole).

    `data` is None for a block that dispatches nothing (comment-only or empty); such blocks are still handed out
    so their bytes can be forwarded. `raw` is the exact bytes of the block, its terminating blank line included.
    """

    raw: bytes
    data: str | None = None
    event: str | None = None
    id: str | None = None


class BrokenStream(ValueError):
    """Bytes a stream parser cannot go on from (an SSE event past its size limit, a frame that is not one): the
    stream is broken, not slow."""


class StreamParser(Interface):
    """What splits a protocol's stream into events (protocols/sse.py's SSEParser, an AWS event stream's parser): bytes
    in, whole events out, each with its exact bytes as `raw`; `pending` what is not a whole event yet, `idle` when
    nothing is; `close` at the end of the stream. Bytes it cannot go on from raise a `BrokenStream`."""

    @property
    def pending(self) -> bytes: ...

    @property
    def idle(self) -> bool: ...

    def feed(self, data: bytes) -> list[Event]: ...

    def close(self) -> list[Event]: ...
