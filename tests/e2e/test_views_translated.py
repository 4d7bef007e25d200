"""The LLM view's steps on flows a real `mitmdump -s addons/rotator.py -w FILE` saved: an Anthropic SDK call routed to
an OpenAI-compatible target shows the Chat Completions request that left Rotator (its key masked) and the Chat SSE
the target answered before translation; a call whose body an adapter changed shows the adapted request; a call
Rotator sent as it came records no steps. Read back from the file and rendered as mitmweb does.
"""

from __future__ import annotations

import pytest

from rewrite.pool import mask
from tests.support.clients import PROMPT, call, make_client
from tests.support.fake_vendor import TEXT
from tests.support.flows import read_flows
from tests.support.harness import POOL_KEYS
from tests.support.views import shown

pytestmark = pytest.mark.e2e

TARGET_KEY = "sk-deepseek-secret-0001"
ROUTED_MODEL = "via-deepseek"
ADAPTED_MODEL = "claude-haiku-4-5"
NATIVE_MODEL = "claude-opus-4-6"


def config(vendor_url: str) -> dict:
    return {
        "providers": {
            "deepseek": {"kind": "openai", "base_url": f"{vendor_url}/v1", "keys": [TARGET_KEY]},
            "anthropic": {"models": {ADAPTED_MODEL: {"adapters": [{"force": {"temperature": 0.25}}]}}},
        },
        "routes": [{"models": [ROUTED_MODEL], "targets": ["deepseek/deepseek-chat"]}],
    }


@pytest.fixture
def saved(rotator, fake_vendor, tmp_path):
    """Four Anthropic SDK calls (routed stream, routed non-stream, adapted, native) and the flows mitmdump saved."""
    path = tmp_path / "flows.mitm"
    proxy = rotator(config(fake_vendor.url), fresh=True, args=("-w", str(path)))
    client = make_client("anthropic")
    results = [call("anthropic", client, stream=True, model=ROUTED_MODEL),
               call("anthropic", client, stream=False, model=ROUTED_MODEL),
               call("anthropic", client, stream=True, model=ADAPTED_MODEL),
               call("anthropic", client, stream=True, model=NATIVE_MODEL)]
    assert [r.text for r in results] == [TEXT] * 4
    vendor = fake_vendor.wait_for(4)
    assert [(r.protocol, r.model) for r in vendor] == [("chat", "deepseek-chat")] * 2 + [
        ("anthropic", ADAPTED_MODEL), ("anthropic", NATIVE_MODEL)]
    proxy.proc.stop()  # the flow file is complete once mitmdump has exited
    flows = [f for f in read_flows(path) if f.request.pretty_host == "api.anthropic.com"]
    assert len(flows) == 4
    return path, flows, vendor, fake_vendor.url


def test_a_translated_flow_shows_the_request_that_left_rotator_and_the_raw_answer(llm_view, saved):
    path, flows, _, vendor_url = saved
    for flow in flows[:2]:
        for text in (shown(flow, flow.response), shown(flow, flow.request)):
            assert "─── steps: what Rotator changed on the way ───\n1. the request as the client sent it:\n" in text
            assert f'"model": "{ROUTED_MODEL}"' in text  # the client's Anthropic request
            assert "2. as it left Rotator for deepseek/deepseek-chat (OpenAI Chat Completions):\n" in text, text
            assert "     - translated from anthropic_messages to openai_chat\n" in text
            assert f"     POST {vendor_url}/v1/chat/completions\n" in text, text
            assert f"     authorization: Bearer {mask(TARGET_KEY)}\n" in text, text
            assert '       "model": "deepseek-chat",\n' in text  # the Chat body, indented
            assert f'"content": "{PROMPT}"' in text
            # the target's Chat SSE, before it was translated into Anthropic events
            assert "3. deepseek/deepseek-chat's answer, before Rotator translated or rewrote it (status 200 · " \
                   "text/event-stream" in text, text
            assert "chat.completion.chunk" in text and "     data: [DONE]\n" in text, text
            assert TARGET_KEY not in text
    # the non-stream call went upstream as a stream, folded back into the client's JSON
    assert "sent as a stream (force_upstream_stream), the answer folded back into JSON" in shown(
        flows[1], flows[1].response)
    data = path.read_bytes()
    for key in (TARGET_KEY, *POOL_KEYS["anthropic"]):
        assert key.encode() not in data, key


def test_an_adapted_flow_shows_the_step_and_an_untouched_one_none(llm_view, saved):
    _, flows, vendor, _ = saved
    adapted, native = flows[2], flows[3]
    assert vendor[2].body["temperature"] == 0.25
    text = shown(adapted, adapted.request)
    assert f"2. as it left Rotator for anthropic/{ADAPTED_MODEL} (Anthropic Messages):\n" in text, text
    assert "     - adapters: force\n" in text, text
    assert '       "temperature": 0.25\n' in text, text
    assert f"     x-api-key: {mask(vendor[2].credential)}\n" in text, text
    assert "before Rotator translated or rewrote it" not in text  # the answer is the flow's own response
    assert "steps" not in native.metadata["rotator"]
    assert "steps:" not in shown(native, native.response)
