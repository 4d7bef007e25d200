"""The real Claude Code with a Pro/Max login (`CLAUDE_CODE_OAUTH_TOKEN`), served by Rotator's `claude_login` provider
through a real mitmdump, against the fake vendor (its `claude_login` dialect: the unified plan windows, the
exhaustion answer). The anthropic provider keeps its key pool throughout: the login is never replaced by a pooled key.

Claude Code's body is signed (its billing line hashes it): the witness addon, loaded before Rotator, records it as
Claude Code sent it, and the fake vendor must receive the same bytes. The stand-in addon answers Claude Code's side
calls and refuses every other host, so nothing leaves 127.0.0.1 (tests/support/logins.py).
"""

from __future__ import annotations

import json

import pytest

from tests.support import login_dialects as ld
from tests.support import logins
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.masks import masked
from tests.support.raw_http import through
from tests.support.witness_addon import witnessed

pytestmark = pytest.mark.e2e

POOL_KEY = "sk-ant-pool-1"
FALLBACK = {"routes": [{"from": "claude_login", "targets": ["claude_login", "anthropic"]}]}
# Configured for the login's provider and its model: none of them may touch a signed body.
REWRITES = {"providers": {"claude_login": {
    "adapters": [{"cap": {"max_tokens": 1000}}, {"drop": ["metadata"]}], "force_upstream_stream": True,
    "models": {"claude-*": {"capabilities": {"max_output_tokens": 1000, "sampling": ["temperature"],
                                             "thinking": "none", "mid_system": False}}}}}}


@pytest.fixture(scope="session")
def claude():
    return logins.need("claude")



def signed_bodies(tmp_path) -> list[bytes]:
    """The bodies Claude Code sent, in order, as the witness addon recorded them before Rotator."""
    return [body for line, body in witnessed(tmp_path / "witness") if line["host"] == "api.anthropic.com"]


def signed_body(tmp_path) -> bytes:
    [body] = signed_bodies(tmp_path)
    return body


def login_flows(proxy, tmp_path) -> list:
    proxy.proc.stop()
    return [f for f in read_flows(tmp_path / "flows") if f.request.pretty_host == "api.anthropic.com"
            and f.request.path.startswith("/v1/messages")]



def test_a_turn_is_served_on_the_login_byte_for_byte_with_its_windows_and_usage(claude, rotator, fake_vendor,
                                                                                 tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, REWRITES, witness=True)

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [call] = fake_vendor.calls()
    assert (call.dialect, call.credential, call.credential_source) == ("claude_login", logins.CLAUDE_TOKEN,
                                                                       "authorization")  # never a pooled key
    assert "oauth-2025-04-20" in call.headers["anthropic-beta"]
    assert call.raw_body == signed_body(tmp_path)  # adapters and the forced stream configured, none applied
    logins.no_stray_calls(proxy)
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    [provider] = [p for p in status["providers"] if p["name"] == "claude_login"]
    [login] = provider["logins"]
    shown = masked(logins.CLAUDE_TOKEN)  # (sk-…oken)
    assert login["login"] == shown and login["requests"] == 1 and login["tokens"] > 0
    assert {w["name"]: w["used"] for w in login["windows"]} == {"five_hour": 0.12, "seven_day": 0.3}
    metrics = through(proxy).get("http://rotator.status/metrics").text
    assert f'rotator_login_window_used_ratio{{login="{shown}",provider="claude_login",window="five_hour"}} 0.12' \
        in metrics
    [flow] = login_flows(proxy, tmp_path)
    rotator_record = flow.metadata["rotator"]
    assert rotator_record["provider"] == "claude_login" and rotator_record["key"] is None
    assert rotator_record["covered"] == "plan" and rotator_record["cost"] is None
    assert rotator_record["usage"]["output_tokens"] > 0
    windows = {w["name"]: w for w in rotator_record["login"]["windows"]}
    assert windows["five_hour"]["used"] == 0.12 and windows["five_hour"]["status"] == "allowed"
    [note] = [n for n in rotator_record["events"] if n["kind"] == "signed"]
    assert "adapters (cap, drop)" in note["detail"]
    assert flow.request.headers["authorization"] == f"Bearer {masked(logins.CLAUDE_TOKEN)}"
    assert logins.CLAUDE_TOKEN.encode() not in (tmp_path / "flows").read_bytes()
    assert logins.CLAUDE_TOKEN not in proxy.full_log


def test_a_stalled_first_token_is_asked_again_with_the_same_bytes_on_the_same_login(claude, rotator, fake_vendor,
                                                                                   tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, streaming={"first_token_timeout": 2}, witness=True)
    fake_vendor.script(Fault.stall_before_headers(30), key=logins.CLAUDE_TOKEN)

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    first, second = fake_vendor.calls()
    assert first.credential == second.credential == logins.CLAUDE_TOKEN
    assert first.raw_body == second.raw_body == signed_body(tmp_path)
    [flow] = login_flows(proxy, tmp_path)
    assert [n["kind"] for n in flow.metadata["rotator"]["events"]] == ["retry"]


def test_a_cut_answer_ends_honestly_without_a_route_its_signed_body_not_rewritten(claude, rotator, fake_vendor,
                                                                                 tmp_path):
    """No continuation (it would rewrite the signed body): the answer ends as cut short (`max_tokens`), and Claude
    Code, told so, asks again itself."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, witness=True)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    calls = fake_vendor.calls()
    assert calls[0].outcome == "cut-reset"
    assert [c.raw_body for c in calls] == signed_bodies(tmp_path)  # each as Claude Code sent it, on its login
    assert {c.credential for c in calls} == {logins.CLAUDE_TOKEN}
    flow = login_flows(proxy, tmp_path)[0]
    cut = flow.metadata["rotator"]
    assert [n["kind"] for n in cut["events"]] == ["signed", "repaired"] and "resume" not in cut
    assert "not continued" in cut["events"][0]["detail"]
    assert b'"stop_reason":"max_tokens"' in flow.response.content  # ended honestly, in Claude Code's protocol


def test_a_cut_answer_is_continued_on_the_routes_next_target(claude, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, FALLBACK, witness=True)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), key=logins.CLAUDE_TOKEN)
    fake_vendor.script(Fault.continuing(), key=POOL_KEY)

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    cut, rest = fake_vendor.calls()
    assert cut.credential == logins.CLAUDE_TOKEN and cut.raw_body == signed_body(tmp_path)
    assert (rest.credential, rest.credential_source) == (POOL_KEY, "x-api-key") and rest.continued is not None
    assert "authorization" not in rest.headers and "oauth-2025-04-20" not in rest.headers.get("anthropic-beta", "")
    logins.no_stray_calls(proxy)


def test_an_exhausted_plan_goes_on_with_the_pool_and_is_not_asked_again_until_its_reset(claude, rotator, fake_vendor,
                                                                                       tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, FALLBACK, witness=True)
    fake_vendor.script(ld.exhausted(ld.CLAUDE_LOGIN, resets_in=3600), key=logins.CLAUDE_TOKEN)

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    spent, served = fake_vendor.calls()
    assert (spent.credential, spent.status) == (logins.CLAUDE_TOKEN, 429)
    assert (served.credential, served.credential_source, served.status) == (POOL_KEY, "x-api-key", 200)
    assert "authorization" not in served.headers and "oauth-2025-04-20" not in served.headers.get("anthropic-beta", "")
    assert served.raw_body == signed_body(tmp_path)  # the billing line is only text to the API: it stays

    (tmp_path / "again").mkdir()
    again = logins.run(logins.claude_login(tmp_path / "again", proxy))  # the next turn: the plan is not asked

    assert again.returncode == 0, again.stderr[-3000:]
    assert [c.credential[:12] for c in fake_vendor.calls()] == [logins.CLAUDE_TOKEN[:12], "sk-ant-pool-", "sk-ant-pool-"]
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    [login] = next(p for p in status["providers"] if p["name"] == "claude_login")["logins"]
    assert login["exhausted"] and "five_hour" in login["exhausted"][0]["why"]
    assert "exhausted until" in login["text"]
    logins.no_stray_calls(proxy)
    first, second = login_flows(proxy, tmp_path)
    logins.carried_on(first, second, "anthropic")
    assert "covered" not in first.metadata["rotator"]


def test_an_exhausted_plan_without_a_route_gives_claude_code_its_own_answer(claude, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, witness=True)
    fake_vendor.script(ld.exhausted(ld.CLAUDE_LOGIN, resets_in=3600))

    done = logins.run(logins.claude_login(tmp_path, proxy))

    assert done.returncode == 1
    assert "You've hit your 5-hour limit · resets" in done.stdout + done.stderr  # (the window the 429 names)
    assert [(c.credential, c.status) for c in fake_vendor.calls()] == [(logins.CLAUDE_TOKEN, 429)]


def test_the_logins_other_paths_pass_as_they_came(rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, fresh=False, witness=True)
    headers = {"authorization": f"Bearer {logins.CLAUDE_TOKEN}", "anthropic-beta": "oauth-2025-04-20",
               "anthropic-version": "2023-06-01"}
    body = b'{"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}'

    with through(proxy) as client:
        counted = client.post("https://api.anthropic.com/v1/messages/count_tokens", headers=headers, content=body)

    assert counted.status_code == 200
    [call] = fake_vendor.requests
    assert (call.protocol, call.credential, call.raw_body) == ("anthropic-count_tokens", logins.CLAUDE_TOKEN, body)
    assert call.headers["anthropic-beta"] == "oauth-2025-04-20"  # the anthropic pool's key never replaced it
