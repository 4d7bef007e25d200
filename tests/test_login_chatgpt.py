"""Codex logged in with ChatGPT (protocols/logins/chatgpt.py, rewrite/providers/chatgpt.py): what its answers say of
the plan (windows, exhaustion), and its request as the public Responses API gets it on a route's next target, judged
by the openai SDK's own types (as the fidelity suite judges translations, tests/test_fidelity.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from openai.types.responses import response_create_params

import protocols
from protocols.logins import chatgpt as wire
from protocols.openai_responses.stream import failure_answer
from protocols.vendor_errors import ErrorKind
from protocols.windows import WindowStatus
from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange, Job
from rewrite.intake.clients import hide
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support import fake_vendor, login_dialects
from tests.support.engine_harness import FakeResponder, Upstream, events_of, sse
from tests.support.sdk_clients import responses_events
from tests.support.sdk_types import check_typed_dict
from tests.support.streams import parse as parse_sse

NOW = 1_800_000_000.0
CODEX = {p.stem: json.loads(p.read_text())["body"]
         for p in sorted((Path(__file__).parent / "fixtures" / "agents" / "codex-0.171.0").glob("*.json"))}
READER = Router(parse("")).provider_named("chatgpt")


def windows(headers: dict[str, str] | None = None, body: bytes = b"", status: int = 200):
    assert READER is not None
    return {w.name: w for w in READER.windows("openai_responses").read(status, list((headers or {}).items()), body,
                                                                      NOW)}


def error(status: int, body: dict, headers: dict[str, str] | None = None):
    assert READER is not None
    return READER.errors("openai_responses").read(status, list((headers or {}).items()), json.dumps(body).encode(),
                                                  NOW)


# --- the plan's windows


def test_the_plans_windows_are_read_from_the_headers_and_named_by_their_length():
    found = windows({"x-codex-primary-used-percent": "12", "x-codex-primary-window-minutes": "300",
                     "x-codex-primary-reset-at": str(int(NOW) + 3600), "x-codex-secondary-used-percent": "30.5",
                     "x-codex-secondary-window-minutes": "10080", "x-codex-secondary-reset-after-seconds": "600"})
    assert set(found) == {"5h", "7d"}
    assert (found["5h"].used, found["5h"].resets_at, found["5h"].status) == (0.12, NOW + 3600, WindowStatus.ALLOWED)
    assert (found["7d"].used, found["7d"].resets_at) == (0.305, NOW + 600)


def test_another_limit_family_is_named_with_its_limit():
    found = windows({"x-codex-bengalfox-primary-used-percent": "80", "x-codex-bengalfox-primary-window-minutes": "60"})
    assert list(found) == ["codex_bengalfox 1h"] and found["codex_bengalfox 1h"].used == 0.8


def test_a_used_up_window_is_exhausted_only_when_it_names_its_reset():
    """Without a reset, the login would be left for good: the figures are kept, no status."""
    found = windows({"x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300",
                     "x-codex-secondary-used-percent": "100", "x-codex-secondary-window-minutes": "10080",
                     "x-codex-secondary-reset-at": str(int(NOW) + 86400)})
    assert (found["5h"].used, found["5h"].status) == (1.0, None)
    assert found["7d"].status is WindowStatus.EXHAUSTED and found["7d"].exhausted(NOW)


def test_the_windows_of_a_codex_rate_limits_event():
    event = {"type": "codex.rate_limits", "plan_type": "pro",
             "rate_limits": {"primary": {"used_percent": 42.0, "window_minutes": 300, "reset_at": int(NOW) + 60},
                             "secondary": None}, "credits": None}
    found = windows(body=json.dumps(event).encode())
    assert list(found) == ["5h"] and (found["5h"].used, found["5h"].resets_at) == (0.42, NOW + 60)
    assert windows(body=b'{"type":"response.created","codex.rate_limits":1}') == {}


def test_values_that_do_not_parse_are_left_out():
    assert windows({"x-codex-primary-used-percent": "lots", "x-codex-secondary-used-percent": "-3"}) == {}
    assert windows(body=b'{"type": "codex.rate_limits", "rate_limits": {"primary": {"used_percent": "x"}}}') == {}


# --- a used-up plan


def test_usage_limit_reached_is_the_plans_quota_until_its_reset():
    body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                      "plan_type": "pro", "resets_at": int(NOW) + 7200, "resets_in_seconds": 7200}}
    spent = error(429, body)
    assert spent.kind is ErrorKind.QUOTA and spent.quota is not None
    assert (spent.quota.window, spent.quota.per_model) == (7200, False)
    assert spent.quota.what == "the pro plan's usage limit is reached"


def test_usage_limit_reached_inside_a_200_stream_reads_the_same():
    failed = {"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "usage_limit_reached", "message": "The usage limit has been reached", "resets_in_seconds": 60}}}
    status, body = failure_answer("response.failed", failed)
    spent = error(status, json.loads(body))
    assert spent.kind is ErrorKind.QUOTA and spent.quota is not None and spent.quota.window == 60


@pytest.mark.parametrize("body", [{"error": {"type": "rate_limit_exceeded", "message": "slow down"}},
                                  {"error": {"type": "usage_limit_reached", "resets_at": NOW + 86400 * 400}}])
def test_another_429_or_a_reset_past_any_plan_window_is_no_plans_window(body):
    spent = error(429, body)
    assert spent.kind is ErrorKind.RATE_LIMITED or spent.quota is not None and spent.quota.window is None


# --- the request, as the public Responses API gets it


@pytest.mark.parametrize("name", CODEX)
def test_the_codex_dialect_reaches_the_public_api_as_its_sdk_declares_it(name):
    body = CODEX[name]
    public = wire.public_body(body)
    check_typed_dict({**public, "stream": True}, response_create_params.ResponseCreateParamsStreaming)
    assert login_dialects.declared_tools(public) == login_dialects.declared_tools(body)  # every tool still offered
    assert [t["type"] for t in public["tools"]] == ["namespace"] * len(public["tools"])  # (namespaces stay)
    assert not [i for i in public["input"] if i.get("type") == "additional_tools"]
    said = [(i.get("role"), i.get("content")) for i in body["input"] if i.get("type") == "message"]
    assert [(i.get("role"), i.get("content")) for i in public["input"] if i.get("type") == "message"] == said
    calls = [(i["type"], i.get("call_id")) for i in body["input"] if i.get("type", "").startswith("function_call")]
    assert [(i["type"], i.get("call_id")) for i in public["input"]
            if i.get("type", "").startswith("function_call")] == calls
    assert (public["store"], public["model"]) == (body["store"], body["model"])
    assert "client_metadata" in body and "client_metadata" not in public


def test_a_body_with_nothing_codex_only_is_sent_as_it_is():
    body = {"model": "gpt-5.5", "input": [{"role": "user", "content": "hi"}], "store": False, "stream": True}
    assert wire.public_body(body) is body


def test_the_account_headers_stay_with_the_login():
    headers = [("chatgpt-account-id", "acct"), ("X-OpenAI-Fedramp", "true"), ("originator", "codex_exec"),
               ("x-openai-account-routing-override", "us"), ("x-codex-turn-state", "t"), ("session-id", "s")]
    assert wire.foreign_headers(headers) == [("originator", "codex_exec"), ("session-id", "s")]


@pytest.mark.parametrize("kind", ["text", "tool"])
def test_the_public_apis_answer_reaches_codex_as_it_came(kind):
    """The openai pool's stream goes to Codex in its own protocol, untouched, and reads as the SDK's stream helper
    reads a Responses stream (its ordering checks, the final response)."""
    body = wire.public_body(CODEX["tool-1"])
    fault = fake_vendor.Fault() if kind == "text" else fake_vendor.Fault.tool_call("list_agents", {})
    events = fake_vendor.responses_events(fake_vendor.Ctx(0, body["model"], 1761000000, body, fault))
    sent = b"".join(ev.data for ev in events)
    repairer = protocols.get("openai_responses").repairer(CODEX["tool-1"])
    out = b"".join(repairer.feed(e) for e in parse_sse(sent))
    assert out == sent and repairer.complete and not repairer.failed
    final = responses_events(out)[-1].response
    if kind == "tool":
        assert [(i.type, i.name) for i in final.output if i.type == "function_call"] == [("function_call",
                                                                                             "list_agents")]
    else:
        assert final.output_text == fake_vendor.TEXT


# --- the engine reads the windows of the login's stream events


async def test_a_logins_stream_reports_its_windows_by_its_event():
    cfg = parse("providers: {chatgpt: {base_url: 'http://vendor.test/backend-api/codex'}}")
    cfg.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    router = Router(cfg)
    route = router.route("chatgpt.com", "POST", "/backend-api/codex/responses", {"authorization": "Bearer jwt"})
    assert route is not None and route.provider.name == "chatgpt"
    limits = {"type": "codex.rate_limits", "rate_limits": {
        "primary": {"used_percent": 25, "window_minutes": 300, "reset_at": int(time.time()) + 600},
        "secondary": {"used_percent": 50, "window_minutes": 10080, "reset_at": int(time.time()) + 6000}}}
    text = events_of(fake_vendor_text())
    stream = text[:1] + [f"event: codex.rate_limits\ndata: {json.dumps(limits)}\n\n".encode()] + text[1:]
    up = Upstream([lambda r: sse(stream)])
    headers = [("host", "chatgpt.com"), ("content-type", "application/json"), ("authorization", "Bearer jwt")]
    shown, _, held = hide(route.provider.credential, headers, "")
    body = {"model": "gpt-6.1-sol", "input": "hi", "store": False, "stream": True}
    job = Job("job-0001", route, route.provider)
    job.credential = held
    responder = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(up)) as client:
        await Exchange(client, cfg.streaming, job, LoopbackRequest("POST", "/backend-api/codex/responses", shown,
                                                                   json.dumps(body).encode()),
                       responder, router=router).run()
    assert str(up.seen[0].url) == "http://vendor.test/backend-api/codex/responses"
    assert up.seen[0].headers["authorization"] == "Bearer jwt"  # the client's own login
    assert responder.body == b"".join(stream)  # passed as it came
    assert {w["name"]: w["used"] for w in job.records["login"]["windows"]} == {"5h": 0.25, "7d": 0.5}
    [login] = route.provider.logins.describe()
    assert {w["name"] for w in login["windows"]} == {"5h", "7d"}


def fake_vendor_text() -> bytes:
    from tests.support import samples
    return samples.RESPONSES_TEXT
