"""Drives one Exchange against a scripted upstream: through httpx.MockTransport (no sockets), or, under the
`each_transport` fixture (tests/conftest.py), also through the engine's own client and lean transport to a local
server (tests/support/local_upstream.py). No mitmproxy either way."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx

from protocols.sse import SSEParser
from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange, Job
from rewrite.intake.loopback import FlowBody
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.lifecycle.hooks import registered
from rewrite.lifecycle.setting import Setting
from rewrite.routing.router import Router
from tests.support.local_upstream import serving

# How run() reaches the scripted upstream: "mock" (httpx.MockTransport) or "lean" (a socket, the production client).
TRANSPORTS = ("mock", "lean")
transport = "mock"

PATHS = {
    "openai_chat": ("api.openai.com", "/v1/chat/completions"),
    "openai_responses": ("api.openai.com", "/v1/responses"),
    "anthropic_messages": ("api.anthropic.com", "/v1/messages"),
    "gemini": ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
}
NON_STREAM_PATHS = {**PATHS, "gemini": (PATHS["gemini"][0], "/v1beta/models/gemini-2.5-flash:generateContent")}


def events_of(body: bytes) -> list[bytes]:
    return [e.raw for e in SSEParser().feed(body)]


class FakeResponder:
    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.record: list[bytes] = []
        self.flow_body = FlowBody()  # as the real Responder keeps it (the engine reads a whole answer's usage there)
        self.finished = False
        # The loop's time of each write in `record` and of the status: on virtual time (tests/support/virtual_time.py)
        # a test reads when a heartbeat or an ending was sent, exactly.
        self.at: list[float] = []
        self.started_at: float | None = None

    @property
    def committed(self) -> bool:
        return self.status is not None

    @property
    def body(self) -> bytes:
        return b"".join(self.record)

    def start(self, status, headers):
        assert self.status is None, "status committed twice"
        self.status, self.headers = status, headers
        self.started_at = asyncio.get_running_loop().time()

    def write(self, data: bytes) -> None:
        assert self.status is not None, "body before status"
        if data:
            self.record.append(data)
            self.at.append(asyncio.get_running_loop().time())
            self.flow_body.add(data)

    blocked = False

    async def drain(self) -> None:
        pass

    def finish(self) -> None:
        self.finished = True


class Stream(httpx.AsyncByteStream):
    """An upstream body: chunks (`pause` seconds apart), then an optional stall (`stalling` is set when it begins)
    or reset at the end."""

    def __init__(self, chunks: list[bytes], then: str = "end", stall: float = 30.0, pause: float = 0.0):
        self.chunks, self.then, self.stall, self.pause = chunks, then, stall, pause
        self.closed, self.stalling = asyncio.Event(), asyncio.Event()

    async def __aiter__(self):
        try:
            for n, c in enumerate(self.chunks):
                if n and self.pause:
                    await asyncio.sleep(self.pause)  # stays: a vendor that is slow for real, between two events
                yield c
            if self.then == "stall":
                self.stalling.set()
                await asyncio.sleep(self.stall)  # stays: a vendor that stalls for real, which the engine's timeouts end
            elif self.then == "reset":
                raise httpx.ReadError("connection reset by peer")
        finally:
            self.closed.set()

    async def aclose(self) -> None:
        self.closed.set()


class Held(httpx.AsyncByteStream):
    """An upstream body that sends `chunks[:at]`, sets `reached`, then waits for `release` before the rest: a test
    acts while the answer is midway (a client leaving, a second request wanting the key) without sleeping for it.
    Never released, it is a stall only the engine's cancel ends."""

    def __init__(self, chunks: list[bytes], at: int = 1) -> None:
        self.chunks, self.at = chunks, at
        self.reached, self.release = asyncio.Event(), asyncio.Event()

    async def __aiter__(self):
        for c in self.chunks[:self.at]:
            yield c
        self.reached.set()
        await self.release.wait()
        for c in self.chunks[self.at:]:
            yield c


def sse(chunks: list[bytes], **kw) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream(chunks, **kw))


@dataclass
class Upstream:
    """Answers request n with the n-th scripted behaviour (the last one repeats)."""

    script: list
    seen: list[httpx.Request] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # the loop's time each request came

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        self.at.append(asyncio.get_running_loop().time())
        step = self.script[min(len(self.seen) - 1, len(self.script) - 1)]
        return await step(request) if asyncio.iscoroutinefunction(step) else step(request)

    def keys(self) -> list[str]:
        out = []
        for r in self.seen:
            h = r.headers
            out.append(h.get("x-api-key") or h.get("x-goog-api-key") or h.get("authorization", "").removeprefix("Bearer "))
        return out


def stall_before_headers(seconds: float):
    async def step(request):
        await asyncio.sleep(seconds)  # stays: a vendor that stalls for real, which the engine's timeouts end
        raise AssertionError("should have been cancelled")

    return step


async def run(
    protocol: str,
    upstream: Upstream,
    *,
    stream: bool = True,
    body: dict | None = None,
    keys=("k1", "k2", "k3"),
    provider_extra: str = "",
    raw_body: bytes | None = None,
    resume: str | None = None,
    plugins: tuple = (),
    hedging: str | None = None,
    **streaming,
) -> tuple[FakeResponder, Job]:
    host, path = (PATHS if stream else NON_STREAM_PATHS)[protocol]
    provider = {"api.openai.com": "openai", "api.anthropic.com": "anthropic"}.get(host, "gemini")
    keys_yaml = f"keys: [{', '.join(keys)}]" if keys else "keys: []"
    cfg = parse(f"providers: {{{provider}: {{base_url: 'http://vendor.test', {keys_yaml}{provider_extra}}}}}"
                + (f"\nresume: {resume}" if resume is not None else "")  # (resume: a YAML mapping; None: off)
                + (f"\nhedging: {hedging}" if hedging is not None else ""))
    cfg.streaming = StreamingConfig(**{"first_token_timeout": 5, "idle_timeout": 5, "heartbeat_interval": 30,
                                       **streaming})
    route = Router(cfg).route(host, "POST", path)
    query = "alt=sse" if protocol == "gemini" and stream else ""
    if body is None:
        body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "input": "hi",
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        if stream and protocol != "gemini":
            body["stream"] = True
        if stream and protocol == "openai_chat":  # the samples end with the usage chunk this asks for
            body["stream_options"] = {"include_usage": True}
    request = LoopbackRequest("POST", path + (f"?{query}" if query else ""),
                              [("content-type", "application/json"), ("authorization", "Bearer client")],
                              json.dumps(body).encode() if raw_body is None else raw_body)
    job = Job("job-0001", route, route.provider)
    responder = FakeResponder()
    resume_for = cfg.resume_for if resume is not None else None
    # `plugins`: plug-in classes of the test's, engaged after the registered ones; they (and, with `hedging`, the
    # registered ones) are told the test's config.
    setting = Setting(cfg) if plugins or hedging is not None else None
    made = [kind(setting) for kind in (*registered(), *plugins)] if setting is not None else None
    if transport == "lean":
        async with serving(upstream) as client:
            await Exchange(client, cfg.streaming, job, request, responder, resume_for=resume_for, plugins=made,
                           setting=setting).run()
    else:
        async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
            await Exchange(client, cfg.streaming, job, request, responder, resume_for=resume_for, plugins=made,
                           setting=setting).run()
    return responder, job


def key_attempts_of(job, streaming, model: str, responder=None):
    """The attempts of `job`'s request on its called provider at `model` (rewrite/exchange/keys.py), with the
    payer the registered plug-ins answer for it, outside a whole exchange."""
    from rewrite.exchange.clock import Clock
    from rewrite.exchange.context import Context
    from rewrite.exchange.keys import KeyAttempts
    from rewrite.lifecycle.events import Paying
    from rewrite.lifecycle.hooks import Hooks, engaged, plugins_for
    from rewrite.lifecycle.setting import Setting

    clock = Clock(responder or FakeResponder(), job, None, streaming.heartbeat_interval)
    setting = Setting()
    ctx = Context(job, None, clock, streaming, setting, Hooks(()), None)  # type: ignore[arg-type]
    ctx.hooks = engaged(plugins_for(setting), ctx)
    payer = ctx.hooks.decide(Paying, job.route.provider, model, True)
    return KeyAttempts(ctx, payer, job.route.provider, model)
