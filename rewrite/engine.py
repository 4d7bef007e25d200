"""The engine: owns the upstream client, the loopback server, the WebSocket relay, the jobs the addon hands over, the
pools' state kept and shared, and one instance of each registered plug-in (rewrite/lifecycle/hooks.py: the concerns
a request's life announces its events to; the built-in ones, rewrite/plugins/, are registered by whoever puts
Rotator together: addons/rotator.py)."""

from __future__ import annotations

import functools
import logging

from rewrite.accounting.prices import PriceTable
from rewrite.config import Config
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Intake, Job
from rewrite.exchange.request import encoding_of, estimated_tokens
from rewrite.exchange.ws_relay import WebSocketRelay
from rewrite.intake.big_json import Parsed, Upload, Worker, read_body
from rewrite.intake.loopback import JOB_HEADER, LoopbackServer, Responder
from rewrite.intake.loopback_request import BIG_BODY, LoopbackRequest
from rewrite.lifecycle.events import Arrival
from rewrite.lifecycle.hooks import Plugin, answers, defining, plugins_for
from rewrite.lifecycle.setting import Setting
from rewrite.policy.outcomes import Note
from rewrite.pool import KeyPool
from rewrite.routing.router import Route, Router
from rewrite.state.kept import PoolKeeping
from rewrite.state.sharing import RedisSharing
from rewrite.upstream.client import Upstream
from rewrite.upstream.egress import EgressProxy, parse_proxy_url
from rewrite.waiting import Quiet

logger = logging.getLogger("rotator")

READ_HERE = 16 << 20  # bytes of a large body read on the event loop at most (the others are the worker's)


class Engine:
    def __init__(self, config: Config | None = None) -> None:
        self.upstream = Upstream()
        self.mode_proxy: EgressProxy | None = None  # mitmproxy's `--mode upstream:URL`, set by addons/egress.py
        self.jobs: dict[str, Job] = {}
        self.quiet = Quiet(lambda: bool(self.jobs))  # told when the last job in flight ends
        self.server = LoopbackServer(self.handle)
        self.parser = Worker()  # parses large request bodies off the event loop (rewrite/intake/big_json.py)
        self.setting = Setting()
        self.plugins: list[Plugin] = plugins_for(self.setting)
        self._arriving, self._holding, self._forgetting, self._asking_worker = (
            defining(self.plugins, hook) for hook in ("arrived", "holding", "forgotten", "worker_ask"))
        sharing = defining(self.plugins, "share")
        # The upgrades Rotator passes on, their attempts heard by the engine's plug-ins.
        self.relay = WebSocketRelay(self.upstream, self.setting, self.plugins)
        self.kept = PoolKeeping()  # the pools' state across reloads and restarts, once `keep_state` is called
        # `state.redis`, once `share_state` is called: the pools' decisions, and what the plug-ins that share keep
        self.sharing = RedisSharing(functools.partial(told, sharing, "share"))
        self.configure(config or Config())

    def configure(self, config: Config) -> None:
        """Serve `config` from now on. ConfigError for what only the whole config can tell (hosts, provider kinds),
        the engine left as it was."""
        self.router = Router(config)
        self.config = config
        self.prices = PriceTable.from_config(config.prices)
        self.server.max_body = config.limits.max_request_body
        self.setting.config, self.setting.router, self.setting.prices = config, self.router, self.prices
        # Each provider's `resume` settings (its own over the top level's), worked out once per config.
        self.resume_for = {p.name: config.resume_for(p.name) for p in self.router.providers}.__getitem__
        for plugin in self.plugins:
            plugin.configure(self.setting)
        self.upstream.configure(self.egress, self.config.upstream_ca)

    def keep_state(self) -> None:
        """Keep the pools' state where `state.path` says, across config reloads and restarts (rewrite/state/kept.py):
        the pools `configure` just built get the state of those they replace, or at a start the store's. StateError
        (one line, naming the file) when that store cannot be opened."""
        self.kept.adopt(self.config.state.path, pools_of(self.router))

    def share_state(self) -> None:
        """Share the pools' decisions and what the plug-ins keep across requests (`Plugin.share`: the conversation
        state) through `state.redis` (rewrite/state/sharing.py), the pools `configure` just built included; without
        it, stop sharing."""
        self.sharing.use(self.config.state.redis, pools_of(self.router).values())

    def plugin(self, name: str) -> Plugin | None:
        """The engine's instance of the plug-in registered under `name`."""
        return next((p for p in self.plugins if p.name == name), None)

    def use_mode_proxy(self, proxy: EgressProxy | None) -> None:
        self.mode_proxy = proxy
        self.upstream.configure(self.egress, self.config.upstream_ca)

    @property
    def egress(self) -> EgressProxy | None:
        """The proxy upstream calls go through: the config's `upstream_proxy`, else mitmproxy's upstream mode."""
        return parse_proxy_url(self.config.upstream_proxy) if self.config.upstream_proxy else self.mode_proxy

    def submit(self, job_id: str, route: Route, started: float = 0.0) -> Job:
        job = Job(job_id, route, route.provider, Intake(started=started))
        self.jobs[job_id] = job
        return job

    def forget(self, job_id: str) -> Job | None:
        job = self.jobs.pop(job_id, None)
        if job is not None:
            told(self._forgetting, "forgotten", job_id)
            if not self.jobs:
                self.quiet.settled()
        return job

    def arrive(self, job: Job, path: str, body: bytes | None, length: str = "") -> None:
        """Tell the plug-ins of a request handed over, before its body is read whole (`Arrival`). A body on its way
        (None: streamed) of more than READ_HERE bytes (`length`, its Content-Length) starts the parsing worker,
        which it would wait for; a smaller one is read here (`read_upload`) and may never need it."""
        route = job.route
        if route.protocol is None:
            return
        if body is None and length.isdigit() and int(length) > READ_HERE:
            self.parser.start()
        holders = tuple(p for p in self._holding if p.active)
        arrival = Arrival(job.id, route.provider, route.protocol, path, body, estimated_tokens(body), holders)
        told([p for p in self._arriving if p.active], "arrived", arrival)

    def answers_whole(self, job: Job, request: LoopbackRequest) -> bool:
        """Whether `request`, held whole, asks for its answer whole (not a stream): then the addon has it answered in
        the flow itself (`serve` with a WholeAnswer: rewrite/intake/whole.py), else through the loopback server. Its
        body is parsed here, once either way. A body sent encoded, or a call in a wire's envelope, is read by the
        exchange as before (it goes through the loopback server), and a large one by the parsing worker."""
        proto = job.route.protocol
        if proto is not None and len(request.body) > self.server.max_body:
            # (a body whose size its headers did not say, held whole by mitmproxy: answered 413 here, unread)
            job.intake.too_large = True
            return True
        if proto is None or encoding_of(request.headers) is not None:
            return False
        path, _, query = request.target.partition("?")
        envelope = job.route.provider.envelope
        if envelope is not None and envelope.wraps(path):
            return False
        # (a large body whose text outside its long strings is large too is the parsing worker's)
        data = request.body
        read = read_body(data, BIG_BODY - 1 if len(data) >= BIG_BODY else None)
        if read is None:
            return False
        request.read = read
        if len(data) >= BIG_BODY:  # (sent upstream as an upload: a MiB at a time)
            request.upload, request.body = Upload([data]), b""
        if read.body is not None and not proto.wants_stream(path, query, read.body):
            return True
        job.intake.read = (data, read)
        return False

    async def handle(self, request: LoopbackRequest, responder: Responder) -> None:
        """A request the loopback server read (the job's id in its JOB_HEADER)."""
        job_id = next((v for n, v in request.headers if n.lower() == JOB_HEADER), None)
        job = self.jobs.get(job_id) if job_id else None
        if job is None or job.responder is not None:
            responder.start(421, [("content-type", "text/plain")])
            responder.write(b"rotator: unknown job\n")
            return
        if job.intake.read is not None:  # (what the request hook read, unless mitmproxy sent other bytes on)
            (body, read), job.intake.read = job.intake.read, None
            if _same_body(request, body):
                request.read = read
                if request.upload is not None:  # (the bytes the hook read, not a copy the pipe carried)
                    request.upload = Upload([body])
        await self.serve(job, request, responder)

    async def serve(self, job: Job, request: LoopbackRequest, responder: Responder) -> None:
        """Answer `job`'s request into `responder`."""
        job.responder = responder
        responder.answered = lambda: job.delivered
        try:
            await self._handle(job, request, responder)
        finally:
            job.handled.set()
            # (read only while the handler runs: without the closure, the job and its writer are no reference
            # cycle, freed at once rather than by the garbage collector)
            responder.answered = _handled

    async def _handle(self, job: Job, request: LoopbackRequest, responder: Responder) -> None:
        if job.intake.on_received is not None:
            job.intake.on_received()
        if request.too_large or job.intake.too_large:
            too_large(job, responder, self.config.limits.max_request_body)
            return
        parsed = request.read
        if request.upload is not None and encoding_of(request.headers) is not None:  # (decoded whole: request.py)
            request.body, request.upload = b"".join(request.upload.pieces), None
        proto = job.route.protocol
        if request.upload is not None and proto is not None and parsed is None:
            parsed = read_upload(request)
        if request.upload is not None and proto is not None and parsed is None:
            path = request.target.partition("?")[0]
            asks = answers(self._asking_worker, "worker_ask", proto, request.headers, path)
            ask = next((a for a in asks if a is not None), None)
            parsed = await self.parser.parse(request.upload, ask)
            if parsed is None:  # (no worker: parsed here, as a small body is)
                request.body, request.upload = b"".join(request.upload.pieces), None
        exchange = Exchange(self.upstream.client, self.config.streaming, job, request, responder, self.prices,
                            router=self.router, limits=self.config.limits, parsed=parsed,
                            resume_for=self.resume_for, plugins=self.plugins, setting=self.setting)
        await exchange.run()

    async def aclose(self) -> None:
        self.server.close()
        await self.parser.aclose()
        await self.upstream.aclose()


def told(plugins: list[Plugin], hook: str, *args: object) -> None:
    """Tell `plugins` an engine-wide `hook` whose answers nobody reads (each under its guard: `answers`)."""
    for _ in answers(plugins, hook, *args):
        pass


def read_upload(request: LoopbackRequest) -> Parsed | None:
    """A large body streamed in, read here (big_json.read_body) when it is at most READ_HERE bytes and its text
    outside its long strings is under BIG_BODY (an agent's screenshots): joined once, it is cheaper than the
    worker's reading and its hand-over; else None, and the worker reads it."""
    upload = request.upload
    if upload is None or upload.size > READ_HERE:
        return None
    data = upload.pieces[0] if len(upload.pieces) == 1 else b"".join(upload.pieces)
    read = read_body(data, BIG_BODY - 1) if isinstance(data, bytes) else None
    if read is not None:
        request.upload = Upload([data])
    return read


def pools_of(router: Router) -> dict[str, KeyPool]:
    """The key pools a router's providers draw from, by provider."""
    return {p.name: p.pool for p in router.providers if p.pool is not None}


def _handled() -> bool:
    return True


def too_large(job: Job, responder: Responder, limit: int) -> None:
    """413 for a request body past limits.max_request_body, in the protocol's error shape; nothing goes upstream."""
    message = f"Rotator: the request body is larger than limits.max_request_body ({limit} bytes)"
    job.note(Note.FAILED, "request body too large", reason="request body too large")
    proto = job.route.protocol
    responder.start(413, [("content-type", "application/json" if proto else "text/plain")])
    responder.write(proto.error_body(413, message) if proto else message.encode() + b"\n")


def _same_body(request: LoopbackRequest, body: bytes) -> bool:
    """Whether `request`'s body is `body`: the same object (a large one handed over by reference: PipeReader in
    rewrite/internals.py), or the same bytes."""
    upload = request.upload
    if upload is None:
        return request.body == body
    if len(upload.pieces) == 1 and upload.pieces[0] is body:
        return True
    return upload.size == len(body) and b"".join(upload.pieces) == body
