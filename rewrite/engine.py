"""The engine: owns the upstream client, the loopback server and the jobs the addon hands over."""

from __future__ import annotations

import logging

from rewrite.accounting.prices import PriceTable
from rewrite.config import Config
from rewrite.conversation.hooks import ConversationState
from rewrite.exchange.affinity import (
    UNREAD,
    Conversation,
    keeps_conversations,
    may_bind,
    minimum_of,
    reads_evidence,
)
from rewrite.exchange.exchange import Exchange, Job
from rewrite.exchange.request import estimated_tokens
from rewrite.intake.big_json import EvidenceAsk, Worker
from rewrite.intake.encoded import encoding_of
from rewrite.intake.loopback import JOB_HEADER, LoopbackRequest, LoopbackServer, Responder
from rewrite.policy.outcomes import Note
from rewrite.pool.prefetch import model_in_body
from rewrite.routing.router import Route, Router
from rewrite.routing.targets import ConversationHooks
from rewrite.upstream.client import Upstream
from rewrite.upstream.egress import EgressProxy, parse_proxy_url

logger = logging.getLogger("rotator")


class Engine:
    def __init__(self, config: Config | None = None) -> None:
        self.upstream = Upstream()
        self.mode_proxy: EgressProxy | None = None  # mitmproxy's `--mode upstream:URL`, set by addons/egress.py
        # Conversation state across targets: the field cache and Responses continuity (rewrite/conversation/hooks.py).
        self.conversation = ConversationState()
        self.hooks: ConversationHooks | None = self.conversation  # None: nothing to call
        self.jobs: dict[str, Job] = {}
        self.server = LoopbackServer(self.handle)
        self.parser = Worker()  # parses large request bodies off the event loop (rewrite/intake/big_json.py)
        self.configure(config or Config())

    def configure(self, config: Config) -> None:
        self.config = config
        self.router = Router(config)
        self.prices = PriceTable.from_config(config.prices)
        self.conversation.record_native = bool(config.routes)  # only a route sends a conversation elsewhere
        self.server.max_body = config.limits.max_request_body
        # Conversation affinity: the session sources, parsed once; whether any pool keeps it (else nothing is read).
        self.sources = config.affinity.sources
        self.affinity = reads_evidence(config, self.router.providers)
        self._use_egress()

    def use_mode_proxy(self, proxy: EgressProxy | None) -> None:
        self.mode_proxy = proxy
        self._use_egress()

    @property
    def egress(self) -> EgressProxy | None:
        """The proxy upstream calls go through: the config's `upstream_proxy`, else mitmproxy's upstream mode."""
        return parse_proxy_url(self.config.upstream_proxy) if self.config.upstream_proxy else self.mode_proxy

    def _use_egress(self) -> None:
        self.upstream.configure(self.egress, self.config.upstream_ca)

    def submit(self, job_id: str, route: Route) -> Job:
        job = Job(job_id, route)
        self.jobs[job_id] = job
        return job

    def forget(self, job_id: str) -> Job | None:
        job = self.jobs.pop(job_id, None)
        if job is not None and job.prefetch is not None:  # (ended before its first attempt)
            job.prefetch.drop()
        return job

    def prefetch(self, job: Job, path: str, body: bytes | None) -> None:
        """Start the first attempt's shared pick now, when the pool shares its state and the model can be told from
        the path or the body's ends (rewrite/pool/prefetch.py)."""
        route = job.route
        if route.protocol is None or route.provider.pool is None or route.provider.pool.shared is None:
            return
        asked = route.protocol.model(path, {}) if route.protocol.model_in_path else model_in_body(body)
        if not asked:
            return
        target = self.router.routes.targets_for(asked, route.provider.name)[0]
        provider = self.router.provider_named(target.provider)
        if provider is None or provider.pool is None:
            return
        model = target.model_for(asked)
        # A pool that keeps conversations on their keys picks a conversation's key with its affinity, read from the
        # body once it has come whole: no early pick for a request that may have one (it would ignore a binding).
        if keeps_conversations(self.config, provider) and may_bind(minimum_of(provider.family, model), body):
            return
        job.prefetch = provider.pool.prefetch(model, estimated_tokens(body))

    async def handle(self, request: LoopbackRequest, responder: Responder) -> None:
        job_id = next((v for n, v in request.headers if n.lower() == JOB_HEADER), None)
        job = self.jobs.get(job_id) if job_id else None
        if job is None or job.responder is not None:
            responder.start(421, [("content-type", "text/plain")])
            responder.write(b"rotator: unknown job\n")
            return
        job.responder = responder
        responder.answered = lambda: job.delivered
        try:
            await self._handle(job, request, responder)
        finally:
            job.handled.set()

    async def _handle(self, job: Job, request: LoopbackRequest, responder: Responder) -> None:
        if job.on_received is not None:
            job.on_received()
        if request.too_large or job.too_large:
            too_large(job, responder, self.config.limits.max_request_body)
            return
        parsed = None
        if request.upload is not None and encoding_of(request.headers) is not None:  # (decoded whole: request.py)
            request.body, request.upload = b"".join(request.upload.pieces), None
        proto = job.route.protocol
        ask = None
        if self.affinity and proto is not None:  # (its evidence read by the worker, from the whole body)
            ask = EvidenceAsk(proto.name, tuple(request.headers), request.target.partition("?")[0], self.sources)
        if request.upload is not None and proto is not None:
            parsed = await self.parser.parse(request.upload, ask)
            if parsed is None:  # (no worker: parsed here, as a small body is)
                request.body, request.upload = b"".join(request.upload.pieces), None
        conversation = None
        if self.affinity:
            conversation = Conversation(self.config, job.client, self.sources,
                                        parsed.evidence if parsed is not None else UNREAD, self.prices)
        exchange = Exchange(self.upstream.client, self.config.streaming, job, request, responder, self.prices,
                            router=self.router, hooks=self.hooks, limits=self.config.limits, parsed=parsed,
                            resume_for=self.config.resume_for, conversation=conversation)
        await exchange.run()

    async def aclose(self) -> None:
        self.server.close()
        await self.parser.aclose()
        await self.upstream.aclose()


def too_large(job: Job, responder: Responder, limit: int) -> None:
    """413 for a request body past limits.max_request_body, in the protocol's error shape; nothing goes upstream."""
    message = f"Rotator: the request body is larger than limits.max_request_body ({limit} bytes)"
    job.note(Note.FAILED, "request body too large", reason="request body too large")
    proto = job.route.protocol
    responder.start(413, [("content-type", "application/json" if proto else "text/plain")])
    responder.write(proto.error_body(413, message) if proto else message.encode() + b"\n")
