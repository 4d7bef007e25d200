"""Bedrock's answers as AWS writes them, encoded here independently of protocols/eventstream/ (string headers, both
CRCs): InvokeModelWithResponseStream's chunk frames around Anthropic's events (with the `p` padding Bedrock adds, and
its invocation metrics on the last), exception frames. Used by the unit tests and the fake Bedrock alike."""

from __future__ import annotations

import base64
import json
import struct
import zlib

from tests.support import samples
from tests.support.streams import parse

METRICS = {"inputTokenCount": 472, "outputTokenCount": 89, "invocationLatency": 2113, "firstByteLatency": 480}
EVENT_STREAM = "application/vnd.amazon.eventstream"


def aws_frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """A frame as AWS writes it: string headers, both CRCs."""
    head = b"".join(bytes([len(n)]) + n.encode() + b"\x07" + struct.pack("!H", len(v)) + v.encode() for n, v in headers)
    lengths = struct.pack("!II", 16 + len(head) + len(payload), len(head))
    body = lengths + struct.pack("!I", zlib.crc32(lengths)) + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


def bedrock_chunk(event: dict) -> bytes:
    payload = {"bytes": base64.b64encode(json.dumps(event).encode()).decode(), "p": "abcdefghijklmnopqrstu"}
    return aws_frame([(":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")],
                     json.dumps(payload).encode())


def bedrock_exception(name: str, message: str) -> bytes:
    return aws_frame([(":exception-type", name), (":content-type", "application/json"),
                      (":message-type", "exception")], json.dumps({"message": message}).encode())


def anthropic_events(sse: bytes) -> list[dict]:
    return [json.loads(e.data) for e in parse(sse) if e.data]


def bedrock_stream(sse: bytes) -> bytes:
    """Anthropic's stream as Bedrock sends it: one chunk per event (pings too), the metrics on message_stop."""
    events = anthropic_events(sse)
    events[-1]["amazon-bedrock-invocationMetrics"] = METRICS
    return b"".join(map(bedrock_chunk, events))


def bedrock_frames(sse: bytes) -> list[bytes]:
    """`bedrock_stream`, one frame per event."""
    events = anthropic_events(sse)
    events[-1]["amazon-bedrock-invocationMetrics"] = METRICS
    return [bedrock_chunk(e) for e in events]


TOOL_USE = bedrock_stream(samples.ANTHROPIC_TOOL_USE)
TEXT = bedrock_stream(samples.ANTHROPIC_TEXT)
