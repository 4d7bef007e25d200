"""Hands intercepted LLM flows to the engine and keeps them honest in mitmweb and saved flows.

A flow on a provider's host is pointed at the engine's loopback server; once the answer starts, the flow is
given its vendor URL back, the credential shown is the masked pooled key, and the body shown is what the
client received. A call that asks for its answer whole (not a stream) is answered in its flow (addons/whole_answers.py).
A WebSocket upgrade is handed to `upgrades` (addons/websocket.py: the engine's relay, or a 426), and only an upgrade:
no other flow runs its hooks. Other traffic is not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from mitmproxy import connection, ctx, http

from addons.masking import called_host, hide_credential, show_credential, streamed
from addons.whole_answers import answer_in_flow
from rewrite.surface import (
    AFTER_ANSWER,
    JOB_HEADER,
    Engine,
    Job,
    LoopbackRequest,
    WholeAnswer,
    summary,
)

logger = logging.getLogger("rotator")
JOB_HEADER_BYTES = JOB_HEADER.encode()
HANDLED_WAIT = AFTER_ANSWER + 0.5  # seconds at most a flow that ends waits for the engine to be done with it


@dataclass(slots=True)
class _Origin:
    scheme: str
    host: str
    port: int
    loopback_port: int
    client: str
    shown: bool = False  # the flow shows the vendor's URL again


class Upgrades(Protocol):
    """What takes a provider's WebSocket upgrades (addons/websocket.py), at the hooks Interception has for them."""

    def upgrade(self, flow: http.HTTPFlow) -> None: ...

    def answered(self, flow: http.HTTPFlow) -> None: ...


class Interception:
    def __init__(self, engine: Engine, upgrades: Upgrades) -> None:
        self.engine = engine
        self.upgrades = upgrades
        self._origins: dict[str, _Origin] = {}

    def configure(self, updated: set[str]) -> None:
        # Rotator answers vendor hosts itself: mitmproxy must not connect to them before the request is seen
        # (an offline vendor or an overridden base_url would otherwise fail the client's CONNECT, and a reverse
        # listener's connection at once). Set here, before mitmproxy's servers listen (they do before `running`).
        if "connection_strategy" in updated and ctx.options.connection_strategy != "lazy":
            ctx.options.update(connection_strategy="lazy")

    def done(self) -> None:
        self.engine.server.close()
        self.engine.parser.close()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """A body declared larger than limits.max_request_body is never held: the flow goes to the engine now, its
        body is dropped as it arrives, and the engine answers 413 (in the protocol's shape) once it has. (It goes
        on as an empty chunked body: an HTTP/1 answer before the request's end does not reach the client.) A large
        body within the limit goes to the engine now too, streamed as it arrives (see `streamed`)."""
        length = flow.request.headers.get("content-length", "")
        too_large = length.isdigit() and int(length) > self.engine.server.max_body
        if (too_large or streamed(flow, self.engine)) and (job := self._take(flow)) is not None:
            self._hand_over(flow, job)
            job.intake.too_large, flow.request.stream = too_large, (_dropped if too_large else True)
            if too_large:
                sent_empty(flow.request)

    async def request(self, flow: http.HTTPFlow) -> None:
        if _upgrade(flow.request):
            self.upgrades.upgrade(flow)
            return
        job = self.engine.jobs.get(flow.id) if flow.id in self._origins else None
        if job is not None and job.intake.too_large:
            # Handed over at its headers. MaskOnArrival just gave the headers as they arrived back: the credential is
            # masked again, and mitmproxy, which ends the body sent on by them, must still see it chunked.
            hide_credential(flow, job.route.provider.credential)
            sent_empty(flow.request)
        elif job is None and (job := self._take(flow)) is not None:
            req = flow.request
            request = request_of(req.method, req.path, req.headers.fields, req.authority, req.raw_content or b"")
            if self.engine.answers_whole(job, request):
                await answer_in_flow(self.engine, flow, job, request)
            else:
                self._hand_over(flow, job)

    def _take(self, flow: http.HTTPFlow) -> Job | None:
        """The engine's job for an LLM call (its credential taken out of the flow); None for other traffic."""
        req = flow.request
        if flow.response is not None or flow.error is not None or flow.websocket is not None or _upgrade(req):
            return None  # (an upgrade: see `upgrades`)
        route = self.engine.router.route(called_host(flow), req.method, req.path, req.headers, req.raw_content)
        if route is None:
            return None
        job = self.engine.submit(flow.id, route, req.timestamp_start)
        path, length = req.path.partition("?")[0], req.headers.get("content-length", "")
        peer = flow.client_conn.peername  # (the client key's name, when addons/access.py accepted one)
        job.intake.client = flow.metadata.get("rotator", {}).get("client") or (str(peer[0]) if peer else "")
        self.engine.arrive(job, path, req.raw_content, length)
        job.intake.credential = hide_credential(flow, route.provider.credential)
        return job

    def _hand_over(self, flow: http.HTTPFlow, job: Job) -> None:
        """Point an LLM call at the engine's loopback server."""
        req = flow.request
        client = flow.client_conn.id
        port = self.engine.server.acquire_port(client)
        self._origins[flow.id] = _Origin(req.scheme, req.host, req.port, port, client)
        point_at(req, "http", "127.0.0.1", port)
        req.headers.fields = without_job_header(req.headers.fields) + ((JOB_HEADER_BYTES, flow.id.encode()),)
        reach_directly(flow)
        # Once the loopback server has read the request, mitmproxy is done with its address: from then on the flow
        # in flight shows the vendor's URL again (mitmweb may be asked for it at any moment).
        job.intake.on_received = lambda: self._show_vendor(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.id in self._origins:
            if flow.response is not None:  # (it always is, in this hook)
                flow.response.stream = True
            self._restore(flow)
        elif _upgrade(flow.request):
            self.upgrades.answered(flow)

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._handled(flow)
        self._finish(flow)

    async def error(self, flow: http.HTTPFlow) -> None:
        if _upgrade(flow.request):
            self.upgrades.answered(flow)
        await self.response(flow)

    async def _handled(self, flow: http.HTTPFlow) -> None:
        """The engine done with the flow's job, so that the flow shows (and saves) all it recorded: mitmproxy ends
        a flow as soon as its client leaves, which a client may do at its answer's ending, before the engine has
        recorded the rest (a continuation's seam, the usage). Waited for a moment at most."""
        job = self.engine.jobs.get(flow.id)
        if job is not None and job.responder is not None and not job.handled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.handled.wait(), HANDLED_WAIT)

    def _show_vendor(self, flow: http.HTTPFlow) -> None:
        origin = self._origins.get(flow.id)
        if origin is None or origin.shown:
            return
        origin.shown = True
        req = flow.request
        point_at(req, origin.scheme, origin.host, origin.port)
        req.headers.fields = without_job_header(req.headers.fields)

    def _restore(self, flow: http.HTTPFlow) -> None:
        self._show_vendor(flow)
        origin = self._origins.pop(flow.id, None)
        if origin is not None:
            self.engine.server.release_port(origin.client, origin.loopback_port)

    def _finish(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)
        job = self.engine.forget(flow.id)
        if job is None:
            return
        out = None if isinstance(job.responder, WholeAnswer) else job.responder  # (its body is the flow's already)
        body = out.flow_body if out is not None and flow.response is not None else None
        if body is not None and flow.response is not None:
            show_body(flow.response, body.shown())
        show_credential(flow, job.route.provider.credential, job.key)
        annotate(flow, job)
        if job.responder is not None:
            settle(flow, job)
        if body is not None and body.left_out:  # a long stream: the flow shows its head and tail only
            flow.comment = "; ".join(filter(None, [flow.comment, f"rotator: {body.note()}"]))
            flow.metadata["rotator"]["body"] = {"sent": body.size, "left_out": body.left_out}


def request_of(method: str, target: str, fields: tuple[tuple[bytes, bytes], ...], authority: str,
               body: bytes) -> LoopbackRequest:
    """A flow's request as the loopback server reads it from mitmproxy (header names lower-cased, values
    stripped, a Host header from the authority when the client, over HTTP/2, sent none), for the engine to read it in
    the flow."""
    headers = [(n.decode("latin-1").lower(), v.decode("latin-1").strip()) for n, v in fields]
    if authority and "host" not in {n for n, _ in headers}:
        headers.insert(0, ("host", authority))
    return LoopbackRequest(method, target, headers, body)


def _upgrade(req: http.Request) -> bool:
    return req.headers.get("upgrade", "").lower() == "websocket"


def _dropped(data: bytes) -> list[bytes]:
    return []  # (not b"": mitmproxy would end a chunked body there)


def sent_empty(req: http.Request) -> None:
    """Frame the request as chunked, for the empty body that goes on in place of a dropped one."""
    headers = req.headers
    if "content-length" in headers:
        del headers["content-length"]
    headers["transfer-encoding"] = "chunked"


def without_job_header(fields: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[bytes, bytes], ...]:
    """(A client's own x-rotator-job header never reaches the loopback server.)"""
    return tuple(f for f in fields if f[0].lower() != JOB_HEADER_BYTES)


def point_at(req: http.Request, scheme: str, host: str, port: int) -> None:
    """Address the request elsewhere, keeping its Host header (and HTTP/2 authority) as the client sent it:
    mitmproxy's own setters rewrite the header on each call, and neither the loopback server nor the vendor's
    address needs it."""
    data = req.data
    data.scheme, data.host, data.port = scheme.encode(), host, port


def show_body(response: http.Response, shown: bytes) -> None:
    """The body the client received, as the flow shows it. The engine's answers are chunked and never
    content-encoded: mitmproxy's `content` setter would only look that up."""
    fields = response.headers.fields
    if any(n.lower() == b"content-encoding" for n, _ in fields) or not any(
            n.lower() == b"transfer-encoding" for n, _ in fields):
        response.content = shown
    else:
        response.raw_content = shown


def settle(flow: http.HTTPFlow, job: Job) -> None:
    """The flow's final state as the client saw it: a client that left after its stream's ending got its whole
    answer (mitmproxy calls that "Client disconnected."), and the server shown is the upstream, not the loopback
    server the bytes came through."""
    if flow.error is not None and job.delivered and flow.response is not None:
        flow.error = None
        flow.response.timestamp_end = flow.response.timestamp_end or time.time()
    flow.server_conn = upstream_connection(flow.server_conn, job.provider.origin(called_host(flow)))


def upstream_connection(loopback: connection.Server, base_url: str) -> connection.Server:
    """A record of the upstream Rotator called, for the flow's Connection tab (the loopback connection it stands
    for carries other flows too, so it is not changed)."""
    server = _copy(_upstream_record(base_url))
    server.id = str(uuid.uuid4())
    server.timestamp_start, server.timestamp_end = loopback.timestamp_start, loopback.timestamp_end
    return server


def _copy(record: connection.Server) -> connection.Server:
    """A shallow copy, as `copy.copy` makes it (a new object with the same attribute dict), at a seventh of its
    cost (and a thirtieth of constructing one)."""
    server = object.__new__(connection.Server)
    server.__dict__.update(record.__dict__)
    return server


@functools.lru_cache(maxsize=256)
def _upstream_record(base_url: str) -> connection.Server:
    url = urlsplit(base_url)
    https = url.scheme == "https"
    return connection.Server(address=(url.hostname or "", url.port or (443 if https else 80)),
                             sni=url.hostname if https else None)


def reach_directly(flow: http.HTTPFlow) -> None:
    """In mitmproxy's upstream mode a flow's server connection goes through the upstream proxy, which cannot reach
    Rotator's loopback servers: a flow pointed at one gets a direct connection of its own (Rotator's own upstream
    calls use the proxy, see addons/egress.py)."""
    if flow.server_conn.via is not None:
        flow.server_conn = connection.Server(address=(flow.request.host, flow.request.port))


def annotate(flow: http.HTTPFlow, job: Job) -> None:
    """Record retries, repairs and watchdog firings on the flow, for mitmweb and saved flows."""
    flow.metadata.setdefault("rotator", {}).update({  # (keeps what other addons recorded, e.g. the client)
        "provider": job.provider.name,
        "model": job.model,
        "protocol": job.route.protocol.name if job.route.protocol else None,
        "key": job.key,
        "events": job.notes,
    })
    if job.targets:
        flow.metadata["rotator"]["targets"] = job.targets  # every target tried, and why each was left
    if job.ttft is not None:
        flow.metadata["rotator"]["ttft"] = job.ttft
    if job.resume:  # each continuation of a cut answer: where, how, on which target, the overlap trimmed, outcome
        flow.metadata["rotator"]["resume"] = job.resume
    flow.metadata["rotator"].update(job.records)  # what the plug-ins record (JSON-like; keys masked already)
    if job.notes:  # (a flow without notes went as it should: nothing to say of it at a glance)
        comment, mark = summary(job.notes)  # e.g. "retried 2× (status 429), repaired (upstream reset)"
        if comment:
            flow.comment = comment
        if mark:
            flow.marked = mark

