"""The four login CLIs, real, against the fake vendor's dialects: Codex with a ChatGPT login, Claude Code with a
Pro/Max login, Gemini CLI on Code Assist, the Copilot CLI with a GitHub token.

Each runs with fake credentials in a temporary home (tests/support/logins.py) through a real mitmdump with Rotator
and the stand-in addon (tests/support/logins_addon.py), which answers the CLIs' side calls, refuses every other
host, and here forwards the login hosts' generation paths to the fake vendor: Rotator serves none of them yet, so
these tests document the dialects and the CLIs' own behaviour (a normal turn, each plan's exhaustion answer) that
Rotator's login providers will build on. Nothing leaves 127.0.0.1.

The CLIs are installed by scripts/setup-agents and scripts/setup-codex (CI runs them); without npm or its
registry these tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from tests.support import login_dialects as ld
from tests.support import logins, stand_ins
from tests.support.fake_vendor import TEXT, Fault
from tests.support.raw_http import through
from tests.support.witness_addon import witnessed

pytestmark = pytest.mark.e2e

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture(scope="session")
def codex():
    return logins.need("codex")


@pytest.fixture(scope="session")
def claude():
    return logins.need("claude")


@pytest.fixture(scope="session")
def gemini():
    return logins.need("gemini")


@pytest.fixture(scope="session")
def copilot():
    return logins.need("copilot")


@pytest.fixture
def proxy(rotator, fake_vendor):
    """Rotator and the stand-ins, the stand-ins forwarding the login hosts' generation paths to the fake vendor."""
    return rotator(logins.DIRECT, apply_env=False, **logins.proxy_options(fake_vendor, forward=True))


def refused(proxy) -> list[str]:
    return [call for call in logins.side_calls(proxy) if call.startswith("refused")]


def answered(proxy, host_path: str) -> list[str]:
    return [call for call in logins.side_calls(proxy) if f" {host_path}" in call]


# --- Codex with a ChatGPT login


def test_codex_on_chatgpt_prints_the_answer_of_the_chatgpt_backend(codex, proxy, fake_vendor, tmp_path):
    done = logins.run(logins.codex_chatgpt(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    upgrade, post = [r for r in fake_vendor.requests if r.dialect == "chatgpt"]
    assert (upgrade.method, upgrade.status) == ("GET", 426)  # the WebSocket first; Codex then uses HTTPS
    assert upgrade.headers["openai-beta"].startswith("responses_websockets=")
    assert (post.method, post.status, post.outcome) == ("POST", 200, "complete")
    assert post.headers["chatgpt-account-id"] == stand_ins.CHATGPT_ACCOUNT
    assert post.headers["content-encoding"] == "zstd" and post.raw_body.startswith(ZSTD_MAGIC)
    assert (post.body["store"], post.body["stream"]) == (False, True)
    assert "tools" not in post.body and "instructions" not in post.body
    assert post.body["input"][0]["type"] == "additional_tools" and "exec" in ld.declared_tools(post.body)
    assert {i.get("role") for i in post.body["input"]} == {"developer", "user"}
    assert answered(proxy, "chatgpt.com/backend-api/wham/accounts/check")  # (mandatory: lists the account)
    assert not refused(proxy)


def test_codex_on_chatgpt_stops_at_its_usage_limit(codex, proxy, fake_vendor, tmp_path):
    fake_vendor.script(ld.exhausted(ld.CHATGPT, resets_in=3600))

    done = logins.run(logins.codex_chatgpt(tmp_path, proxy))

    assert done.returncode == 1
    assert "You’ve hit your usage limit" in done.stderr and "try again at" in done.stderr
    assert [r.status for r in fake_vendor.calls()] == [429]  # asked once: no retry


def test_codex_on_chatgpt_asks_again_after_an_error_inside_a_200_stream(codex, proxy, fake_vendor, tmp_path):
    fake_vendor.script(Fault.error_after(deltas=2))

    done = logins.run(logins.codex_chatgpt(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    assert [(r.status, r.outcome) for r in fake_vendor.calls()] == [(200, "error-event"), (200, "complete")]


def test_codex_refreshes_an_expired_chatgpt_login_at_the_stand_in(codex, proxy, fake_vendor, tmp_path):
    login = logins.codex_chatgpt(tmp_path, proxy, expires_in=-60)
    expired = json.loads(login.files["auth"].read_text())["tokens"]["access_token"]

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert answered(proxy, "auth.openai.com/oauth/token")
    [post] = fake_vendor.calls()
    assert post.credential != expired
    assert json.loads(login.files["auth"].read_text())["tokens"]["access_token"] == post.credential


# --- Claude Code with a Pro/Max login


def test_claude_code_with_an_oauth_login_prints_the_answer(claude, rotator, fake_vendor, tmp_path):
    witness = tmp_path / "witness"
    proxy = rotator(logins.DIRECT, apply_env=False, fresh=True,
                    **logins.proxy_options(fake_vendor, forward=True, witness=witness))

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [call] = fake_vendor.calls()
    assert (call.dialect, call.path, call.query) == ("claude_login", "/v1/messages", "beta=true")
    assert call.credential == logins.CLAUDE_TOKEN and call.credential_source == "authorization"
    assert "oauth-2025-04-20" in call.headers["anthropic-beta"].split(",")
    assert re.match(r"x-anthropic-billing-header: cc_version=[^;]+; cc_entrypoint=sdk-cli; cch=\w+;",
                    call.body["system"][0]["text"])
    [(sent, body)] = [(line, body) for line, body in witnessed(witness) if line["host"] == "api.anthropic.com"]
    assert sent["path"] == "/v1/messages?beta=true"
    assert call.raw_body == body  # what Claude Code sent, byte for byte (the billing line hashes it)
    assert not refused(proxy)


def test_claude_code_stops_at_its_session_limit(claude, proxy, fake_vendor, tmp_path):
    fake_vendor.script(ld.exhausted(ld.CLAUDE_LOGIN, resets_in=3600))

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 1
    assert "You've hit your 5-hour limit · resets" in done.stdout + done.stderr  # (the window the 429 names)
    assert [r.status for r in fake_vendor.calls()] == [429]


def test_claude_code_refreshes_a_stored_login_at_the_stand_in(claude, proxy, fake_vendor, tmp_path):
    login = logins.claude_login(tmp_path, proxy, stored_expires_in=-60)

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert answered(proxy, "platform.claude.com/v1/oauth/token")
    [call] = fake_vendor.calls()
    assert call.credential.startswith("sk-ant-oat01-") and call.credential != logins.CLAUDE_TOKEN
    stored = json.loads(login.files["credentials"].read_text())["claudeAiOauth"]
    assert stored["accessToken"] == call.credential and stored["expiresAt"] > time.time() * 1000
    assert not refused(proxy)


# --- Gemini CLI on Code Assist


def test_gemini_cli_on_code_assist_prints_the_answer_of_the_envelope(gemini, proxy, fake_vendor, tmp_path):
    done = logins.run(logins.gemini_code_assist(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [call] = fake_vendor.calls()
    assert (call.dialect, call.path, call.query) == ("code_assist", "/v1internal:streamGenerateContent", "alt=sse")
    assert call.credential == logins.GEMINI_TOKEN
    assert set(call.body) == {"model", "project", "user_prompt_id", "request"}
    assert (call.body["model"], call.body["project"]) == ("gemini-2.5-flash", stand_ins.CODE_ASSIST_PROJECT)
    assert logins.PROMPT in json.dumps(call.body["request"]["contents"][-1])
    assert answered(proxy, "cloudcode-pa.googleapis.com/v1internal:loadCodeAssist")
    assert not refused(proxy)


def test_gemini_cli_on_code_assist_would_sleep_out_a_long_retry_delay(gemini, proxy, fake_vendor, tmp_path):
    """The quota answer whose message says "exhausted your capacity" (retried silently, after the server's delay)
    and whose RetryInfo says 2 hours: the CLI waits the whole delay. Not waited out here."""
    fake_vendor.script(ld.exhausted(ld.CODE_ASSIST, resets_in=7200))
    running = logins.start(logins.gemini_code_assist(tmp_path, proxy))
    try:
        [call] = fake_vendor.wait_for(1, timeout=60)
        assert call.status == 429 and "7200s" in call.sent.decode()
        time.sleep(3)
        still_waiting = running.poll() is None
    finally:
        os.killpg(running.pid, signal.SIGTERM)
        _, stderr = running.communicate(timeout=30)

    assert still_waiting, stderr[-3000:]
    delay = re.search(r"Retrying after (\d+)ms", stderr)
    assert delay and int(delay.group(1)) >= 7200 * 1000, stderr[-3000:]
    assert len(fake_vendor.calls()) == 1


def test_gemini_cli_on_code_assist_stops_at_a_terminal_quota_error(gemini, proxy, fake_vendor, tmp_path):
    fake_vendor.script(ld.exhausted(ld.CODE_ASSIST, resets_in=7200, message="Individual quota reached. Resets in 2h."))

    done = logins.run(logins.gemini_code_assist(tmp_path, proxy))

    assert done.returncode == 1
    assert "TerminalQuotaError: Individual quota reached" in done.stderr
    assert [r.status for r in fake_vendor.calls()] == [429]


def test_gemini_cli_refreshes_a_stored_login_at_the_stand_ins(gemini, proxy, fake_vendor, tmp_path):
    done = logins.run(logins.gemini_code_assist(tmp_path, proxy, stored_expires_in=-60))

    assert done.returncode == 0, done.stderr[-3000:]
    assert answered(proxy, "oauth2.googleapis.com/token") and answered(proxy, "oauth2.googleapis.com/tokeninfo")
    [call] = fake_vendor.calls()
    assert call.credential.startswith("ya29.fake-") and call.credential != "ya29.fake-stored-token"
    assert not refused(proxy)


# --- Copilot CLI


@pytest.mark.parametrize(("model", "path", "protocol"), [
    (None, "/responses", "responses"),
    ("claude-sonnet-4.5", "/v1/messages", "anthropic"),
    ("gemini-3.7-flash", "/chat/completions", "chat"),
])
def test_copilot_cli_prints_the_answer_of_its_api_host(copilot, proxy, fake_vendor, tmp_path, model, path, protocol):
    login = logins.copilot(tmp_path, proxy)
    login.command += ["--model", model] if model else []

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    models, call = fake_vendor.requests
    assert (models.method, models.path, models.dialect) == ("GET", "/models", "copilot")
    assert (call.path, call.protocol, call.dialect) == (path, protocol, "copilot")
    assert call.headers["host"] == "api.individual.githubcopilot.com"
    assert call.credential == logins.COPILOT_TOKEN
    assert call.headers["copilot-integration-id"] == "copilot-developer-cli"
    assert answered(proxy, "api.github.com/copilot_internal/user")
    assert not refused(proxy)


def test_copilot_cli_calls_the_api_host_its_plan_names(copilot, rotator, fake_vendor, tmp_path):
    host = "api.business.githubcopilot.com"
    proxy = rotator(logins.DIRECT, apply_env=False,
                    **logins.proxy_options(fake_vendor, forward=True, copilot_api=f"https://{host}"))

    done = logins.run(logins.copilot(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert {r.headers["host"] for r in fake_vendor.requests} == {host}


def test_copilot_cli_stops_when_its_plan_has_no_quota(copilot, proxy, fake_vendor, tmp_path):
    fake_vendor.script(ld.exhausted(ld.COPILOT))

    done = logins.run(logins.copilot(tmp_path, proxy))

    assert done.returncode == 1
    assert "You have no quota" in done.stderr
    assert [r.status for r in fake_vendor.calls()] == [402]


# --- the stand-ins keep everything local


def test_the_stand_in_addon_refuses_every_other_host_and_leaves_rotators_alone(proxy, fake_vendor):
    with through(proxy) as client:
        other = client.get("https://example.com/")
        check = client.get("https://chatgpt.com/backend-api/wham/accounts/check")
        served = client.post("https://api.openai.com/v1/chat/completions",
                             headers={"authorization": "Bearer sk-client"},
                             json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})

    assert other.status_code == 403
    assert check.json()["accounts"][0]["id"] == stand_ins.CHATGPT_ACCOUNT
    assert served.status_code == 200 and fake_vendor.calls()[0].credential.startswith("sk-pool-")  # Rotator's
    assert logins.side_calls(proxy) == [
        "refused GET example.com/ -> 403",
        "stand-in GET chatgpt.com/backend-api/wham/accounts/check -> 200",
    ]


def test_without_forwarding_a_generation_path_rotator_does_not_take_is_refused(rotator, fake_vendor):
    proxy = rotator(logins.DIRECT, apply_env=False, **logins.proxy_options(fake_vendor))

    with through(proxy) as client:
        answer = client.post("https://chatgpt.com/backend-api/codex/responses", json={"model": "m"})

    assert answer.status_code == 403
    assert fake_vendor.requests == []
    assert logins.side_calls(proxy) == [
        "refused (a generation path Rotator did not take) POST chatgpt.com/backend-api/codex/responses -> 403"]
