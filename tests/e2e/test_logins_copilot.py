"""The real Copilot CLI with a GitHub login (`COPILOT_GITHUB_TOKEN`), served by Rotator's `copilot` provider through a
real mitmdump, against the fake vendor (its `copilot` dialect: the quota snapshot headers, the 402 of a spent plan).
The CLI learns its API host from api.github.com/copilot_internal/user (a stand-in) and lists the models at
`{api}/models`, which Rotator leaves to mitmproxy as it came (the stand-in addon sends it to the fake vendor); the
generation paths are Rotator's. Nothing leaves 127.0.0.1 (tests/support/logins.py).
"""

from __future__ import annotations

import json

import pytest

from tests.support import login_dialects as ld
from tests.support import logins
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.raw_http import through

pytestmark = pytest.mark.e2e

API_HOST = "api.individual.githubcopilot.com"
FALLBACK = {"routes": [{"from": "copilot", "targets": ["copilot", "openai"]}]}


@pytest.fixture(scope="session")
def copilot():
    return logins.need("copilot")



def generation_flows(proxy, tmp_path) -> list:
    proxy.proc.stop()
    return [f for f in read_flows(tmp_path / "flows") if f.request.pretty_host == API_HOST
            and f.request.path in ("/responses", "/chat/completions", "/v1/messages")]



@pytest.mark.parametrize(("model", "path", "protocol"), [
    (None, "/responses", "responses"),
    ("claude-sonnet-4.5", "/v1/messages", "anthropic"),
    ("gemini-3.7-flash", "/chat/completions", "chat"),
])
def test_a_turn_is_served_on_the_login_in_the_protocol_its_path_names(copilot, rotator, fake_vendor, tmp_path, model,
                                                                      path, protocol):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)
    login = logins.copilot(tmp_path, proxy)
    login.command += ["--model", model] if model else []

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    models, call = fake_vendor.requests
    assert (models.path, models.credential) == ("/models", logins.COPILOT_TOKEN)  # as it came, not Rotator's
    assert (call.path, call.protocol, call.dialect, call.credential) == (path, protocol, "copilot",
                                                                         logins.COPILOT_TOKEN)
    logins.no_stray_calls(proxy)
    [flow] = generation_flows(proxy, tmp_path)
    record = flow.metadata["rotator"]
    assert (record["provider"], record["covered"], record["key"]) == ("copilot", "plan", None)
    assert record["usage"]["output_tokens"] > 0
    [premium] = [w for w in record["login"]["windows"] if w["name"] == "premium_interactions"]
    assert (premium["used"], premium["limit"], premium["remaining"]) == (0.12, 300, 264)
    assert logins.COPILOT_TOKEN.encode() not in (tmp_path / "flows").read_bytes()
    assert logins.COPILOT_TOKEN not in proxy.full_log


def test_a_stalled_first_token_is_asked_again_on_the_same_login(copilot, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, streaming={"first_token_timeout": 2})
    fake_vendor.script(Fault.stall_before_headers(30))

    done = logins.run(logins.copilot(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    first, second = fake_vendor.calls()
    assert first.credential == second.credential == logins.COPILOT_TOKEN and first.raw_body == second.raw_body
    [flow] = generation_flows(proxy, tmp_path)
    assert [n["kind"] for n in flow.metadata["rotator"]["events"]] == ["retry"]


def test_a_cut_answer_is_continued_on_the_login(copilot, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), Fault.continuing())

    done = logins.run(logins.copilot(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    cut, rest = fake_vendor.calls()
    assert rest.credential == logins.COPILOT_TOKEN and rest.continued is not None
    [flow] = generation_flows(proxy, tmp_path)
    assert [seam["outcome"] for seam in flow.metadata["rotator"]["resume"]] == ["spliced"]


def test_a_spent_plan_goes_on_with_the_openai_pool_and_is_not_asked_again(copilot, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, FALLBACK)
    fake_vendor.script(ld.exhausted(ld.COPILOT), key=logins.COPILOT_TOKEN)

    done = logins.run(logins.copilot(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    spent, served = fake_vendor.calls()
    assert (spent.credential, spent.status) == (logins.COPILOT_TOKEN, 402)
    assert served.credential.startswith("sk-pool-") and served.status == 200 and served.dialect is None
    assert "copilot-integration-id" in served.headers  # (its own headers, but never its login)

    (tmp_path / "again").mkdir()
    again = logins.run(logins.copilot(tmp_path / "again", proxy))

    assert again.returncode == 0, again.stderr[-3000:]
    assert [c.credential[:8] for c in fake_vendor.calls()] == [logins.COPILOT_TOKEN[:8], "sk-pool-", "sk-pool-"]
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    [login] = next(p for p in status["providers"] if p["name"] == "copilot")["logins"]
    assert login["exhausted"][0]["model"] == "gpt-5-mini" and "premium requests" in login["exhausted"][0]["why"]
    logins.no_stray_calls(proxy)


def test_a_spent_plan_without_a_route_gives_the_cli_its_own_answer(copilot, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)
    fake_vendor.script(ld.exhausted(ld.COPILOT))

    done = logins.run(logins.copilot(tmp_path, proxy))

    assert done.returncode == 1
    assert "You have no quota" in done.stderr
    assert [(c.credential, c.status) for c in fake_vendor.calls()] == [(logins.COPILOT_TOKEN, 402)]
