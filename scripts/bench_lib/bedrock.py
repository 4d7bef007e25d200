"""The benchmark's Amazon Bedrock streams: InvokeModelWithResponseStream (Anthropic's events, base64 in `chunk`
frames) and ConverseStream (Converse's events), as the fake vendor writes them and the load client reads them.

AWS event stream frames (a length prefix, headers, the payload, two CRC32s) written and read here by hand, the bench
depending on nothing of Rotator's. Each content event carries the workload's `w<i> ts<ns> ` text, as the SSE ones do.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import zlib

HOST = b"bedrock-runtime.us-east-1.amazonaws.com"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PATHS = {"bedrock_invoke": f"/model/{MODEL}/invoke-with-response-stream",
         "bedrock_converse": f"/model/{MODEL}/converse-stream"}
FAMILIES = tuple(PATHS)
EVENT_STREAM = b"application/vnd.amazon.eventstream"
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\nx-bench-vendor: 1\r\n"
        b"transfer-encoding: chunked\r\n\r\n")
STAMP_RE = re.compile(rb" ts(\d+) ")


def _headers(kind: str) -> bytes:
    out = b""
    for name, value in ((":event-type", kind), (":content-type", "application/json"), (":message-type", "event")):
        out += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack("!H", len(value)) + value.encode()
    return out


_HEADERS: dict[str, bytes] = {}


def frame(kind: str, payload: bytes) -> bytes:
    head = _HEADERS.get(kind) or _HEADERS.setdefault(kind, _headers(kind))
    prelude = struct.pack("!II", 16 + len(head) + len(payload), len(head))
    body = prelude + struct.pack("!I", zlib.crc32(prelude)) + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


def _chunk(event: dict) -> bytes:
    return frame("chunk", b'{"bytes":"%b"}' % base64.b64encode(json.dumps(event, separators=(",", ":")).encode()))


# -- the vendor's side: first frames, one content event, last frames

def invoke_first() -> bytes:
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "bench-model", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 8, "output_tokens": 1}}
    return (_chunk({"type": "message_start", "message": message})
            + _chunk({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))


def invoke_event(i: int, t: int) -> bytes:
    return _chunk({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"w{i} ts{t} "},
                   "t": t})


def invoke_last(events: int) -> bytes:
    return (_chunk({"type": "content_block_stop", "index": 0})
            + _chunk({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                      "usage": {"output_tokens": events}})
            + _chunk({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": 8, "outputTokenCount": events, "invocationLatency": 1, "firstByteLatency": 1}}))


def converse_first() -> bytes:
    return frame("messageStart", b'{"role":"assistant"}')


def converse_event(i: int, t: int) -> bytes:
    return frame("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"w%d ts%d "},"t":%d}' % (i, t, t))


def converse_last(events: int) -> bytes:
    usage = b'{"usage":{"inputTokens":8,"outputTokens":%d,"totalTokens":%d},"metrics":{"latencyMs":1}}'
    return (frame("contentBlockStop", b'{"contentBlockIndex":0}') + frame("messageStop", b'{"stopReason":"end_turn"}')
            + frame("metadata", usage % (events, events + 8)))


STREAMS = {b"/invoke-with-response-stream": (invoke_first, invoke_event, invoke_last),
           b"/converse-stream": (converse_first, converse_event, converse_last)}


# -- the client's side

def request(family: str, words: str) -> tuple[str, dict, bytes]:
    """(path, body, headers) of a request signed by its client (a signature of the right shape, made now: Rotator
    sends it as it came; the bench vendor checks no signature)."""
    if family == "bedrock_invoke":
        body: dict = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1024,
                      "messages": [{"role": "user", "content": words}]}
    else:
        body = {"messages": [{"role": "user", "content": [{"text": words}]}], "inferenceConfig": {"maxTokens": 1024}}
    now = time.gmtime()
    auth = (f"Authorization: AWS4-HMAC-SHA256 Credential=AKIDBENCHFAKE0000001/{time.strftime('%Y%m%d', now)}/"
            "us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64)
    return PATHS[family], body, f"X-Amz-Date: {time.strftime('%Y%m%dT%H%M%SZ', now)}\r\n{auth}\r\n".encode()


class Frames:
    """Whole frames out of a stream's pieces, each as (event type, payload)."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, piece: bytes) -> list[tuple[bytes, bytes]]:
        buf = self.pending + piece if self.pending else piece
        out, pos = [], 0
        while len(buf) - pos >= 12:
            total, head = struct.unpack_from("!II", buf, pos)
            if len(buf) - pos < total:
                break
            headers = buf[pos + 12:pos + 12 + head]
            kind = headers.split(b":event-type\x07", 1)[1][2:].split(b"\r", 1)[0] if b":event-type" in headers else (
                b"exception")
            out.append((kind, buf[pos + 12 + head:pos + total - 4]))
            pos += total
        self.pending = buf[pos:]
        return out


def said(kind: bytes, payload: bytes) -> bytes:
    """What a frame says, as text to scan: a chunk's Anthropic event (decoded), another frame's payload."""
    if kind == b"chunk":
        return base64.b64decode(json.loads(payload)["bytes"])
    return payload


def terminal(kind: bytes, text: bytes) -> bool:
    return kind == b"metadata" or b'"message_stop"' in text
