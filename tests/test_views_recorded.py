"""The LLM content view on flows a real `mitmdump -s addons/rotator.py -w FILE` recorded: for each protocol a
stream, a non-stream call, a retried call, a repaired stream and a tool call, made by the official SDK, read back
from the file and rendered through mitmproxy's own contentview machinery (as mitmweb does), asserting the text.
"""

from __future__ import annotations

import pytest

from rewrite.pool import mask as masked
from tests.support.clients import MODELS, PROMPT, PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT, TOOL_ARGUMENTS, TOOL_NAME, Fault, split_text
from tests.support.flows import read_flows
from tests.support.reliability import RESUME_OFF
from tests.support.views import shown

pytestmark = pytest.mark.e2e

# No kind here waits on a timer (the repaired stream is cut by a reset): the timeouts are generous, so that a busy
# machine's slow first token is not retried (the vendor would see one request more than scripted).
STREAMING = {"first_token_timeout": 30.0, "idle_timeout": 30.0}
HOST = {"chat": "api.openai.com", "responses": "api.openai.com", "anthropic": "api.anthropic.com",
        "gemini": "generativelanguage.googleapis.com"}
LABEL = {"chat": "OpenAI Chat Completions", "responses": "OpenAI Responses", "anthropic": "Anthropic Messages",
         "gemini": "Gemini"}
PREFIX = "".join(split_text(TEXT)[:2])  # what the vendor sent before the cut
KINDS = ("stream", "non-stream", "retried", "repaired", "tool call")


def record(rotator, fake_vendor, tmp_path, protocol: str) -> tuple[dict, dict]:
    """One call of each kind; the saved flows and what the SDK reported, by kind."""
    path = tmp_path / "flows.mitm"
    proxy = rotator(streaming=STREAMING, resume=RESUME_OFF, fresh=True, args=("-w", str(path)))
    client = make_client(protocol)
    results = {"stream": call(protocol, client, stream=True), "non-stream": call(protocol, client, stream=False)}
    fake_vendor.script(Fault.status(500))
    results["retried"] = call(protocol, client, stream=True)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))
    results["repaired"] = call(protocol, client, stream=True)
    fake_vendor.script(Fault.tool_call())
    results["tool call"] = call(protocol, client, stream=True, tools=True)
    assert [r.status for r in fake_vendor.wait_for(6)] == [200, 200, 500, 200, 200, 200]
    proxy.proc.stop()  # the flow file is complete once mitmdump has exited
    flows = [f for f in read_flows(path) if f.request.pretty_host == HOST[protocol]]
    assert len(flows) == len(KINDS)
    return dict(zip(KINDS, flows)), results


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_llm_view_reads_recorded_flows(llm_view, fake_vendor, rotator, tmp_path, protocol):
    flows, results = record(rotator, fake_vendor, tmp_path, protocol)
    for kind, flow in flows.items():
        where = f"{protocol} {kind}"
        answer, request = shown(flow, flow.response), shown(flow, flow.request)
        got = results[kind]  # the usage the SDK reported (a cut stream's is the one Rotator's ending counted)
        reported = got.input_tokens or got.output_tokens
        usage = f"usage: input {got.input_tokens} · output {got.output_tokens}" if reported else "usage: not reported"
        for text in (answer, request):  # one header above both
            assert text.startswith(f"Rotator · {LABEL[protocol]} · {MODELS[protocol]}"), (where, text)
            assert usage in text, (where, text)
            assert "timing: first token after " in text and " · total " in text, (where, text)
        assert (" · stream\n" in answer) == (kind != "non-stream"), (where, answer)
        assert ("assembled from a stream of" in answer) == (kind != "non-stream"), (where, answer)
        # the request as a conversation
        assert f"─── user ───\n{PROMPT}\n" in request, (where, request)
        assert (f"tools (1): {TOOL_NAME}" in request) == (kind == "tool call"), (where, request)

        if kind == "repaired":
            assert f"\n{PREFIX}\n" in answer and TEXT not in answer, (where, answer)
            assert "finish: length (the upstream was cut: Rotator ended the answer as truncated)" in answer, answer
            assert "repairs and notes:\n  repaired: stream ended without its completion signal (upstream reset" in answer
            assert flow.comment.startswith("repaired (upstream reset"), flow.comment
        elif kind == "tool call":
            assert f"→ tool call {TOOL_NAME}" in answer, (where, answer)
            assert '\n    {\n      "city": "Paris",\n      "unit": "celsius"\n    }\n' in answer, (where, answer)
            assert TOOL_ARGUMENTS == {"city": "Paris", "unit": "celsius"}
            assert "finish: tool_calls" in answer, (where, answer)
        else:
            assert f"\n{TEXT}\n" in answer and "finish: stop" in answer, (where, answer)
        if kind == "retried":
            failed, served = [masked(r.credential) for r in fake_vendor.requests[2:4]]  # the 500, then the answer
            assert f"attempts:\n  1. key {failed} · status 500 · " in answer, (where, answer)
            assert f"\n  2. key {served} · served the answer\n" in answer, (where, answer)
            assert flow.comment == "retried 1× (status 500)"
            assert flow.marked == ":repeat:"
        else:
            assert "attempts:" not in answer, (where, answer)
        assert flow.error is None, (where, flow.error)
