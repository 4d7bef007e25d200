"""The mitmproxy glue with subscription logins: a login's other paths and side hosts go as they came and are masked
once sent; the pools' gate leaves a client's own login alone; Interception hands a login's generation call over."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.test import tflow, tutils

from addons.access import Access
from addons.interception import Interception
from addons.masking import MaskOnArrival
from addons.websocket import WebSocketUpstream
from rewrite.config import parse
from rewrite.engine import Engine
from rewrite.intake.clients import ClientKeys

TOKEN = "sk-ant-oat01-the-users-own-login"
CONFIG = ("providers: {anthropic: {keys: [sk-ant-pool-secret]}}\n"
          "clients: [{name: team, key: client-key-0123456789}]\n")


def anthropic_flow(path: str, credential: tuple[str, str] = ("authorization", f"Bearer {TOKEN}"),
                   host: str = "api.anthropic.com") -> http.HTTPFlow:
    flow = tflow.tflow()
    req = flow.request
    req.scheme, req.host, req.port, req.method, req.path = "https", host, 443, "POST", path
    req.headers["host"] = host
    req.headers[credential[0]] = credential[1]
    req.headers["anthropic-beta"] = "oauth-2025-04-20"
    req.content = b'{"model": "claude-opus-4-8", "messages": []}'
    return flow


async def test_a_logins_other_path_goes_as_it_came_and_is_masked_once_sent():
    engine = Engine(parse(CONFIG))
    masking, interception = MaskOnArrival(engine), Interception(engine, WebSocketUpstream(engine))
    flow = anthropic_flow("/api/oauth/usage")

    masking.requestheaders(flow)
    assert TOKEN not in str(flow.request.headers)  # (mitmweb shows it from its headers on)
    masking.request(flow)
    await interception.request(flow)

    assert flow.request.host == "api.anthropic.com" and flow.request.headers["authorization"] == f"Bearer {TOKEN}"
    flow.response = tutils.tresp()
    masking.responseheaders(flow)
    assert flow.request.headers["authorization"] == "Bearer sk-a…ogin"
    engine.server.close()


def test_a_logins_side_host_is_masked_once_sent():
    engine = Engine(parse(CONFIG))
    masking = MaskOnArrival(engine)
    flow = anthropic_flow("/copilot_internal/user", ("authorization", "token gho_fakeGitHubToken0000"),
                          host="api.github.com")

    masking.requestheaders(flow)
    masking.request(flow)
    assert "gho_fakeGitHubToken0000" in flow.request.headers["authorization"]  # (sent as it came)
    flow.response = tutils.tresp()
    masking.response(flow)

    assert "gho_fakeGitHubToken0000" not in str(flow.get_state())
    other = anthropic_flow("/copilot_internal/user", ("authorization", "token gho_fakeGitHubToken0000"),
                           host="example.com")
    for hook in (masking.requestheaders, masking.request, masking.response):
        hook(other)
    assert other.request.headers["authorization"] == "token gho_fakeGitHubToken0000"  # (not a login's host)


def test_the_pools_gate_leaves_a_clients_own_login_alone_and_gates_a_key():
    engine = Engine(parse(CONFIG))
    access = Access(engine)
    access._clients = ClientKeys(engine.config.clients)  # (what `configure` does when the config is loaded)
    login, key = anthropic_flow("/v1/messages"), anthropic_flow("/v1/messages", ("x-api-key", "sk-ant-someone"))
    del key.request.headers["anthropic-beta"]

    access.request(login)
    access.request(key)

    assert login.response is None and login.request.headers["authorization"] == f"Bearer {TOKEN}"
    assert key.response is not None and key.response.status_code == 401


async def test_a_logins_generation_call_is_handed_to_the_engine_for_its_provider():
    engine = Engine(parse(CONFIG))
    interception = Interception(engine, WebSocketUpstream(engine))
    flow = anthropic_flow("/v1/messages?beta=true")
    flow.request.content = b'{"model": "claude-opus-4-8", "messages": [], "stream": true}'  # (a whole one: in its flow)

    await interception.request(flow)

    job = engine.jobs[flow.id]
    assert job.route.provider.name == "claude_login" and flow.request.host == "127.0.0.1"
    assert job.intake.credential is not None and job.intake.credential.headers == [("authorization", f"Bearer {TOKEN}")]
    assert flow.request.headers["authorization"] == "Bearer sk-a…ogin"
    engine.server.close()
