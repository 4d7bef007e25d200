"""The WebSocket addon on its own: which upgrades it downgrades, which it hands to the relay, and what the flow keeps."""

from mitmproxy.test import tflow

from addons.websocket import WebSocketUpstream
from rewrite.config import parse
from rewrite.engine import Engine

POOLED = "providers: {openai: {base_url: 'http://127.0.0.1:9/v1', keys: [sk-pool-secret-1]}}\n"


def upgrade(host: str = "api.openai.com", path: str = "/v1/responses", key: str = "sk-client-secret-9"):
    flow = tflow.tflow()
    req = flow.request
    req.scheme, req.host, req.port, req.path = "https", host, 443, path
    req.headers["host"] = host
    req.headers.update({"upgrade": "websocket", "connection": "Upgrade", "authorization": f"Bearer {key}",
                        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13"})
    return flow


def addon(config: str = POOLED) -> WebSocketUpstream:
    return WebSocketUpstream(Engine(parse(config)))


def test_a_responses_upgrade_is_answered_426_with_the_reason_on_the_flow():
    flow = upgrade()
    addon().request(flow)
    assert flow.response.status_code == 426
    assert b"websocket: pass" in flow.response.content
    assert "426" in flow.comment and flow.metadata["rotator"]["events"][0]["kind"] == "downgraded"
    assert flow.request.headers["authorization"] == "Bearer sk-c…et-9"


async def test_other_upgrades_go_to_the_relay_and_only_the_relay_holds_the_credential():
    ws = addon()
    flow = upgrade(path="/v1/realtime?model=gpt-realtime")
    ws.request(flow)
    assert flow.response is None
    assert (flow.request.host, flow.request.port) == ("127.0.0.1", ws.relay.port)
    assert "secret" not in str(flow.request.headers) and flow.id not in str(flow.request.get_state())
    held = ws.relay.jobs[flow.id]
    assert ("authorization", "Bearer sk-client-secret-9") in held.headers
    assert held.target == "/v1/realtime?model=gpt-realtime"
    ws.done()


async def test_pass_sends_responses_upgrades_to_the_relay_too():
    ws = addon(POOLED + "websocket: pass\n")
    flow = upgrade()
    ws.request(flow)
    assert flow.response is None and flow.id in ws.relay.jobs
    ws.done()


def test_upgrades_elsewhere_and_plain_requests_are_left_alone():
    ws = addon()
    other = upgrade(host="example.com")
    plain = tflow.tflow()
    plain.request.host = "api.openai.com"
    before = (other.request.get_state(), plain.request.get_state())
    ws.request(other)
    ws.request(plain)
    assert (other.request.get_state(), plain.request.get_state()) == before
    assert other.response is None and plain.response is None
