"""Event stream frames as the engine reads streams: `Event`s, the same as an SSE parser hands out.

`EventStreamParser` has `SSEParser`'s interface (`feed`, `close`, `idle`, `pending`), so what reads a protocol's
stream (repairers, aggregators, usage readers, translators' decoders) reads these too: an event's `raw` is its
frame's exact bytes (forwarded as they came), its `event` the frame's `:event-type` (for an exception frame its
`:exception-type`, for an error frame its `:error-code`), its `data` the payload as text (an AWS payload is JSON).
Each is a `FrameEvent`, which also says the frame's `:message-type`: an exception or error frame says the stream
failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.events import Event
from protocols.eventstream.codec import Frame, FrameDecoder, Header, encode_frame
from protocols.sse import dumps

MESSAGE_TYPE = ":message-type"
EVENT_TYPE = ":event-type"
EXCEPTION_TYPE = ":exception-type"
CONTENT_TYPE = ":content-type"
ERROR_CODE = ":error-code"
ERROR_MESSAGE = ":error-message"

MESSAGE_EVENT = "event"
MESSAGE_EXCEPTION = "exception"  # a modelled exception of the operation (`throttlingException`, ...)
MESSAGE_ERROR = "error"  # a service error outside the model (`:error-code`, `:error-message`)
FAILURES = frozenset({MESSAGE_EXCEPTION, MESSAGE_ERROR})
JSON = "application/json"
CONTENT_TYPE_HEADER = "application/vnd.amazon.eventstream"  # the HTTP Content-Type of such a stream


@dataclass(slots=True)
class FrameEvent(Event):
    """An `Event` read from a frame: also its `:message-type` (`event`, `exception` or `error`)."""

    message_type: str = MESSAGE_EVENT

    @property
    def failure(self) -> bool:
        """An exception or error frame: the stream failed here."""
        return self.message_type in FAILURES


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def frame_event(frame: Frame) -> FrameEvent:
    """The event a frame stands for."""
    message_type = _text(frame.header(MESSAGE_TYPE)) or MESSAGE_EVENT
    data = frame.payload.decode("utf-8", "replace")
    if message_type == MESSAGE_EXCEPTION:
        name = _text(frame.header(EXCEPTION_TYPE))
    elif message_type == MESSAGE_ERROR:
        name = _text(frame.header(ERROR_CODE))
        if not data:
            data = dumps({"message": _text(frame.header(ERROR_MESSAGE)) or ""}).decode()
    else:
        name = _text(frame.header(EVENT_TYPE))
    return FrameEvent(raw=frame.raw, data=data, event=name, message_type=message_type)


def is_failure(event: Event) -> bool:
    """Whether an event is an exception or error frame."""
    return isinstance(event, FrameEvent) and event.failure


class EventStreamParser:
    """Splits an event stream into `FrameEvent`s, each handed out once its frame is whole.

    As `SSEParser`: `feed` returns the events a chunk completes, `pending` holds the bytes of an unfinished frame,
    `idle` says there are none. Unlike it, bytes that are not a frame raise a `FrameError` (codec.py), and so does
    `close` when the stream ended inside a frame (`TruncatedFrame`): a frame cut short cannot be read at all.
    """

    def __init__(self) -> None:
        self._frames = FrameDecoder()

    @property
    def pending(self) -> bytes:
        return self._frames.pending

    @property
    def idle(self) -> bool:
        return self._frames.idle

    def feed(self, data: bytes) -> list[Event]:
        return [frame_event(frame) for frame in self._frames.feed(data)]

    def close(self) -> list[Event]:
        self._frames.close()
        return []


def event_frame(event_type: str, payload: object) -> bytes:
    """A JSON event frame, headered as AWS writes them."""
    headers = (Header.of(EVENT_TYPE, event_type), Header.of(CONTENT_TYPE, JSON), Header.of(MESSAGE_TYPE, MESSAGE_EVENT))
    return encode_frame(headers, dumps(payload))


def exception_frame(exception_type: str, message: str) -> bytes:
    """An exception frame (`throttlingException`, ...) whose payload carries the message, as AWS writes them."""
    headers = (Header.of(EXCEPTION_TYPE, exception_type), Header.of(CONTENT_TYPE, JSON),
               Header.of(MESSAGE_TYPE, MESSAGE_EXCEPTION))
    return encode_frame(headers, dumps({"message": message}))
