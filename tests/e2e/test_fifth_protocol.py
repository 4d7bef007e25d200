"""A fifth protocol from one folder (tests/support/toy_protocol/: Chat under another path, name and family, with its
own credential header) and one registration line, with no change to Rotator's engine: a real mitmdump that
registers it before loading Rotator recognises its calls, sends them to its provider with a pooled key in its own
header, repairs its cut streams, reads its usage, routes it to a target of another protocol through its translator,
and the flow view names it by its label.
"""

from __future__ import annotations

import json

import pytest

import protocols
from protocols import registry
from tests.support import toy_protocol as toy
from tests.support.fake_vendor import INPUT_TOKENS, TEXT, Fault, split_text
from tests.support.flows import read_flows
from tests.support.harness import POOL_KEYS
from tests.support.raw_http import through
from tests.support.streams import parse
from tests.support.views import shown

pytestmark = pytest.mark.e2e

SCRIPT = "tests/support/toy_protocol/rotator.py"
HOST = "api.toy.test"
TOY_KEY = "toy-pool-key-0001"
CLIENT_KEY = "toy-client-key-0001"
MODEL = "toy-model"
ROUTED_MODEL = "via-claude"
CLAUDE = "claude-haiku-4-5"


def config(vendor_url: str) -> dict:
    # The toy SDK's calls `/v1/toy/completions` reach the fake vendor's Chat endpoint `/v1/chat/completions`.
    return {"providers": {"toy": {"kind": toy.FAMILY, "hosts": [HOST], "base_url": f"{vendor_url}/v1/chat",
                                  "path_prefix": "/v1/toy", "keys": [TOY_KEY]}},
            "routes": [{"models": [ROUTED_MODEL], "targets": [f"anthropic/{CLAUDE}"]}]}


@pytest.fixture
def toy_registered(monkeypatch):
    """The toy known in this process too, where the flow view is rendered."""
    monkeypatch.setattr(registry, "_registrations", dict(registry._registrations))
    monkeypatch.setattr(registry, "_families", dict(registry._families))
    protocols.register(toy.REGISTRATION)


def toy_call(proxy, model: str) -> list[dict]:
    """A streamed toy call as its client makes it (its key in x-toy-key): the chunks it receives."""
    with through(proxy) as http:
        resp = http.post(f"https://{HOST}/v1/toy/completions", headers={toy.KEY_HEADER: CLIENT_KEY},
                         json={"model": model, "stream": True, "messages": [{"role": "user", "content": "Hi"}]})
    assert resp.status_code == 200, resp.text
    events = [e.data for e in parse(resp.content) if e.data is not None]
    assert events[-1] == "[DONE]"
    return [json.loads(data) for data in events[:-1]]


def text_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def finish_of(chunks: list[dict]) -> str | None:
    return next((c["choices"][0]["finish_reason"] for c in reversed(chunks)
                 if c.get("choices") and c["choices"][0].get("finish_reason")), None)


def test_a_fifth_protocol_registered_in_one_line_is_served_end_to_end(rotator, fake_vendor, toy_registered,
                                                                       llm_view, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    proxy = rotator(config(fake_vendor.url), fresh=True, script=SCRIPT, args=("-w", str(flows_path)))
    fake_vendor.script(Fault.ok(), Fault.cut_after(deltas=2), Fault.ok())

    whole = toy_call(proxy, MODEL)
    cut = toy_call(proxy, MODEL)
    routed = toy_call(proxy, ROUTED_MODEL)

    # Recognised and sent to its provider, with the pooled key in the toy's own header (the client's never leaves).
    native, cut_req, claude = fake_vendor.wait_for(3)
    for req in (native, cut_req):
        assert (req.path, req.protocol, req.model) == ("/v1/chat/completions", "chat", MODEL), req.summary()
        assert req.headers[toy.KEY_HEADER] == TOY_KEY and "authorization" not in req.headers
    assert text_of(whole) == TEXT and finish_of(whole) == "stop"
    # A stream cut after two deltas ends honestly, in the toy's (Chat's) own words.
    assert text_of(cut) == "".join(split_text(TEXT)[:2]) and finish_of(cut) == "length"
    # Routed by model to an Anthropic target through the toy's translator, and back.
    assert (claude.protocol, claude.model) == ("anthropic", CLAUDE), claude.summary()
    assert claude.credential in POOL_KEYS["anthropic"] and toy.KEY_HEADER not in claude.headers
    assert text_of(routed) == TEXT and finish_of(routed) == "stop"

    proxy.proc.stop()  # the flow file is complete once mitmdump has exited
    flows = [f for f in read_flows(flows_path) if f.request.pretty_host == HOST]
    assert len(flows) == 3
    for flow in flows:
        assert flow.metadata["rotator"]["protocol"] == toy.NAME
        # Labelled in the flow view.
        assert shown(flow, flow.response).startswith(f"Rotator · {toy.LABEL} · ")
    # Its usage read: natively from the usage chunk Rotator asked for (and kept from the client, which did not ask).
    assert native.body["stream_options"] == {"include_usage": True}
    for flow in (flows[0], flows[2]):  # (the cut stream ended before its usage chunk)
        assert flow.metadata["rotator"]["usage"]["input_tokens"] == INPUT_TOKENS, flow.metadata["rotator"]
    assert not any("usage" in c for c in whole)
    assert TOY_KEY not in proxy.full_log and CLIENT_KEY not in proxy.full_log
