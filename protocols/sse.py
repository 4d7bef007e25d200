"""Incremental server-sent-events framing: bytes in, complete blocks out, and back."""

from __future__ import annotations

import json
import re

from .base import Event

# A line ending followed by an empty line. A lone CR must not be the first half of a CRLF.
_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
# A new chunk can complete a blank line that began at most this many bytes before it ("\r\n" + "\r\n").
_LOOKBEHIND = 3
_CR = 13

_FIELD_DATA = b"data"
_FIELD_EVENT = b"event"
_FIELD_ID = b"id"
_COMMENT = 58  # b":"


class SSEParser:
    """Splits a byte stream into SSE blocks, each handed out with its exact raw bytes.

    Concatenating the `raw` of every event handed out gives the input up to the last block boundary; what follows
    is `pending`. A block whose blank line ends in a CR at the very end of the input is held back until the next
    byte shows whether that CR is half of a CRLF; `close()` releases it at the end of the stream.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._tail = b""

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete trailing block."""
        return b"".join(self._parts)

    def feed(self, data: bytes) -> list[Event]:
        """Every block completed by this chunk, in order."""
        if not data:
            return []
        if self._parts:
            probe = self._tail + data
            if not _completes(probe, _BLANK_LINE.search(probe)):
                self._parts.append(data)
                self._tail = probe[-_LOOKBEHIND:]
                return []
            buf = b"".join(self._parts) + data
            pos = len(buf) - len(probe)
        else:
            buf, pos = data, 0
        events: list[Event] = []
        start = 0
        while _completes(buf, match := _BLANK_LINE.search(buf, pos)):
            pos = match.end()
            events.append(parse_block(buf[start:pos]))
            start = pos
        rest = buf[start:] if start else buf
        self._parts = [rest] if rest else []
        self._tail = rest[-_LOOKBEHIND:]
        return events

    def close(self) -> list[Event]:
        """At the end of the stream: a last block held back for a CR that turned out to end it."""
        buf = self.pending
        match = _BLANK_LINE.search(buf)
        if match is None:
            return []
        rest = buf[match.end() :]
        self._parts = [rest] if rest else []
        self._tail = rest[-_LOOKBEHIND:]
        return [parse_block(buf[: match.end()])]


def _completes(buf: bytes, match: re.Match | None) -> bool:
    """Whether a blank-line match really ends a block: not a CR at the end of the input, which may be half a CRLF."""
    return match is not None and (match.end() < len(buf) or buf[-1] != _CR)


def parse_block(raw: bytes) -> Event:
    """The event one complete block (terminating blank line included) dispatches."""
    data: list[str] = []
    event = id_ = None
    for line in raw.splitlines():
        if not line or line[0] == _COMMENT:
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == _FIELD_DATA:
            data.append(value.decode("utf-8", "replace"))
        elif name == _FIELD_EVENT:
            event = value.decode("utf-8", "replace")
        elif name == _FIELD_ID:
            id_ = value.decode("utf-8", "replace")
    return Event(raw=raw, data="\n".join(data) if data else None, event=event, id=id_)


def format_event(data: str | bytes, event: str | None = None, eol: bytes = b"\n") -> bytes:
    """One SSE block: an optional `event:` line, one `data:` line per line of `data`, and the blank line."""
    if isinstance(data, str):
        data = data.encode()
    head = b"event: " + event.encode() + eol if event is not None else b""
    if b"\n" in data or b"\r" in data:
        body = b"".join(b"data: " + line + eol for line in data.splitlines())
    else:
        body = b"data: " + data + eol
    return head + body + eol


def json_event(obj: object, event: str | None = None, eol: bytes = b"\n") -> bytes:
    """One SSE block carrying `obj` as compact JSON."""
    return format_event(dumps(obj), event, eol)


def dumps(obj: object) -> bytes:
    """Compact JSON, as the vendors send it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def load_object(data: str) -> dict | None:
    """An event's JSON object, or None if its data is not one."""
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
