"""Bedrock's InvokeModel calls with Anthropic bodies: pure helpers between them and Anthropic Messages.

- `POST .../model/{modelId}/invoke` and `/invoke-with-response-stream`: the model (id, inference profile or ARN,
  URL-encoded) is in the path, streaming is the operation's. The body is Anthropic's without `model` and `stream`,
  with `anthropic_version` (`bedrock-2023-05-31` from Claude Code; the anthropic SDK sends its own API version: it is
  kept as sent, never matched).
- A stream is an event stream whose `chunk` frames each carry one Anthropic event, `{"bytes": base64(JSON)}`
  (Bedrock adds `amazon-bedrock-invocationMetrics` to the last one's JSON); a failure is an exception frame, which
  the anthropic SDK reads as an `error` event `{"type": "error", "error": {"type": <exception>, "message": ...}}`.

`InvokeParser` opens the frames into the Anthropic events they carry (each `raw` still its frame's bytes), so
Anthropic's own repairer, aggregator and usage reader follow the stream; `framed` puts what such a repairer gives
back into frames: frames it passed on as they came, events Rotator wrote (an honest ending, an error) in new ones.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from protocols.base import Event
from protocols.eventstream import EventStreamParser, FrameError, event_frame, exception_frame, is_failure
from protocols.eventstream.codec import OVERHEAD
from protocols.families.bedrock.errors import exception_for
from protocols.sse import SSEParser, dumps, load_object
from protocols.translate.common import ERROR_STATUS

PATH = re.compile(r"/model/([^/]+)/(invoke|invoke-with-response-stream)$")
INVOKE = "/invoke"
INVOKE_STREAM = "/invoke-with-response-stream"
CHUNK = "chunk"
BYTES = "bytes"
ERROR = "error"
BEDROCK_VERSION = "bedrock-2023-05-31"  # what Claude Code sends, and Bedrock's documented value
ANTHROPIC_VERSION = "anthropic_version"
NOT_IN_BODY = ("model", "stream")  # the path and the operation say them
FRAME_FIRST_BYTES = (0, 1)


def invoke_model(path: str) -> str | None:
    """The model an InvokeModel call's path names (decoded), or None for another path."""
    match = PATH.search(path)
    return unquote(match.group(1), errors="replace") if match else None


def invoke_streams(path: str) -> bool:
    """Whether an InvokeModel call's path is the streaming one."""
    return path.endswith(INVOKE_STREAM)


def messages_body(body: dict, model: str, stream: bool) -> dict:
    """The Anthropic Messages body an InvokeModel body stands for (the model and streaming from the call)."""
    return {**body, "model": model, **({"stream": True} if stream else {})}


def invoke_body(messages: dict) -> dict:
    """An Anthropic Messages body as InvokeModel takes it: no `model` nor `stream`; `anthropic_version` as the body
    had it, else Bedrock's."""
    body = {k: v for k, v in messages.items() if k not in NOT_IN_BODY}
    body.setdefault(ANTHROPIC_VERSION, BEDROCK_VERSION)
    return body


# -- streams ----------------------------------------------------------------------------------------------------


def opened(event: Event) -> Event:
    """The Anthropic event a frame of an InvokeModelWithResponseStream carries, its `raw` still the frame's bytes: a
    chunk's decoded JSON, an exception's `error` event; another frame as it is (its data None: nothing to read)."""
    if is_failure(event):
        message = (load_object(event.data or "") or {}).get("message")
        error = {"type": event.event or ERROR, "message": message if isinstance(message, str) else ""}
        return Event(raw=event.raw, data=dumps({"type": ERROR, "error": error}).decode(), event=ERROR)
    if event.event != CHUNK:
        return Event(raw=event.raw)
    encoded = (load_object(event.data or "") or {}).get(BYTES)
    try:
        data = base64.b64decode(encoded if isinstance(encoded, str) else "", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise FrameError("an InvokeModel chunk whose bytes are not base64 of UTF-8 text") from None
    payload = load_object(data)
    kind = payload.get("type") if payload is not None else None
    return Event(raw=event.raw, data=data, event=kind if isinstance(kind, str) else None)


class InvokeParser:
    """An InvokeModelWithResponseStream read as the Anthropic events it carries (EventStreamParser's interface)."""

    def __init__(self) -> None:
        self._frames = EventStreamParser()

    @property
    def pending(self) -> bytes:
        return self._frames.pending

    @property
    def idle(self) -> bool:
        return self._frames.idle

    def feed(self, data: bytes) -> list[Event]:
        return [opened(e) for e in self._frames.feed(data)]

    def close(self) -> list[Event]:
        return self._frames.close()


def chunk_frame(event: dict) -> bytes:
    """The chunk frame carrying one Anthropic event, as Bedrock writes it."""
    return event_frame(CHUNK, {BYTES: base64.b64encode(dumps(event)).decode()})


def error_frame(error: dict) -> bytes:
    """The exception frame an Anthropic `error` event stands for, named by the Bedrock exception of its status."""
    status = ERROR_STATUS.get(str(error.get("type")), 500)
    message = error.get("message")
    return exception_frame(exception_for(status, in_stream=True), message if isinstance(message, str) else "")


def wrapped(event: Event) -> bytes:
    """The frame for one Anthropic event Rotator wrote (nothing for a block with no JSON event in it)."""
    payload = load_object(event.data or "")
    if payload is None:
        return b""
    if payload.get("type") == ERROR:
        error = payload.get(ERROR)
        return error_frame(error if isinstance(error, dict) else {})
    return chunk_frame(payload)


def framed(data: bytes) -> bytes:
    """What an Anthropic repairer fed `InvokeParser`'s events gives back, in frames: the frames it passed on as they
    came, the SSE events it wrote each in a new frame. A frame starts with its length, whose high byte is 0 or 1 for
    any frame within the limits; SSE text holds neither byte (JSON escapes control characters), so it runs to the
    next frame or the end."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if data[pos] in FRAME_FIRST_BYTES:
            end = pos + int.from_bytes(data[pos:pos + 4], "big")
            if not pos + OVERHEAD <= end <= len(data):
                raise FrameError("a frame cut short among a repairer's events")
            out.append(data[pos:end])
        else:
            end = min((i for i in (data.find(b, pos) for b in (b"\x00", b"\x01")) if i >= 0), default=len(data))
            parser = SSEParser()
            out += [wrapped(e) for e in parser.feed(data[pos:end]) + parser.close()]
        pos = end
    return b"".join(out)
