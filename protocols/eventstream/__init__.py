"""AWS event streams (`application/vnd.amazon.eventstream`), the framing of Amazon Bedrock's streamed answers: the
frame codec (codec.py) and the frames read as the engine reads SSE events (events.py)."""

from protocols.eventstream.codec import (
    BadHeaders,
    BadLength,
    ChecksumMismatch,
    Frame,
    FrameDecoder,
    FrameError,
    Header,
    TruncatedFrame,
    encode_frame,
)
from protocols.eventstream.events import (
    EventStreamParser,
    FrameEvent,
    event_frame,
    exception_frame,
    frame_event,
    is_failure,
)

__all__ = [
    "BadHeaders",
    "BadLength",
    "ChecksumMismatch",
    "EventStreamParser",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "FrameEvent",
    "Header",
    "TruncatedFrame",
    "encode_frame",
    "event_frame",
    "exception_frame",
    "frame_event",
    "is_failure",
]
