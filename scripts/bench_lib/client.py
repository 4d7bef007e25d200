"""The benchmark's load client: raw asyncio + ssl, hand-written HTTP/1.1, minimal SSE scanning.

Runs as a worker (`python -m bench_lib.client`): reads one JSON job per line on stdin and answers one JSON result
per line on stdout. A target is reached either directly over plain HTTP (`kind: plain`: the fake vendor itself, or
a base-URL gateway such as LiteLLM) or, like any HTTPS_PROXY client, through an HTTP CONNECT tunnel to the proxy
and TLS to the vendor's hostname, trusting mitmproxy's CA (`kind: tunnel`).

Every content event carries its send time (` ts<ns> `, CLOCK_MONOTONIC); the client stamps each read with the same
clock, so every event's delivery delay is known. The CPU time and memory of the process under test are read from
/proc around the measured part of each job (connection set-up excluded).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import socket
import ssl
import sys
import time
import traceback

from bench_lib import bedrock
from bench_lib.agent import agent_body
from bench_lib.counters import Instructions
from bench_lib.procinfo import cpu_seconds, cpu_split, descendants, machine_busy_seconds, memory_kib
from bench_lib.procs import http_get
from bench_lib.stats import pcts

now_ns = time.monotonic_ns
STAMP_RE = re.compile(rb" ts(\d+) ")
# "vertex": Claude on Google Vertex AI, as AnthropicVertex calls it (the Messages body without `model`, with
# `anthropic_version`, the model, project and region in the path, a Google token).
HOSTS = {"openai": b"api.openai.com", "anthropic": b"api.anthropic.com",
         "vertex": b"us-east5-aiplatform.googleapis.com", **dict.fromkeys(bedrock.FAMILIES, bedrock.HOST)}
TERMINAL = {"openai": b"[DONE]", "anthropic": b"message_stop", "vertex": b"message_stop",
            **dict.fromkeys(bedrock.FAMILIES, b"")}
VERTEX_PATH = "/v1/projects/bench/locations/us-east5/publishers/anthropic/models/{model}:{method}"
# The fake vendor's own Anthropic stream names its message this; a translated one never does (its id, if kept,
# is the Chat completion's).
NATIVE_ANTHROPIC_ID = b'"msg_bench"'
READ_SIZE = 1 << 18
_ssl_contexts: dict[str, ssl.SSLContext] = {}


class BenchError(Exception):
    pass


def ssl_context(cafile: str) -> ssl.SSLContext:
    ctx = _ssl_contexts.get(cafile)
    if ctx is None:
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.set_alpn_protocols(["http/1.1"])
        _ssl_contexts[cafile] = ctx
    return ctx


def build_request(target: dict, family: str, stream: bool, events: int, interval_ms: float = 0,
                  batch: int = 1, phase_ms: float | None = None, body_kib: int = 0, cut: int = 0,
                  more: str = "", stream_last: bool = False) -> bytes:
    """One request; with `body_kib`, an agent-sized Anthropic body of about that size (agent.py; `stream_last`: its
    `stream` member after `messages`, where the anthropic SDK writes `stream=False`); with `cut`, the vendor cuts the
    stream after that many events (Rotator continues it); `more`: more of the vendor's words (vendor.py:
    `ttft_ms=100 tail_pct=5`)."""
    words = f"bench events={events} interval_ms={interval_ms:g} batch={batch}" + (f" {more}" if more else "")
    if cut:
        words += f" cut={cut}"
    if phase_ms is not None:
        words += f" phase_ms={phase_ms:.3f}"
    model = target.get("model", "bench-model")  # a model that a route sends elsewhere, for a translated case
    accept = b"text/event-stream" if stream else b"application/json"
    if family in bedrock.FAMILIES:  # (its operation says it streams; signed by the client)
        path, body, auth = bedrock.request(family, words)
        accept = bedrock.EVENT_STREAM
    elif family == "openai":
        path = target.get("openai_path", "/v1/chat/completions")
        body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": words}]}
        auth = b"Authorization: Bearer sk-bench-client\r\n"
    elif family == "vertex":
        path = VERTEX_PATH.format(model=model, method="streamRawPredict" if stream else "rawPredict")
        body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 1024, "stream": stream,
                "messages": [{"role": "user", "content": words}]}
        auth = b"Authorization: Bearer ya29.bench-client\r\nanthropic-version: 2023-06-01\r\n"
    else:
        path = target.get("anthropic_path", "/v1/messages")
        if body_kib:
            body = agent_body(body_kib << 10, model, stream, words)
            if stream_last:
                body["stream"] = body.pop("stream")
        else:
            body = {"model": model, "max_tokens": 1024, "stream": stream,
                    "messages": [{"role": "user", "content": words}]}
        auth = b"x-api-key: sk-ant-bench-client\r\nanthropic-version: 2023-06-01\r\n"
    if target["kind"] == "tunnel":
        host = HOSTS[family]
    else:
        host = b"127.0.0.1:%d" % target["port"]
    data = json.dumps(body, separators=(",", ":")).encode()
    auth += "".join(f"{h}\r\n" for h in target.get("headers", ())).encode()  # (a target's own, e.g. cluster.py's)
    return (
        b"POST %b HTTP/1.1\r\nHost: %b\r\n%bContent-Type: application/json\r\nAccept: %b\r\n"
        b"User-Agent: rotator-bench/1\r\nContent-Length: %d\r\n\r\n%b"
        % (path.encode(), host, auth, accept, len(data), data)
    )


class Conn:
    """One keep-alive HTTP/1.1 connection (inside a CONNECT tunnel + TLS for proxies)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r = reader
        self.w = writer
        self.buf = b""
        self.usable = True

    @classmethod
    async def open(cls, target: dict, family: str) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", target["port"], limit=READ_SIZE)
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target["kind"] == "tunnel":
            host = HOSTS[family]
            w.write(b"CONNECT %b:443 HTTP/1.1\r\nHost: %b:443\r\n\r\n" % (host, host))
            head = await r.readuntil(b"\r\n\r\n")
            if b" 200" not in head.split(b"\r\n", 1)[0]:
                w.close()
                raise BenchError(f"CONNECT refused: {head[:80]!r}")
            await w.start_tls(ssl_context(target["cafile"]), server_hostname=host.decode())
        return cls(r, w)

    def close(self) -> None:
        try:
            self.w.close()
        except Exception:
            pass


class Scan:
    """Counts stamped events as complete SSE events arrive and records their delivery delay.

    With `translated`, it also counts Anthropic text deltas and notices the vendor's own Anthropic stream, so that
    a translated case can prove it was translated."""

    __slots__ = ("pending", "events", "delays", "sends", "t_first", "terminal", "error", "terminal_mark",
                 "first_data", "translated", "text_events", "native", "kept", "frames")

    def __init__(self, family: str, collect: bool, translated: bool = False, keep: bool = False) -> None:
        self.kept: list[bytes] | None = [] if keep else None  # the body's pieces, when the job reads its text
        self.pending = b""
        self.events = 0
        self.delays: list[int] | None = [] if collect else None  # receive minus send time, per event
        self.sends: list[int] = []  # send times, when collecting
        self.t_first: int | None = None
        self.terminal = False
        self.error = False
        self.terminal_mark = TERMINAL[family]
        self.first_data = b""
        self.translated = translated
        self.text_events = 0
        self.native = False
        self.frames = bedrock.Frames() if family in bedrock.FAMILIES else None  # (an AWS event stream)

    def feed(self, piece: bytes, t: int) -> None:
        if self.kept is not None:
            self.kept.append(piece)
        if self.frames is not None:
            self._frames(piece, t)
            return
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n")
        p = self.pending + piece if self.pending else piece
        idx = p.rfind(b"\n\n")
        if idx < 0:
            self.pending = p
            return
        complete = p[: idx + 2]
        self.pending = p[idx + 2:]
        self._stamped(complete, t)
        if self.terminal_mark in complete:
            self.terminal = True
        if b'"error"' in complete:
            self.error = True
        if self.translated:
            self.text_events += complete.count(b'"text_delta"')
            if NATIVE_ANTHROPIC_ID in complete:
                self.native = True


    def _stamped(self, text: bytes, t: int) -> None:
        """One whole event's (or frame's) text read at `t`: its send stamps counted and their delays kept."""
        if not self.first_data:
            self.first_data = text[:300]
        stamps = STAMP_RE.findall(text)
        if stamps:
            if self.t_first is None:
                self.t_first = t
            self.events += len(stamps)
            if self.delays is not None:
                sends = [int(s) for s in stamps]
                self.sends.extend(sends)
                self.delays.extend([t - s for s in sends])

    def _frames(self, piece: bytes, t: int) -> None:
        for kind, payload in self.frames.feed(piece):
            text = bedrock.said(kind, payload)
            self._stamped(text, t)
            self.terminal = self.terminal or bedrock.terminal(kind, text)
            self.error = self.error or kind == b"exception"


class Response:
    __slots__ = ("status", "t0", "t_first_byte", "t_end", "body", "scan", "chunks", "reads", "head")

    def __init__(self) -> None:
        self.status = 0
        self.t0 = self.t_first_byte = self.t_end = 0
        self.body = b""
        self.scan: Scan | None = None
        self.chunks = 0
        self.reads = 0
        self.head = b""


async def roundtrip(conn: Conn, req: bytes, scan: Scan | None) -> Response:
    """Send one request and read its whole response; `scan` receives the body of a streamed response."""
    res = Response()
    res.scan = scan
    r = conn.r
    buf = conn.buf
    conn.buf = b""
    res.t0 = now_ns()
    conn.w.write(req)
    t = 0
    while True:
        i = buf.find(b"\r\n\r\n")
        if i >= 0:
            break
        data = await r.read(READ_SIZE)
        t = now_ns()
        if not data:
            conn.usable = False
            raise BenchError("connection closed before the response head")
        if not res.t_first_byte:
            res.t_first_byte = t
        buf += data
    if not res.t_first_byte:
        res.t_first_byte = now_ns()
        t = res.t_first_byte
    head = buf[:i]
    rest = buf[i + 4:]
    res.head = head[:400]
    lines = head.split(b"\r\n")
    try:
        res.status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError):
        conn.usable = False
        raise BenchError(f"bad status line {lines[0][:80]!r}") from None
    chunked = False
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        if k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
        elif k == b"content-length":
            length = int(v.strip())
        elif k == b"connection" and v.strip().lower() == b"close":
            conn.usable = False
    body_parts: list[bytes] = []
    sink = scan.feed if scan is not None else (lambda piece, _t: body_parts.append(piece))
    if chunked:
        dec = Dechunker()
        data = rest
        while True:
            if data:
                for piece in dec.feed(data):
                    sink(piece, t)
                if dec.done:
                    conn.buf = dec.leftover
                    break
            data = await r.read(READ_SIZE)
            t = now_ns()
            res.reads += 1
            if not data:
                conn.usable = False
                raise BenchError("connection closed inside a chunked body")
        res.chunks = dec.chunks
    elif length is not None:
        remaining = length
        data = rest
        while True:
            if data:
                take = data[:remaining]
                remaining -= len(take)
                sink(take, t)
                if remaining <= 0:
                    conn.buf = data[len(take):]
                    break
            data = await r.read(READ_SIZE)
            t = now_ns()
            res.reads += 1
            if not data:
                conn.usable = False
                raise BenchError("connection closed inside a body")
    else:  # delimited by the connection's end
        conn.usable = False
        data = rest
        while True:
            if data:
                sink(data, t)
            data = await r.read(READ_SIZE)
            t = now_ns()
            res.reads += 1
            if not data:
                break
    res.t_end = t or now_ns()
    if scan is None:
        res.body = b"".join(body_parts)
    return res


class Dechunker:
    """Incremental decoder of HTTP/1.1 chunked transfer coding."""

    def __init__(self) -> None:
        self.buf = b""
        self.need = 0  # data bytes left in the current chunk
        self.skip = 0  # CRLF bytes left after the current chunk
        self.trailer = False
        self.done = False
        self.leftover = b""
        self.chunks = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf + data if self.buf else data
        out = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self.need:
                take = min(self.need, n - pos)
                out.append(buf[pos:pos + take])
                pos += take
                self.need -= take
                if not self.need:
                    self.skip = 2
                continue
            if self.skip:
                s = min(self.skip, n - pos)
                pos += s
                self.skip -= s
                continue
            e = buf.find(b"\r\n", pos)
            if e < 0:
                break
            line = buf[pos:e]
            pos = e + 2
            if self.trailer:
                if not line:
                    self.done = True
                    self.leftover = buf[pos:]
                    self.buf = b""
                    return out
                continue
            size = int(line.split(b";", 1)[0], 16)
            if size == 0:
                self.trailer = True
            else:
                self.chunks += 1
                self.need = size
        self.buf = buf[pos:]
        return out


def check_stream(res: Response, family: str, events: int) -> str | None:
    """Why a streamed response is not a complete, correct stream; None when it is."""
    if res.status != 200:
        return f"HTTP {res.status}"
    s = res.scan
    if s.error:
        return "error event in stream: " + s.first_data[:160].decode(errors="replace")
    if not s.terminal:
        return f"no completion signal after {s.events}/{events} events"
    if s.events != events:
        return f"{s.events}/{events} events"
    return None


def check_whole_text(res: Response, events: int) -> str | None:
    """Why a streamed answer spliced from several (a resumed one: its text comes in other pieces) lacks some of its
    text or its completion; None when it has every event's word, once, and completes."""
    if res.status != 200 or not res.scan.terminal:
        return f"HTTP {res.status}" if res.status != 200 else "no completion signal"
    words = re.findall(rb"\bw(\d+) ts", b"".join(res.scan.kept or ()))
    if sorted(set(words), key=int) != [b"%d" % i for i in range(events)] or len(words) != events:
        return f"{len(set(words))}/{events} words ({len(words)} in all)"
    return None


def check_answer(res: Response, events: int) -> str | None:
    """Why a non-stream response is not the complete answer; None when it is."""
    if res.status != 200 or f"w{events - 1} ".encode() not in res.body:
        return f"HTTP {res.status}: {res.body[:120]!r}"
    return None


def check_translated(res: Response) -> None:
    """Fails the job (loudly, never a figure) unless the answer came translated from the Chat target."""
    if res.scan is None:  # a non-stream answer
        if NATIVE_ANTHROPIC_ID in res.body:
            raise BenchError("not translated: the vendor's own Anthropic answer came back (the route was not taken)")
        return
    s = res.scan
    if s.native:
        raise BenchError("not translated: the vendor's own Anthropic stream came back (the route was not taken)")
    if not s.text_events:
        raise BenchError(f"not translated: no Anthropic text_delta event in the answer (HTTP {res.status}, "
                         f"{s.events} stamped events; body {s.first_data[:160]!r})")


def proxy_pids(job: dict) -> list[int]:
    """Every process of the proxy under test now: the one started and those it started since (the big-body parsing
    worker, started during a job, counts from its start), not only those there when the job began."""
    root = job.get("root_pid")
    return descendants(root) if root else (job.get("pids") or [])


def proxy_cpu(job: dict) -> float:
    return cpu_seconds(proxy_pids(job))


def per_request(before: int | None, after: int | None, done: int, counter: Instructions) -> dict:
    """The proxy's instructions per request (bench_lib/counters.py), where they were counted."""
    if before is None or after is None or not done:
        return {}
    return {"proxy_instructions_per_request": (after - before) / done, "instructions_with_kernel": counter.kernel}


def ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


class Errors:
    def __init__(self) -> None:
        self.count = 0
        self.reasons: dict[str, int] = {}

    def add(self, reason: str) -> None:
        self.count += 1
        reason = reason[:200]
        if len(self.reasons) < 10 or reason in self.reasons:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def as_dict(self) -> dict:
        return {"errors": self.count, "error_reasons": self.reasons}


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# ---------------------------------------------------------------------------------------------------- jobs

async def job_probe(job: dict) -> dict:
    """One streamed and one non-stream request: does the target work at all?"""
    try:
        return await asyncio.wait_for(probe(job), job["time_limit"])
    except TimeoutError:
        return {"ok": False, "why": f"no complete answer within {job['time_limit']} s"}


async def probe(job: dict) -> dict:
    t, fam = job["target"], job.get("family", "openai")
    translated = bool(t.get("translated"))
    conn = await Conn.open(t, fam)
    try:
        res = await roundtrip(conn, build_request(t, fam, True, 5), Scan(fam, False, translated))
        why = check_stream(res, fam, 5)
        if why:
            return {"ok": False, "why": f"stream: {why}; head {res.head[:120]!r}; "
                                        f"body {res.scan.first_data[:200]!r}"}
        if translated:
            try:
                check_translated(res)
            except BenchError as e:
                return {"ok": False, "why": str(e)}
        if fam in bedrock.FAMILIES:  # (streams only: the bench asks for no non-stream Bedrock call)
            return {"ok": True}
        if not conn.usable:
            conn.close()
            conn = await Conn.open(t, fam)
        res = await roundtrip(conn, build_request(t, fam, False, 5), None)
        if res.status != 200 or b"w4" not in res.body:
            return {"ok": False, "why": f"non-stream: HTTP {res.status}, body {res.body[:200]!r}"}
        return {"ok": True}
    finally:
        conn.close()


async def bounded(conn: Conn, req: bytes, scan: Scan | None, timeout: float) -> Response:
    """A round trip that gives up after `timeout` seconds (the connection is then unusable)."""
    try:
        return await asyncio.wait_for(roundtrip(conn, req, scan), timeout)
    except TimeoutError:
        conn.usable = False
        raise BenchError(f"no complete response within {timeout:g} s") from None


GIVE_UP_AFTER = 3  # consecutive failed requests after which a job stops: the target is not answering


async def job_seq(job: dict) -> dict:
    """Sequential requests on one keep-alive connection: time to first byte and (streams) to first token.

    Streamed unless `stream` is false; with `body_kib`, agent-sized bodies."""
    t, fam = job["target"], job.get("family", "openai")
    n, events, deadline = job["n"], job.get("events", 3), time.monotonic() + job["time_limit"]
    timeout = job.get("request_timeout", 10)
    stream, cut = job.get("stream", True), job.get("cut", 0)
    req = build_request(t, fam, stream, events, body_kib=job.get("body_kib", 0), cut=cut, more=job.get("words", ""),
                        stream_last=job.get("stream_last", False))
    translated = bool(t.get("translated"))
    errors = Errors()
    conn = await Conn.open(t, fam)
    for _ in range(job.get("warmup", 0)):
        await bounded(conn, req, Scan(fam, False) if stream else None, timeout)
        if not conn.usable:
            conn.close()
            conn = await Conn.open(t, fam)
    ttfb, ttft, total = [], [], []
    vendor = job.get("vendor_port")  # (its counts, when the job reports what the vendor was asked: a hedge's cost)
    before = vendor_counts(vendor) if vendor else None
    counter = Instructions(job.get("pids") or [])
    cpu0, instr0 = proxy_cpu(job), counter.read()
    done = 0
    failed_in_a_row = 0
    for _ in range(n):
        if time.monotonic() > deadline:
            errors.add("time limit")
            break
        if failed_in_a_row >= GIVE_UP_AFTER:
            errors.add(f"gave up after {GIVE_UP_AFTER} failed requests in a row")
            break
        failed_in_a_row += 1
        try:
            if not conn.usable:
                conn.close()
                conn = await Conn.open(t, fam)
            res = await bounded(conn, req, Scan(fam, False, translated, keep=bool(cut)) if stream else None, timeout)
        except (OSError, BenchError, ssl.SSLError) as e:
            conn.usable = False
            errors.add(describe(e))
            continue
        done += 1
        why = (check_whole_text(res, events) if cut else check_stream(res, fam, events)) if stream else \
            check_answer(res, events)
        if why:
            errors.add(why)
            continue
        if translated:
            check_translated(res)
        failed_in_a_row = 0
        ttfb.append(res.t_first_byte - res.t0)
        total.append(res.t_end - res.t0)
        if stream:
            ttft.append(res.scan.t_first - res.t0)
    cpu1, instr1 = proxy_cpu(job), counter.read()
    if set(proxy_pids(job)) != set(job.get("pids") or []):  # (a process started since: its instructions not counted)
        instr1 = None
    counter.close()
    conn.close()
    b50, b99 = pcts(ttfb, (50, 99))
    f50, f99 = pcts(ttft, (50, 99))
    (t50,) = pcts(total, (50,))
    upstream = {}
    if before is not None and done:
        after = vendor_counts(vendor)
        upstream = {"upstream_requests_per_request": (after[0] - before[0]) / done,
                    "upstream_input_tokens_per_request": (after[1] - before[1]) / done}
    return {"requests": done, "ok": len(ttfb), "ttfb_p50_ms": ms(b50), "ttfb_p99_ms": ms(b99), "total_p50_ms": ms(t50),
            "ttft_p50_ms": ms(f50), "ttft_p99_ms": ms(f99), "request_bytes": len(req),
            "proxy_cpu_us_per_request": (cpu1 - cpu0) * 1e6 / done if done else None,
            **per_request(instr0, instr1, done, counter), **upstream, **errors.as_dict()}


def vendor_counts(port: int) -> tuple[int, int]:
    """The bench vendor's generation requests and the input tokens of the answers it started, so far."""
    status, body = http_get(port, "/_stats")
    if status != 200:
        raise BenchError(f"the vendor's /_stats answered {status}")
    stats = json.loads(body)
    return sum(stats["paths"].values()), stats["input_tokens"]


def redis_scripts(port: int) -> int:
    """How many Lua scripts (EVAL, EVALSHA) the Redis on `port` has run since it started."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"INFO commandstats\r\n")
        data = b""
        while b"\r\n" not in data or len(data) < data.index(b"\r\n") + 4 + int(data[1:data.index(b"\r\n")]):
            data += sock.recv(65536)  # (a bulk string: $<length>\r\n<text>\r\n)
    return sum(int(m) for m in re.findall(rb"cmdstat_eval(?:sha)?:calls=(\d+)", data))


async def job_seq_ab(job: dict) -> dict:
    """Sequential streamed requests on one keep-alive connection in several variants (the target's request with each
    of the `variants`' extra headers), alternating in blocks of `block` (A B B A A B ..., or A B C C B A ... for
    three): each variant's proxy CPU per request and TTFB p50. All share the machine's drift over the job, which
    jobs one after the other do not; the order there and back gives each variant as many blocks after each other.
    With `redis_port`, also the scripts that Redis ran per request of each variant (read between blocks): what shows
    that a variant's picks went through Redis or not."""
    t, fam, events = job["target"], job.get("family", "openai"), job.get("events", 3)
    n, block, timeout = job["n"], job.get("block", 10), job.get("request_timeout", 10)
    deadline = time.monotonic() + job["time_limit"]
    reqs = [build_request(dict(t, headers=[*t.get("headers", ()), *extra]), fam, True, events)
            for extra in job["variants"]]
    errors = Errors()
    conn = await Conn.open(t, fam)
    for i in range(job.get("warmup", 0)):
        await bounded(conn, reqs[i % len(reqs)], Scan(fam, False), timeout)
    cpu = [0.0] * len(reqs)
    done = [0] * len(reqs)
    ttfb: list[list[int]] = [[] for _ in reqs]
    scripts = [0] * len(reqs)
    instructions: list[int | None] = [0] * len(reqs)
    counter = Instructions(job.get("pids") or [])
    redis = job.get("redis_port")
    for k in range(-(-n // block) * len(reqs)):
        turn, i = divmod(k, len(reqs))
        v = i if turn % 2 == 0 else len(reqs) - 1 - i
        if time.monotonic() > deadline or not conn.usable:
            errors.add("time limit" if conn.usable else "connection lost")
            break
        scripts0 = redis_scripts(redis) if redis else 0
        cpu0, instr0 = proxy_cpu(job), counter.read()
        for _ in range(block):
            try:
                res = await bounded(conn, reqs[v], Scan(fam, False), timeout)
            except (OSError, BenchError, ssl.SSLError) as e:
                errors.add(describe(e))
                break
            done[v] += 1
            why = check_stream(res, fam, events)
            if why:
                errors.add(why)
                continue
            ttfb[v].append(res.t_first_byte - res.t0)
        cpu[v] += proxy_cpu(job) - cpu0
        instr1, so_far = counter.read(), instructions[v]
        instructions[v] = so_far + instr1 - instr0 if None not in (so_far, instr0, instr1) else None
        if redis:
            scripts[v] += redis_scripts(redis) - scripts0
    conn.close()
    counter.close()
    return {"variants": [{"requests": d, "proxy_cpu_us_per_request": c * 1e6 / d if d else None,
                          "ttfb_p50_ms": ms(pcts(times, (50,))[0]),
                          "redis_scripts_per_request": sc / d if redis and d else None,
                          **per_request(0, ins, d, counter)}
                         for d, c, times, sc, ins in zip(done, cpu, ttfb, scripts, instructions)],
            **errors.as_dict()}


async def job_long(job: dict) -> dict:
    """One long stream as fast as the path allows: events per second, proxy CPU per event."""
    t, fam = job["target"], job.get("family", "openai")
    events, batch = job["events"], job.get("batch", 1)
    translated = bool(t.get("translated"))
    errors = Errors()
    conn = await Conn.open(t, fam)
    await bounded(conn, build_request(t, fam, True, 3), Scan(fam, False), job.get("request_timeout", 10))  # warm
    if not conn.usable:
        conn.close()
        conn = await Conn.open(t, fam)
    req = build_request(t, fam, True, events, 0, batch)
    cpu0 = proxy_cpu(job)
    try:
        res = await asyncio.wait_for(roundtrip(conn, req, Scan(fam, False, translated)), job["time_limit"])
    except TimeoutError:
        conn.close()
        errors.add("time limit")
        return {"events": 0, "events_per_s": None, **errors.as_dict()}
    cpu1 = proxy_cpu(job)
    conn.close()
    why = check_stream(res, fam, events)
    if why:
        errors.add(why)
    if translated:
        check_translated(res)
    got = res.scan.events
    secs = (res.t_end - res.t0) / 1e9
    return {"events": got, "seconds": secs, "events_per_s": got / secs if secs > 0 and not why else None,
            "proxy_cpu_s": cpu1 - cpu0,
            "proxy_cpu_us_per_event": (cpu1 - cpu0) * 1e6 / got if got else None,
            "client_reads": res.reads, "chunks": res.chunks,
            "events_per_chunk": got / res.chunks if res.chunks else None,
            **({"text_events": res.scan.text_events} if translated else {}), **errors.as_dict()}


async def open_many(t: dict, fam: str, n: int, errors: Errors) -> list[Conn | None]:
    sem = asyncio.Semaphore(16)

    async def one() -> Conn | None:
        async with sem:
            try:
                return await asyncio.wait_for(Conn.open(t, fam), 30)
            except Exception as e:  # noqa: BLE001 - any failure is one failed stream
                errors.add("connect: " + describe(e))
                return None

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def sample_memory(pids: list[int], out: list[int], cpu: list[tuple[int, float]], period: float = 0.05) -> None:
    """RSS, and (time, CPU seconds) of the processes, every `period`."""
    while True:
        out.append(memory_kib(pids)[0])
        cpu.append((now_ns(), cpu_seconds(pids)))
        await asyncio.sleep(period)


def steady_cpu_per_event(cpu: list[tuple[int, float]], sends: list[int], start: int, end: int) -> float | None:
    """CPU µs per event between the first and the last CPU sample inside [start, end], over the events sent between
    those two samples: the cost of streaming alone, without the burst of starts and ends."""
    inside = [(t, c) for t, c in cpu if start <= t <= end]
    if len(inside) < 2:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    events = sum(1 for s in sends if t0 <= s < t1)
    return (c1 - c0) * 1e6 / events if events else None


async def job_paced(job: dict) -> dict:
    """Many concurrent streams, each one event every interval: per-event delivery delay, errors, CPU, RSS.

    All streams are connected first (TLS set-up is not measured) and start within one interval, each with its own
    phase: the vendor writes stream i's events at times i/streams of an interval apart from stream i-1's, on one
    clock, however the proxy spread or bunched the requests (vendor.py `phase_ms`). "Steady" figures
    count only events sent while all streams were streaming (from two intervals after the last stream's first
    event until the first stream's last event), so they show the cost of streaming itself; there is no such
    window when the target could not get every stream going before the first one ended. The "all" figures
    include the burst of simultaneous starts.
    """
    t, fam = job["target"], job.get("family", "openai")
    streams, events, interval_ms = job["streams"], job["events"], job["interval_ms"]
    pids = job.get("pids") or []
    errors = Errors()
    rss_idle = memory_kib(pids)[0]
    conns = await open_many(t, fam, streams, errors)
    scans: list[Scan] = []
    rss: list[int] = []
    cpu: list[tuple[int, float]] = []
    sampler = asyncio.create_task(sample_memory(pids, rss, cpu)) if pids else None
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    stagger = interval_ms / 1000.0 / max(1, streams)

    async def one(i: int, conn: Conn | None) -> None:
        if conn is None:
            return
        req = build_request(t, fam, True, events, interval_ms, 1, phase_ms=i * stagger * 1000)
        delay = start + i * stagger - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        scan = Scan(fam, True)
        scans.append(scan)
        try:
            res = await roundtrip(conn, req, scan)
            why = check_stream(res, fam, events)
            if why:
                errors.add(why)
        except (OSError, BenchError, ssl.SSLError) as e:
            errors.add(describe(e))
        except asyncio.CancelledError:
            errors.add("time limit")
        finally:
            conn.close()

    user0, sys0 = cpu_split(pids)
    load0 = cpu_seconds([os.getpid()] + (job.get("load_pids") or []))
    t0 = now_ns()
    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(conns)]
    _, pending = await asyncio.wait(tasks, timeout=job["time_limit"])
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    elapsed = (now_ns() - t0) / 1e9
    user1, sys1 = cpu_split(pids)
    cpu0, cpu1 = user0 + sys0, user1 + sys1
    load1 = cpu_seconds([os.getpid()] + (job.get("load_pids") or []))
    if sampler:
        sampler.cancel()
    rss_now, hwm = memory_kib(pids)
    rss.append(rss_now)
    delays = [d for s in scans for d in s.delays]
    firsts = [s.t_first for s in scans if s.t_first is not None]
    all_started = max(firsts) if len(firsts) == len(conns) and firsts else None
    # The steady window: every stream has started (and two intervals more have passed) and none has ended yet.
    steady: list[int] = []
    window_ms = 0.0
    steady_cpu = None
    if all_started is not None:
        steady_from = all_started + int(2 * interval_ms * 1e6)
        steady_to = min(s.sends[-1] for s in scans if s.sends)
        window_ms = max(0.0, (steady_to - steady_from) / 1e6)
        steady = [d for s in scans for send, d in zip(s.sends, s.delays) if steady_from <= send <= steady_to]
        steady_cpu = steady_cpu_per_event(cpu, [send for s in scans for send in s.sends], steady_from, steady_to)
    got = len(delays)
    a50, a99, amax = pcts(delays, (50, 99, 100))
    s50, s90, s99 = pcts(steady, (50, 90, 99))
    return {"streams": streams, "events": got, "expected_events": streams * events, "seconds": elapsed,
            "delay_p50_ms": ms(s50), "delay_p90_ms": ms(s90), "delay_p99_ms": ms(s99), "steady_events": len(steady),
            "steady_window_ms": window_ms,
            "delay_all_p50_ms": ms(a50), "delay_all_p99_ms": ms(a99), "delay_all_max_ms": ms(amax),
            "all_started_ms": ms(all_started - t0 - 50_000_000) if all_started is not None else None,
            "proxy_cpu_s": cpu1 - cpu0, "proxy_cpu_us_per_event": (cpu1 - cpu0) * 1e6 / got if got else None,
            "proxy_sys_us_per_event": (sys1 - sys0) * 1e6 / got if got else None,
            "proxy_cpu_us_per_event_steady": steady_cpu,
            "proxy_cpu_share": (cpu1 - cpu0) / elapsed if elapsed else None,
            "load_cpu_share": (load1 - load0) / elapsed if elapsed else None,
            "rss_idle_kib": rss_idle, "rss_peak_kib": max(rss) if pids else None, "hwm_kib": hwm if pids else None,
            **errors.as_dict()}


async def job_nonstream(job: dict) -> dict:
    """Non-stream requests from `concurrency` keep-alive connections: requests per second."""
    t, fam = job["target"], job.get("family", "openai")
    conc, total = job["concurrency"], job["total"]
    errors = Errors()
    conns = await open_many(t, fam, conc, errors)
    req = build_request(t, fam, False, 3)
    lat: list[int] = []
    issued = 0
    deadline = time.monotonic() + job["time_limit"]

    async def worker(conn: Conn | None) -> None:
        nonlocal issued
        if conn is None:
            return
        failed_in_a_row = 0
        while issued < total and time.monotonic() < deadline and failed_in_a_row < GIVE_UP_AFTER:
            issued += 1
            failed_in_a_row += 1
            try:
                if not conn.usable:
                    conn.close()
                    conn = await Conn.open(t, fam)
                res = await bounded(conn, req, None, job.get("request_timeout", 10))
            except (OSError, BenchError, ssl.SSLError) as e:
                conn.usable = False
                errors.add(describe(e))
                continue
            why = check_answer(res, 3)
            if why:
                errors.add(why)
                continue
            failed_in_a_row = 0
            lat.append(res.t_end - res.t0)
        conn.close()

    cpu0 = proxy_cpu(job)
    load0 = cpu_seconds([os.getpid()] + (job.get("load_pids") or []))
    t0 = now_ns()
    tasks = [asyncio.create_task(worker(c)) for c in conns]
    _, pending = await asyncio.wait(tasks, timeout=job["time_limit"] + 10)
    for task in pending:
        task.cancel()
    elapsed = (now_ns() - t0) / 1e9
    cpu1 = proxy_cpu(job)
    load1 = cpu_seconds([os.getpid()] + (job.get("load_pids") or []))
    if issued < total:
        errors.add(f"stopped (time limit or failures): {total - issued} requests not sent")
    l50, l99 = pcts(lat, (50, 99))
    return {"ok": len(lat), "seconds": elapsed, "requests_per_s": len(lat) / elapsed if elapsed else None,
            "latency_p50_ms": ms(l50), "latency_p99_ms": ms(l99),
            "proxy_cpu_us_per_request": (cpu1 - cpu0) * 1e6 / len(lat) if lat else None,
            "proxy_cpu_share": (cpu1 - cpu0) / elapsed if elapsed else None,
            "load_cpu_share": (load1 - load0) / elapsed if elapsed else None, **errors.as_dict()}


async def job_interleaved(job: dict) -> dict:
    """Several columns' agent-sized requests, interleaved request by request (bench_lib/interleaved.py)."""
    from bench_lib.interleaved import job_interleaved as interleaved  # (it uses this module's requests and checks)

    return await interleaved(job)


JOBS = {"probe": job_probe, "seq": job_seq, "seq_ab": job_seq_ab, "long": job_long, "paced": job_paced,
        "nonstream": job_nonstream, "interleaved": job_interleaved}


def our_cpu(job: dict) -> float:
    """CPU time of every process of the benchmark (this client, the vendor, all targets, the orchestrator)."""
    return cpu_seconds(sorted(set(job.get("bench_pids") or []) | {os.getpid()}))


async def run(job: dict) -> dict:
    limit = job.get("time_limit", 60) + 60  # each job bounds its own load; this is the backstop
    t0, busy0, ours0 = time.monotonic(), machine_busy_seconds(), our_cpu(job)
    result = await asyncio.wait_for(JOBS[job["kind"]](job), limit)
    elapsed = time.monotonic() - t0
    # CPU that processes other than the client, the vendor and the target used meanwhile: noise in the figures.
    other = (machine_busy_seconds() - busy0) - (our_cpu(job) - ours0)
    result["other_cpu_cores"] = max(0.0, other / elapsed) if elapsed > 0.2 else None
    return result


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        gc.collect()
        gc.disable()
        try:
            result = asyncio.run(run(job))
        except Exception as e:  # noqa: BLE001 - reported to the orchestrator, which decides
            result = {"failed": describe(e), "trace": traceback.format_exc(limit=4)[-800:]}
        finally:
            gc.enable()
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
