"""The benchmark's fake LLM vendor: a loopback HTTP/1.1 server that streams OpenAI- and Anthropic-style SSE as fast
as it is asked to.

Run as `python -m bench_lib.vendor [--port N]`; prints `PORT <n>` on stdout once it listens. Plain asyncio streams
and hand-written HTTP/1.1 (keep-alive, chunked responses), events rendered from byte templates, so that it is
never the bottleneck.

The workload is chosen by `key=value` words anywhere in the request body (the benchmark puts them in the user
message, which every gateway forwards unchanged):
  events=N       content events in the stream (default 3)
  interval_ms=X  pause between writes, 0 = as fast as possible (default 0)
  batch=K        events per write: 1 = every event its own write and TCP segment (default 1)
  cut=K          the stream ends cleanly after K events, without its completion signal; a continuation of it
                 (Rotator asking for the rest) streams the events from K on, then completes
  ttft_ms=X      a pause of X ms after the stream's preamble, before its first content event (its time to first
                 token); with tail_pct=P, every (100/P)-th such attempt pauses tail_x=K times as long (default 10):
                 a long tail, exactly P % of the attempts (a hedge is an attempt of its own)
  phase_ms=P     with an interval: the writes fall on a fixed grid of the system-wide monotonic clock, at times
                 equal to P modulo the interval, instead of counting from the moment the request arrived. Concurrent
                 paced streams then stay spread as the client asked, whatever moments the proxy forwarded their
                 requests at (a proxy that forwards a burst of requests together would otherwise leave their
                 streams in step, and every later event of theirs would arrive at once).
Every content event carries different text (`w<i>`: LiteLLM aborts after 100 identical chunks) and its send time,
`time.monotonic_ns()` (CLOCK_MONOTONIC, system-wide on Linux), twice: as a top-level `"t"` field and inside the
text as ` ts<ns> ` (the text survives gateways that re-serialise chunks and drop unknown fields).

Routes: POST /v1/chat/completions (OpenAI, also under any prefix ending in /chat/completions), POST /v1/messages
(Anthropic); `"stream": true` gives SSE, otherwise one JSON body. POST /model/M/invoke-with-response-stream and
/model/M/converse-stream (Bedrock): AWS event stream frames (bench_lib/bedrock.py). GET /_stats returns request
counts per API key, and the input tokens of the answers started (INPUT_TOKENS each: what the vendor bills, an answer
cancelled included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
import threading
import time
from collections import Counter

from bench_lib.bedrock import HEAD as bedrock_head
from bench_lib.bedrock import STREAMS as bedrock_streams

now_ns = time.monotonic_ns

PARAM_RE = re.compile(rb"\b(events|interval_ms|batch|phase_ms|cut|ttft_ms|tail_pct|tail_x)=(\d+(?:\.\d+)?)")
# A request that asks for the rest of a cut answer (Rotator's continuation: in words, or by a trailing assistant turn).
CONTINUATION_RE = re.compile(rb'previous response was interrupted|"role"\s*:\s*"assistant"')
STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
USAGE_RE = re.compile(rb'"include_usage"\s*:\s*true')
MAX_EVENTS = 1_000_000
INPUT_TOKENS = 8  # every answer's prompt tokens (the templates' usage)

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
    b"x-bench-vendor: 1\r\ntransfer-encoding: chunked\r\n\r\n"
)

OPENAI_ROLE = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
)
OPENAI_EVENT = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model",'
    b'"choices":[{"index":0,"delta":{"content":"w%d ts%d "},"finish_reason":null}],"t":%d}\n\n'
)
# With stream_options.include_usage, OpenAI puts `"usage":null` at the end of every chunk before the usage chunk.
OPENAI_EVENT_NULL_USAGE = OPENAI_EVENT.replace(b"}\n\n", b',"usage":null}\n\n')
OPENAI_FINISH = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
)
OPENAI_USAGE = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model",'
    b'"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":%d,"total_tokens":%d}}\n\n'
)
OPENAI_DONE = b"data: [DONE]\n\n"

ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_bench","type":"message",'
    b'"role":"assistant","model":"bench-model","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":8,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)
ANTHROPIC_EVENT = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"w%d ts%d "},"t":%d}\n\n'
)
ANTHROPIC_END = (
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":%d}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def json_response(obj: dict, status: str = "200 OK") -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return (
        b"HTTP/1.1 %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\nx-bench-vendor: 1\r\n\r\n%b"
        % (status.encode(), len(body), body)
    )


def openai_json(n: int) -> dict:
    text = "".join(f"w{i} " for i in range(n))
    return {
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": n, "total_tokens": 8 + n},
    }


def anthropic_json(n: int) -> dict:
    text = "".join(f"w{i} " for i in range(n))
    return {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench-model",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 8, "output_tokens": n},
    }


class Vendor:
    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.requests = 0
        self.input_tokens = 0  # of the answers started
        self.paused = 0  # attempts asked for a time to first token (ttft_ms), for the tail's every (100/P)-th

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                try:
                    method, target, _ = lines[0].split(b" ", 2)
                except ValueError:
                    return
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    if b":" in line:
                        k, v = line.split(b":", 1)
                        headers[k.strip().lower()] = v.strip()
                if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    body = await read_chunked(reader)
                else:
                    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                close = headers.get(b"connection", b"").lower() == b"close"
                await self.respond(method, target.split(b"?", 1)[0], headers, body, writer)
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def respond(self, method: bytes, path: bytes, headers: dict, body: bytes, writer) -> None:
        self.requests += 1
        if method == b"GET" and path == b"/_stats":
            writer.write(json_response({"requests": self.requests, "keys": dict(self.keys),
                                        "paths": dict(self.paths), "input_tokens": self.input_tokens}))
            return
        key = headers.get(b"x-api-key") or headers.get(b"authorization", b"").removeprefix(b"Bearer ")
        self.keys[key.decode(errors="replace")] += 1
        self.paths[path.decode(errors="replace")] += 1
        if method != b"POST":
            writer.write(json_response({"error": {"message": "not found"}}, "404 Not Found"))
            return
        params = {k.decode(): float(v) for k, v in PARAM_RE.findall(body)}
        events = min(int(params.get("events", 3)), MAX_EVENTS)
        interval = params.get("interval_ms", 0.0) / 1000.0
        batch = max(1, int(params.get("batch", 1)))
        stream = STREAM_RE.search(body) is not None
        cut, first = int(params.get("cut", 0)), 0
        if cut and CONTINUATION_RE.search(body):
            cut, first = 0, cut
        pause = self.pause(params)
        self.input_tokens += INPUT_TOKENS
        if path.endswith(b"/chat/completions"):
            if not stream:
                writer.write(json_response(openai_json(events)))
                return
            asked = USAGE_RE.search(body) is not None
            usage = OPENAI_USAGE % (events, events + 8) if asked else b""
            await self.stream(writer, OPENAI_ROLE, OPENAI_EVENT_NULL_USAGE if asked else OPENAI_EVENT,
                              b"" if cut else OPENAI_FINISH + usage + OPENAI_DONE,
                              cut or events, interval, batch, params.get("phase_ms"), first, pause)
        elif (bedrock := next((v for k, v in bedrock_streams.items() if path.endswith(k)), None)) is not None:
            begin, event, end = bedrock
            await self.stream(writer, begin(), event, b"" if cut else end(events), cut or events, interval, batch,
                              params.get("phase_ms"), first, pause, head=bedrock_head)
        elif path.endswith((b"/v1/messages", b":streamRawPredict", b":rawPredict")):  # (Claude on Vertex too)
            if not stream:
                writer.write(json_response(anthropic_json(events)))
                return
            await self.stream(writer, ANTHROPIC_START, ANTHROPIC_EVENT, b"" if cut else ANTHROPIC_END % events,
                              cut or events, interval, batch, params.get("phase_ms"), first, pause)
        else:
            writer.write(json_response({"error": {"message": "not found"}}, "404 Not Found"))

    def pause(self, params: dict[str, float]) -> float:
        """Seconds between a stream's preamble and its first content event (`ttft_ms`, its long tail: `tail_pct`)."""
        ttft = params.get("ttft_ms", 0.0) / 1000.0
        if not ttft:
            return 0.0
        self.paused += 1
        tail = params.get("tail_pct", 0.0)
        if tail > 0 and self.paused % max(1, round(100 / tail)) == 0:
            return ttft * params.get("tail_x", 10.0)
        return ttft

    @staticmethod
    async def stream(writer, first: bytes, template, last: bytes, events: int, interval: float,
                     batch: int, phase_ms: float | None = None, i: int = 0, pause: float = 0.0,
                     head: bytes = SSE_HEAD) -> None:
        """Events `i` to `events` - 1 between `first` and `last` (b"": the body ends without it, a clean cut), the
        first of them `pause` seconds after `first`; `template`: bytes formatted with (i, t, t), or a function of
        (i, t) (a frame, whose length and CRCs follow its text)."""
        writer.write(head + chunk(first))
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)
        loop = asyncio.get_running_loop()  # (its clock is time.monotonic, the clock of now_ns)
        start = loop.time()
        writes = 0
        if interval > 0 and phase_ms is not None:  # the first write on the grid's next point
            period, t = int(interval * 1e9), now_ns()
            start = (t + (int(phase_ms * 1e6) - t) % period) / 1e9
        while i < events:
            if writer.transport.is_closing():  # the client left: stop producing
                return
            if interval > 0 and (writes or phase_ms is not None):
                # Absolute schedule, so that late wake-ups do not accumulate into a slower rate.
                delay = start + writes * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            t = now_ns()
            n = min(batch, events - i)
            if callable(template):
                payload = b"".join(template(j, t) for j in range(i, i + n))
            elif n == 1:
                payload = template % (i, t, t)
            else:
                payload = b"".join(template % (j, t, t) for j in range(i, i + n))
            i += n
            writes += 1
            writer.write(chunk(payload))
            await writer.drain()
        writer.write((chunk(last) if last else b"") + b"0\r\n\r\n")
        await writer.drain()


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--exit-with-stdin", action="store_true", help="exit when standard input closes")
    args = ap.parse_args()
    if args.exit_with_stdin:
        # The benchmark holds our stdin open; when it goes away (even killed), so do we.
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
    vendor = Vendor()
    server = await asyncio.start_server(vendor.handle, "127.0.0.1", args.port, backlog=1024, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        os._exit(0)
