"""The steps a transformed request went through, for the flow's view (rewrite/inspection/steps.py): for each target
whose upstream request is not the client's own bytes, that request as it left Rotator (its credential masked, as its
payer shows it) and, where Rotator translates or rewrites the answer, the upstream's raw answer."""

from __future__ import annotations

from rewrite.exchange.context import Context
from rewrite.exchange.outgoing import TargetCall
from rewrite.inspection.steps import Capture, Step
from rewrite.lifecycle.events import Built, Tap
from rewrite.lifecycle.hooks import Part, Plugin


class Steps(Plugin):
    name = "steps"

    def engage(self, ctx: Context) -> Part | None:
        return Recording(ctx) if ctx.req is not None and ctx.req.proto is not None else None


class Recording(Part):
    def __init__(self, ctx: Context) -> None:
        self.job = ctx.job
        self.steps: dict[int, Step] = {}  # by id() of the target's call

    def built(self, e: Built) -> None:
        """Keep the upstream request of this target (its last attempt's)."""
        call, out = e.call, e.outbound
        step = self.steps.get(id(call))
        if step is None:
            leg = call.leg
            step = self.steps[id(call)] = Step(leg.name, leg.protocol.name if leg.protocol else "", [])
            if self.job.steps is None:
                self.job.steps = []
            self.job.steps.append(step)
        step.changes = changes(call)
        step.method, step.url, step.headers, step.body = (out.method, out.url + (f"?{out.query}" if out.query else ""),
                                                          out.headers, out.content)
        step.answer = None

    def tap(self, e: Tap) -> Capture | None:
        """Where the current attempt's raw answer is kept, when Rotator translates or rewrites it for the client."""
        call = e.call
        step = self.steps.get(id(call))
        if step is None or not (call.leg.translation is not None or call.adapters.answering or call.aggregate):
            return None
        step.answer = Capture(e.status, e.content_type)
        return step.answer


def changes(call: TargetCall) -> list[str]:
    """What Rotator did to the client's request for this target, in words."""
    leg, req = call.leg, call.req
    said = []
    if leg.translation is not None:
        said.append(f"translated from {leg.translation.client} to {leg.translation.upstream}")
        said += leg.translation.fitted
    elif not leg.unchanged:
        said.append(f"model {req.asked} sent as {leg.model}" if leg.model != req.asked
                    else "conversation state put into the body")
    if call.aggregate:
        said.append("sent as a stream (force_upstream_stream), the answer folded back into JSON")
    elif leg.translation is None and call.ask_usage:
        said.append("asked for the usage chunk (stream_options.include_usage)")
    chain = leg.adapters if leg.translation is not None else call.adapters
    if chain.adapters:
        said.append("adapters: " + ", ".join(a.name for a in chain.adapters))
    return said + call.said
