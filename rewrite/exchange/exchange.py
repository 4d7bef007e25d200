"""One client request's life in the engine, put together from parts that follow its path (docs/architecture.md):

- `request.py`: what the client asked (`ClientRequest`), read once; `context.py`: what every part reads (`Context`);
- `fallback.py`: the targets, in order (`Legs`: how the request is put to each, its `Leg`: `leg.py`; `Fallback`: the
  loop);
- `keys.py`: the attempts on one target over what its payer pays with (`KeyAttempts`);
- `attempt.py`: one HTTP attempt (`Attempt`); `target.py`: one target and its upstream requests (`Target`);
- `pump.py`: an SSE answer pumped to the client (`Pump`, `ClientStream`);
- `answers.py`: every other answer: non-stream, folded, errors, Rotator's own;
- `clock.py`: the deadlines and heartbeats; `job.py`: what the addon is told (`Job`).

The concerns that are not the bytes, the deadlines and the retry and fallback decisions (who pays, conversation
affinity and state, quota windows, learned quirks, the steps recorded, accounting) are plug-ins (rewrite/plugins/,
rewrite/conversation/), told of the request's events (rewrite/lifecycle/).

Until the first content byte, every attempt may be retried transparently; after a heartbeat has committed a 200, a
final failure is reported in-stream as the protocol's error event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import protocols
from protocols.base import SSE
from protocols.events import StreamParser
from protocols.sse import SSEParser
from rewrite.accounting.prices import PriceTable
from rewrite.config import Config, LimitsConfig, StreamingConfig
from rewrite.exchange.answers import Answers
from rewrite.exchange.clock import Clock, stream_headers
from rewrite.exchange.context import Context
from rewrite.exchange.continuation import Continuation
from rewrite.exchange.enveloped import EnvelopedWriter
from rewrite.exchange.fallback import Fallback, Legs
from rewrite.exchange.job import Job
from rewrite.exchange.pump import Pump
from rewrite.exchange.request import ClientRequest
from rewrite.exchange.resume import Resume, ResumeFor
from rewrite.intake.big_json import Parsed
from rewrite.intake.loopback import LoopbackRequest, Responder
from rewrite.lifecycle.events import Finished
from rewrite.lifecycle.hooks import NO_HOOKS, Plugin, engaged, plugins_for
from rewrite.lifecycle.setting import Setting
from rewrite.routing.router import Router
from rewrite.upstream.client import Sender


class Exchange:
    def __init__(
        self,
        client: Sender,
        streaming: StreamingConfig,
        job: Job,
        request: LoopbackRequest,
        responder: Responder,
        prices: PriceTable | None = None,
        router: Router | None = None,
        limits: LimitsConfig | None = None,
        parsed: Parsed | None = None,
        resume_for: ResumeFor | None = None,
        plugins: Sequence[Plugin] | None = None,
        setting: Setting | None = None,
    ) -> None:
        limits = limits or LimitsConfig.model_validate({})
        if setting is None:  # (a request made without an engine: the unit tests')
            config = router.config if router is not None else Config()
            setting = Setting(config, prices or PriceTable(), router)
        req = ClientRequest(request, job.route, streaming, parsed, limits.max_request_body)
        # What the client was sent, read back (for resume): its protocol's stream, or the envelope of its provider's
        # wire when its answers are in it too (a login's, Bedrock's InvokeModel), whose events are opened as they come
        # and put back for the client.
        parser: Callable[[], StreamParser] = req.proto.parser if req.proto is not None else SSEParser
        if req.dialect is not None and req.opened is not None:
            responder, parser = EnvelopedWriter(responder, req.dialect, req.opened), req.opened.parser
        headers = stream_headers(req.proto.stream_type if req.proto is not None else SSE)
        clock = Clock(responder, job, req.heartbeat, streaming.heartbeat_interval, headers)
        ctx = self.ctx = Context(job, req, clock, streaming, setting, NO_HOOKS, client)  # (its own, next)
        ctx.hooks = engaged(plugins if plugins is not None else plugins_for(setting), ctx)
        max_body = limits.max_response_body  # of a body decoded or held whole
        answers = Answers(responder, job, req, clock, max_body, streaming.request_timeout)
        ctx.answers = answers
        pump = Pump(clock, req.meter, max_body, streaming.idle_timeout, headers)
        resumer = protocols.registered(req.proto.name).resumer if req.proto is not None and resume_for else None
        self.resume = None
        if resumer is not None and req.proto is not None and resume_for is not None:
            self.resume = ctx.resume = Resume(resumer, req.proto, req.body, resume_for, responder, parser=parser)
        self.fallback = Fallback(ctx, Legs(ctx), answers, pump, self.resume)

    async def run(self) -> None:
        try:
            await self.fallback.run()
            if self.resume is not None and self.resume.cut is not None:
                await Continuation(self.fallback, self.resume).run()
        finally:
            self.ctx.hooks.announce(Finished, self.ctx.job)
            # Parts keep the context, which keeps them: let go of them, and the request's objects are no reference
            # cycle, freed at once rather than by the garbage collector (which walked ~300 of them a request).
            self.ctx.hooks = NO_HOOKS
