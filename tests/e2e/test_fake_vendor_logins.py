"""The fake vendor speaks the four login dialects (tests/support/login_dialects.py) as their backends do, with the
plans' windows and exhaustion answers, its faults working on them as on their protocols; and the stand-ins answer
the CLIs' side calls (tests/support/stand_ins.py). Straight at the fake vendor: no proxy, no CLI
(tests/e2e/test_logins_direct.py drives the real CLIs)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
import zstandard

from tests.support import login_dialects as ld
from tests.support import stand_ins
from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.logins_addon import generation

CODEX_BODY = {"model": "gpt-6.1-sol", "stream": True, "store": False, "parallel_tool_calls": False,
              "input": [{"type": "additional_tools", "role": "developer",
                         "tools": [{"type": "namespace", "name": "functions",
                                    "tools": [{"type": "custom", "name": "exec"}, {"type": "function",
                                                                                  "name": "apply_patch"}]}]},
                        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be."}]},
                        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
CODE_ASSIST_BODY = {"model": "gemini-2.5-flash", "project": stand_ins.CODE_ASSIST_PROJECT, "user_prompt_id": "p-1",
                    "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "session_id": "s-1"}}
CLAUDE_HEADERS = {"authorization": "Bearer sk-ant-oat01-fake", "anthropic-version": "2023-06-01",
                  "anthropic-beta": "claude-code-20250219,oauth-2025-04-20"}
MESSAGES_BODY = {"model": "claude-opus-4-8", "max_tokens": 100, "stream": True,
                 "messages": [{"role": "user", "content": "hi"}]}


def events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def codex_post(vendor, body: dict = CODEX_BODY, **headers: str) -> httpx.Response:
    """As Codex sends it with a ChatGPT login: zstd-compressed JSON."""
    raw = zstandard.ZstdCompressor().compress(json.dumps(body).encode())
    return httpx.post(f"{vendor.url}/backend-api/codex/responses", content=raw,
                      headers={"content-encoding": "zstd", "content-type": "application/json",
                               "authorization": "Bearer eyJ.fake.jwt", "chatgpt-account-id": "acct-fake", **headers})


# --- ChatGPT (Codex)


def test_chatgpt_answers_a_zstd_body_with_its_rate_limits_and_keeps_the_bytes_it_got(fake_vendor):
    raw = zstandard.ZstdCompressor().compress(json.dumps(CODEX_BODY).encode())
    answer = codex_post(fake_vendor)

    assert answer.status_code == 200
    got = events(answer.text)
    assert [e["type"] for e in got[:2]] == ["response.created", "codex.rate_limits"]
    limits = got[1]["rate_limits"]
    assert (limits["primary"]["used_percent"], limits["primary"]["window_minutes"]) == (12.0, 300)
    assert limits["primary"]["reset_at"] == int(answer.headers["x-codex-primary-reset-at"])
    assert (limits["secondary"]["used_percent"], limits["secondary"]["window_minutes"]) == (30.0, 10080)
    assert answer.headers["x-codex-secondary-used-percent"] == "30"
    assert dict(fake_vendor.calls()[0].response_headers)["x-codex-primary-reset-at"] == str(limits["primary"]["reset_at"])
    assert "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta") == TEXT
    [call] = fake_vendor.calls("responses")
    assert (call.dialect, call.raw_body, call.body) == ("chatgpt", raw, CODEX_BODY)
    assert ld.declared_tools(call.body) == ["exec", "apply_patch"]


@pytest.mark.parametrize(("change", "detail"), [
    ({"store": None}, "Store must be set to false"),
    ({"store": True}, "Store must be set to false"),
    ({"stream": False}, "Stream must be set to true"),
    ({"temperature": 0.2}, "Unsupported parameter: temperature"),
    ({"max_output_tokens": 100}, "Unsupported parameter: max_output_tokens"),
    ({"input": [{"type": "message", "role": "system", "content": "Be."}]}, "System messages are not allowed"),
])
def test_chatgpt_refuses_what_its_backend_refuses(fake_vendor, change, detail):
    body = {k: v for k, v in {**CODEX_BODY, **change}.items() if v is not None}

    answer = codex_post(fake_vendor, body)

    assert (answer.status_code, answer.json()) == (400, {"detail": detail})


def test_chatgpt_plan_windows_are_scripted_and_the_event_agrees(fake_vendor):
    fake_vendor.script(Fault.with_headers(ld.windows(ld.CHATGPT, used=0.93, weekly=0.5)))

    answer = codex_post(fake_vendor)

    limits = events(answer.text)[1]["rate_limits"]
    assert answer.headers["x-codex-primary-used-percent"] == "93"
    assert answer.headers.get_list("x-codex-primary-used-percent") == ["93"]  # (the default gives way)
    assert (limits["primary"]["used_percent"], limits["secondary"]["used_percent"]) == (93.0, 50.0)


def test_chatgpt_exhaustion_is_its_usage_limit_answer(fake_vendor):
    fake_vendor.script(ld.exhausted(ld.CHATGPT, resets_in=600))
    before = int(time.time())

    answer = codex_post(fake_vendor)

    assert answer.status_code == 429
    error = answer.json()["error"]
    assert error["type"] == "usage_limit_reached" and error["resets_in_seconds"] == 600
    assert before + 600 <= error["resets_at"] <= int(time.time()) + 600
    assert answer.headers["x-codex-primary-used-percent"] == "100"


def test_chatgpt_error_inside_a_200_stream_is_a_response_failed(fake_vendor):
    fake_vendor.script(Fault.error_after(deltas=2))

    answer = codex_post(fake_vendor)

    assert answer.status_code == 200
    got = events(answer.text)
    assert "".join(e.get("delta", "") for e in got) == "".join(split_text(TEXT)[:2])
    assert got[-1]["type"] == "response.failed"
    assert got[-1]["response"]["status"] == "failed" and got[-1]["response"]["error"]["code"] == "server_error"


def test_chatgpt_stream_faults_work_as_on_responses(fake_vendor):
    fake_vendor.script(Fault.stall_after_headers(0.5).cut_after(deltas=1))

    start = time.monotonic()
    answer = codex_post(fake_vendor)

    assert time.monotonic() - start >= 0.5
    got = events(answer.text)
    assert [e["type"] for e in got[:2]] == ["response.created", "codex.rate_limits"]
    assert "response.completed" not in [e["type"] for e in got]
    assert fake_vendor.calls()[0].outcome == "cut-clean"


def test_chatgpt_websocket_upgrade_is_refused_426_without_taking_a_scripted_fault(fake_vendor):
    fake_vendor.script(ld.exhausted(ld.CHATGPT))

    upgrade = httpx.get(f"{fake_vendor.url}/backend-api/codex/responses",
                        headers={"connection": "Upgrade", "upgrade": "websocket", "sec-websocket-version": "13",
                                 "sec-websocket-key": base64.b64encode(b"0123456789abcdef").decode()})
    answer = codex_post(fake_vendor)

    assert upgrade.status_code == 426
    assert answer.status_code == 429  # the scripted exhaustion went to the POST


# --- Code Assist (Gemini CLI)


def test_code_assist_wraps_its_stream_and_its_whole_answer(fake_vendor):
    stream = httpx.post(f"{fake_vendor.url}/v1internal:streamGenerateContent?alt=sse", json=CODE_ASSIST_BODY)
    whole = httpx.post(f"{fake_vendor.url}/v1internal:generateContent", json=CODE_ASSIST_BODY)

    chunks = events(stream.text)
    assert chunks and all(set(c) == {"response", "traceId"} for c in chunks)
    assert "".join(c["response"]["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == TEXT
    assert chunks[-1]["response"]["candidates"][0]["finishReason"] == "STOP"
    assert "\r\n\r\n" in stream.text
    answer = whole.json()
    assert answer["response"]["candidates"][0]["content"]["parts"][0]["text"] == TEXT
    assert answer["traceId"]
    stream_call, whole_call = fake_vendor.calls("gemini")
    assert (stream_call.dialect, stream_call.model, stream_call.stream) == ("code_assist", "gemini-2.5-flash", True)
    assert whole_call.stream is False


def test_code_assist_faults_act_on_the_unwrapped_request(fake_vendor):
    fake_vendor.script(Fault.refuse_param("temperature"), Fault.cut_after(deltas=2))
    asking = {**CODE_ASSIST_BODY, "request": {**CODE_ASSIST_BODY["request"], "generationConfig": {"temperature": 1}}}

    refused = httpx.post(f"{fake_vendor.url}/v1internal:generateContent", json=asking)
    cut = httpx.post(f"{fake_vendor.url}/v1internal:streamGenerateContent?alt=sse", json=CODE_ASSIST_BODY)

    assert refused.status_code == 400 and "temperature" in refused.json()["error"]["message"]
    chunks = events(cut.text)
    assert len(chunks) == 2 and "finishReason" not in chunks[-1]["response"]["candidates"][0]


def test_code_assist_own_calls_are_answered_without_taking_a_scripted_fault(fake_vendor):
    fake_vendor.script(ld.exhausted(ld.CODE_ASSIST))

    load = httpx.post(f"{fake_vendor.url}/v1internal:loadCodeAssist", json={"metadata": {}})
    quota = httpx.post(f"{fake_vendor.url}/v1internal:retrieveUserQuota", json={"project": "p"})
    generation_ = httpx.post(f"{fake_vendor.url}/v1internal:streamGenerateContent?alt=sse", json=CODE_ASSIST_BODY)

    assert load.json()["cloudaicompanionProject"] == stand_ins.CODE_ASSIST_PROJECT
    assert load.json()["currentTier"]["id"] == "standard-tier"
    assert quota.json() == {"buckets": []}
    assert generation_.status_code == 429


def test_code_assist_exhaustion_carries_quota_exhausted_and_the_whole_wait(fake_vendor):
    fake_vendor.script(ld.exhausted(ld.CODE_ASSIST, resets_in=7200))

    answer = httpx.post(f"{fake_vendor.url}/v1internal:streamGenerateContent?alt=sse", json=CODE_ASSIST_BODY)

    assert answer.status_code == 429
    error = answer.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    info, retry = error["details"]
    assert (info["reason"], info["domain"]) == ("QUOTA_EXHAUSTED", "cloudcode-pa.googleapis.com")
    assert info["metadata"]["quotaResetDelay"] == retry["retryDelay"] == "7200s"


def test_code_assist_without_its_request_is_refused(fake_vendor):
    answer = httpx.post(f"{fake_vendor.url}/v1internal:generateContent", json={"model": "gemini-2.5-flash"})

    assert answer.status_code == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT"


# --- Copilot


@pytest.mark.parametrize(("path", "body", "protocol"), [
    ("/responses", {"model": "gpt-5-mini", "input": "hi", "stream": True, "store": False}, "responses"),
    ("/chat/completions", {"model": "gemini-3.7-flash", "messages": [{"role": "user", "content": "hi"}],
                           "stream": True}, "chat"),
    ("/v1/messages", MESSAGES_BODY, "anthropic"),
])
def test_copilot_answers_on_its_api_host_paths_with_its_quota_headers(fake_vendor, path, body, protocol):
    headers = {"authorization": "Bearer gho_fake", "copilot-integration-id": "copilot-developer-cli"}

    answer = httpx.post(fake_vendor.url + path, json=body, headers=headers)

    assert answer.status_code == 200 and TEXT.split()[0] in answer.text
    assert answer.headers["x-quota-snapshot-premium_interactions"].startswith("ent=300&ov=0.0&ovPerm=false&rem=88.0&rst=")
    [call] = fake_vendor.calls()
    assert (call.protocol, call.dialect) == (protocol, "copilot")


def test_copilot_models_name_the_endpoints_each_takes(fake_vendor):
    fake_vendor.script(ld.exhausted(ld.COPILOT))

    models = httpx.get(f"{fake_vendor.url}/models", headers={"copilot-integration-id": "copilot-developer-cli"})
    answer = httpx.post(f"{fake_vendor.url}/responses", json={"model": "gpt-5-mini", "input": "hi", "stream": True})

    listed = {m["id"]: m["supported_endpoints"] for m in models.json()["data"]}
    assert listed["gpt-5-mini"] == ["/chat/completions", "/responses"]
    assert "/v1/messages" in listed["claude-sonnet-4.5"]
    assert (answer.status_code, answer.json()["error"]["code"]) == (402, "quota_exceeded")  # the fault went here


# --- Claude Code's login


def test_an_oauth_login_gets_the_unified_rate_limit_headers_and_a_key_does_not(fake_vendor):
    login = httpx.post(f"{fake_vendor.url}/v1/messages?beta=true", json=MESSAGES_BODY, headers=CLAUDE_HEADERS)
    key = httpx.post(f"{fake_vendor.url}/v1/messages", json=MESSAGES_BODY,
                     headers={"x-api-key": "sk-ant-api03-fake", "anthropic-version": "2023-06-01"})

    assert login.headers["anthropic-ratelimit-unified-status"] == "allowed"
    assert login.headers["anthropic-ratelimit-unified-representative-claim"] == "five_hour"
    assert float(login.headers["anthropic-ratelimit-unified-5h-utilization"]) == 0.12
    assert "anthropic-ratelimit-unified-status" not in key.headers
    assert [c.dialect for c in fake_vendor.calls("anthropic")] == ["claude_login", None]


def test_an_exhausted_oauth_login_gets_the_rejected_429(fake_vendor):
    fake_vendor.script(ld.exhausted(ld.CLAUDE_LOGIN, resets_in=900))

    answer = httpx.post(f"{fake_vendor.url}/v1/messages?beta=true", json=MESSAGES_BODY, headers=CLAUDE_HEADERS)

    assert answer.status_code == 429 and answer.json()["error"]["type"] == "rate_limit_error"
    assert answer.headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert answer.headers["anthropic-ratelimit-unified-5h-utilization"] == "1"
    assert int(answer.headers["anthropic-ratelimit-unified-reset"]) >= int(time.time()) + 890


# --- the stand-ins


def test_the_workspace_check_lists_the_account_codex_asks_for():
    found = stand_ins.answer("chatgpt.com", "GET", "/backend-api/wham/accounts/check", b"",
                             {"chatgpt-account-id": "acct-other"})

    assert found.status == 200
    assert found.body["accounts"] == [{"id": "acct-other", "workspace_backend_origin": "https://chatgpt.com",
                                       "account_routing_override": "NO_CONSTRAINT"}]


def test_a_refreshed_chatgpt_login_is_a_jwt_that_has_not_expired():
    found = stand_ins.answer("auth.openai.com", "POST", "/oauth/token", b'{"grant_type":"refresh_token"}', {})

    payload = found.body["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["exp"] > time.time() + 600
    assert claims["https://api.openai.com/auth"]["chatgpt_account_id"] == stand_ins.CHATGPT_ACCOUNT


def test_copilot_user_names_the_api_host_given():
    found = stand_ins.answer("api.github.com", "GET", "/copilot_internal/user", b"", {},
                             copilot_api="https://api.business.githubcopilot.com")

    assert found.body["endpoints"]["api"] == "https://api.business.githubcopilot.com"
    assert found.body["quota_snapshots"]["premium_interactions"]["remaining"] == 250


@pytest.mark.parametrize(("host", "method", "path", "status"), [
    ("oauth2.googleapis.com", "POST", "/token", 200),
    ("oauth2.googleapis.com", "POST", "/tokeninfo", 200),
    ("www.googleapis.com", "GET", "/oauth2/v2/userinfo", 200),
    ("cloudcode-pa.googleapis.com", "POST", "/v1internal:loadCodeAssist", 200),
    ("platform.claude.com", "POST", "/v1/oauth/token", 200),
    ("api.anthropic.com", "GET", "/api/oauth/profile", 404),
    ("api.github.com", "GET", "/copilot_internal/team_customizations", 404),
    ("telemetry.individual.githubcopilot.com", "POST", "/telemetry", 404),
    ("ab.chatgpt.com", "POST", "/otlp/v1/metrics", 404),
])
def test_the_side_calls_of_the_login_hosts_are_answered(host, method, path, status):
    assert stand_ins.answer(host, method, path, b"", {}).status == status


@pytest.mark.parametrize("host", ["example.com", "api.openai.com", "generativelanguage.googleapis.com",
                                  "githubcopilot.com.example.net", "statsig.anthropic.com"])
def test_any_other_host_is_no_side_call(host):
    assert stand_ins.answer(host, "GET", "/", b"", {}) is None


@pytest.mark.parametrize(("host", "path", "served"), [
    ("chatgpt.com", "/backend-api/codex/responses", True),
    ("chatgpt.com", "/backend-api/codex/models?client_version=0.169.0", False),
    ("chatgpt.com", "/backend-api/codex/analytics-events/events", False),
    ("cloudcode-pa.googleapis.com", "/v1internal:streamGenerateContent?alt=sse", True),
    ("cloudcode-pa.googleapis.com", "/v1internal:loadCodeAssist", False),
    ("api.anthropic.com", "/v1/messages?beta=true", True),
    ("api.anthropic.com", "/api/oauth/profile", False),
    ("api.individual.githubcopilot.com", "/responses", True),
    ("api.business.githubcopilot.com", "/v1/messages", True),
    ("api.individual.githubcopilot.com", "/mcp/readonly", False),
    ("api.github.com", "/copilot_internal/user", False),
])
def test_the_stand_in_addon_knows_the_generation_paths_from_the_side_calls(host, path, served):
    assert generation(host, path) is served
