"""The WebSocket addon on its own: which upgrades it downgrades, which it hands to the relay, and what the flow keeps."""

from mitmproxy.test import tflow

from addons.interception import Interception
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
    addon().upgrade(flow)
    assert flow.response.status_code == 426
    assert b"websocket: pass" in flow.response.content
    assert "426" in flow.comment and flow.metadata["rotator"]["events"][0]["kind"] == "downgraded"
    assert flow.request.headers["authorization"] == "Bearer …et-9"


async def test_other_upgrades_go_to_the_relay_and_only_the_relay_holds_the_credential():
    ws = addon()
    flow = upgrade(path="/v1/realtime?model=gpt-realtime")
    ws.upgrade(flow)
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
    ws.upgrade(flow)
    assert flow.response is None and flow.id in ws.relay.jobs
    ws.done()


def test_upgrades_elsewhere_are_left_alone():
    other = upgrade(host="example.com")
    before = other.request.get_state()
    addon().upgrade(other)
    assert other.request.get_state() == before and other.response is None


class Told:
    def __init__(self) -> None:
        self.upgrades: list = []
        self.answers: list = []

    def upgrade(self, flow) -> None:
        self.upgrades.append(flow)

    def answered(self, flow) -> None:
        self.answers.append(flow)


async def test_interception_hands_the_addon_upgrades_only():
    told = Told()
    interception = Interception(Engine(parse(POOLED)), told)
    plain, ws = tflow.tflow(resp=True), upgrade()
    plain.request.host = "example.com"
    for flow in (plain, ws):
        await interception.request(flow)
    assert told.upgrades == [ws]
    ws.response = tflow.tresp()
    for flow in (plain, ws):
        interception.responseheaders(flow)
        await interception.error(flow)
    assert told.answers == [ws, ws]
