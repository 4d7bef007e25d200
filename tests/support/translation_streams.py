"""The upstream streams the translation tests read in every other protocol: the recorded samples and the fake
vendor's own."""

from tests.support import fake_vendor, samples
from tests.support import translate_samples as S


def fake_vendor_streams() -> dict:
    """The fake vendor's own streams (what the end-to-end tests get): text, then text and a tool call."""
    streams = {}
    for protocol, events in (("openai_chat", lambda ctx: fake_vendor.chat_events(ctx, force_usage=True)),
                             ("openai_responses", fake_vendor.responses_events),
                             ("anthropic_messages", fake_vendor.anthropic_events),
                             ("gemini", fake_vendor.gemini_events)):
        for kind, fault in (("text", fake_vendor.Fault()), ("tool", fake_vendor.Fault().tool_call(text="Checking."))):
            ctx = fake_vendor.Ctx(0, "fake-model", 1761000000, {"model": "fake-model"}, fault)
            streams[f"fake_{protocol}_{kind}"] = (protocol, b"".join(ev.data for ev in events(ctx)))
    return streams


STREAMS = {**samples.STREAMS, "gemini_parallel_calls": ("gemini", S.GEMINI_PARALLEL_CALLS), **fake_vendor_streams()}
