"""Running a cut stream and its continuation through a protocol's resume module as the engine does: the first
attempt's events through the repairer (and the observer), then the continuation's through the splicer and the same
repairer."""

from __future__ import annotations

import dataclasses

import protocols
import protocols.resume
from protocols.resume import Delivered
from protocols.resume.seam import Seam
from tests.support import fake_vendor
from tests.support.streams import parse, play

CREATED = 1761000000


def vendor_stream(protocol: str, fault: fake_vendor.Fault, index: int = 0, body: dict | None = None) -> bytes:
    events = {"openai_responses": fake_vendor.responses_events, "gemini": fake_vendor.gemini_events,
              "openai_chat": fake_vendor.chat_events, "anthropic_messages": fake_vendor.anthropic_events}[protocol]
    ctx = fake_vendor.Ctx(index, f"fake-model-{index}", CREATED + index, body or {"model": "fake-model"}, fault)
    return b"".join(ev.data for ev in events(ctx))


@dataclasses.dataclass
class Run:
    delivered: Delivered
    out: bytes = b""
    failed: bool = False


def cut_and_resume(protocol: str, first: bytes, k: int, continuation: bytes | None, *, exact: bool,
                   request: dict | None = None) -> Run:
    """`first` cut after its k-th event; then `continuation` (if any) spliced on; the bytes the client received."""
    resumer = protocols.resume.get(protocol)
    assert resumer is not None
    request = request or {"model": "fake-model", "stream": True}
    repairer = protocols.get(protocol).repairer(request)
    observer = resumer.observer(request)
    out = b""
    for event in parse(first)[:k]:
        observer.feed(event)
        out += repairer.feed(event)
    run = Run(observer.delivered(), out)
    if continuation is None:
        return run
    splicer = observer.splicer(Seam(run.delivered.text, exact=exact))
    spliced = [e for event in parse(continuation) for e in splicer.feed(event)] + splicer.finish()
    run.failed = splicer.failed
    run.out += play(repairer, spliced) + repairer.end()
    return run
