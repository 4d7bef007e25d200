"""The real Codex CLI logged in with ChatGPT (a fake `auth.json`), served by Rotator's `chatgpt` provider through a
real mitmdump, against the fake vendor (its `chatgpt` dialect: `store: false` and `stream: true` required, zstd
bodies, the `x-codex-*` windows and `codex.rate_limits` event, `response.failed` inside a 200, the 429
`usage_limit_reached`). The openai provider keeps its key pool throughout: the login is never replaced by a pooled
key, and a pooled key serves only a route's next target.

The witness addon, loaded before Rotator, records each body as Codex sent it; the stand-in addon answers Codex's side
calls (`wham/accounts/check`, the token refresh) and sends its other `/backend-api/codex/` calls (the model list,
analytics) to the fake vendor as they came; every other host is refused, so nothing leaves 127.0.0.1
(tests/support/logins.py).
"""

from __future__ import annotations

import json
import shutil

import pytest
import zstandard

from tests.support import login_dialects as ld
from tests.support import logins, stand_ins
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.harness import POOL_KEYS
from tests.support.raw_http import through
from tests.support.witness_addon import witnessed

pytestmark = pytest.mark.e2e

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GENERATION = "/backend-api/codex/responses"
FALLBACK = {"routes": [{"from": "chatgpt", "targets": ["chatgpt", "openai"]}]}


@pytest.fixture(scope="session")
def codex():
    return logins.need("codex")



def token_of(login: logins.Login) -> str:
    return json.loads(login.files["auth"].read_text())["tokens"]["access_token"]


def sent_bodies(tmp_path) -> list[bytes]:
    """The generation bodies Codex sent, in order, as the witness recorded them before Rotator."""
    return [body for line, body in witnessed(tmp_path / "witness")
            if line["host"] == "chatgpt.com" and line["path"] == GENERATION]


def flows_of(proxy, tmp_path) -> list:
    proxy.proc.stop()
    return [f for f in read_flows(tmp_path / "flows") if f.request.pretty_host == "chatgpt.com"
            and f.request.path == GENERATION]


def generation_flows(proxy, tmp_path) -> list:
    return [f for f in flows_of(proxy, tmp_path) if f.request.method == "POST"]



def zstd(data: bytes) -> dict:
    return json.loads(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def test_a_turn_is_served_on_the_login_with_its_windows_usage_and_view(codex, rotator, fake_vendor, tmp_path,
                                                                        llm_view):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, witness=True)
    login = logins.codex_chatgpt(tmp_path, proxy)

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [call] = fake_vendor.calls()
    assert (call.dialect, call.path, call.credential) == ("chatgpt", GENERATION, token_of(login))  # its own login
    assert call.headers["chatgpt-account-id"] == stand_ins.CHATGPT_ACCOUNT
    assert call.headers["content-encoding"] == "zstd" and call.raw_body == sent_bodies(tmp_path)[0]  # as it came
    assert not [r for r in fake_vendor.requests if r.protocol == "chatgpt-websocket"]  # Rotator answered the upgrade
    logins.no_stray_calls(proxy)
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    [provider] = [p for p in status["providers"] if p["name"] == "chatgpt"]
    [seen] = provider["logins"]
    assert seen["requests"] == 1 and seen["tokens"] > 0 and token_of(login) not in json.dumps(status)
    assert {w["name"]: w["used"] for w in seen["windows"]} == {"5h": 0.12, "7d": 0.3}
    metrics = through(proxy).get("http://rotator.status/metrics").text
    assert f'rotator_login_window_used_ratio{{login="{seen["login"]}",provider="chatgpt",window="5h"}} 0.12' in metrics
    upgrade, post = flows_of(proxy, tmp_path)
    assert (upgrade.request.method, upgrade.response.status_code) == ("GET", 426)
    assert [n["kind"] for n in upgrade.metadata["rotator"]["events"]] == ["downgraded"]
    record = post.metadata["rotator"]
    assert (record["provider"], record["protocol"], record["key"]) == ("chatgpt", "openai_responses", None)
    assert record["covered"] == "plan" and record["cost"] is None and record["usage"]["output_tokens"] > 0
    windows = {w["name"]: w for w in record["login"]["windows"]}
    assert windows["5h"]["used"] == 0.12 and windows["7d"]["used"] == 0.3 and windows["5h"]["resets_at"]
    assert logins.PROMPT in llm_view_of(post.request, post)  # the conversation read from the zstd body
    assert token_of(login).encode() not in (tmp_path / "flows").read_bytes()
    assert token_of(login) not in proxy.full_log


def llm_view_of(message, flow) -> str:
    from tests.support.views import shown
    return shown(flow, message)


def test_the_hosts_other_paths_pass_as_they_came(codex, rotator, fake_vendor, tmp_path):
    """Codex's model list and analytics go on as Codex sent them (its login in them, not masked, not served)."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, witness=True)
    login = logins.codex_chatgpt(tmp_path, proxy)

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    others = [r for r in fake_vendor.requests if r.protocol == ld.CHATGPT_OTHER]
    assert {r.path for r in others} >= {"/backend-api/codex/models"}
    assert {r.credential for r in others} == {token_of(login)}
    sent = [body for line, body in witnessed(tmp_path / "witness") if line["host"] == "chatgpt.com"
            and line["path"].startswith("/backend-api/codex/") and not line["path"].startswith(GENERATION)]
    assert sorted(r.raw_body for r in others if r.raw_body) == sorted(sent)  # byte for byte
    proxy.proc.stop()
    flows = [f for f in read_flows(tmp_path / "flows") if f.request.path.startswith("/backend-api/codex/")
             and not f.request.path.startswith(GENERATION)]
    assert flows and not [f for f in flows if "rotator" in f.metadata]  # not Rotator's: mitmproxy forwarded them


def test_a_stalled_first_token_is_asked_again_with_the_same_bytes_on_the_same_login(codex, rotator, fake_vendor,
                                                                                   tmp_path):
    """Stalled after the backend's first events (`response.created`, `codex.rate_limits`): no token yet."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, streaming={"first_token_timeout": 2}, witness=True)
    fake_vendor.script(Fault.stall_after(2, seconds=30))
    login = logins.codex_chatgpt(tmp_path, proxy)

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    first, second = fake_vendor.calls()
    assert first.credential == second.credential == token_of(login)
    assert first.raw_body == second.raw_body == sent_bodies(tmp_path)[0]
    [flow] = generation_flows(proxy, tmp_path)
    assert [n["kind"] for n in flow.metadata["rotator"]["events"]] == ["retry"]


def test_heartbeats_keep_codex_waiting_for_a_slow_first_token(codex, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, streaming={"heartbeat_interval": 0.5}, witness=True)
    fake_vendor.script(Fault.stall_after(2, seconds=3))

    done = logins.run(logins.codex_chatgpt(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    assert len(fake_vendor.calls()) == 1
    [flow] = generation_flows(proxy, tmp_path)
    assert flow.response.content.startswith(b": keepalive\n")  # (the events held back came after them)


def test_an_error_inside_the_200_stream_is_asked_again_on_the_same_login(codex, rotator, fake_vendor, tmp_path):
    """`response.failed` (server_error) among the first events is the attempt's failure: Codex gets one answer,
    from one request of its own."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, witness=True)
    fake_vendor.script(Fault.error_after(2))
    login = logins.codex_chatgpt(tmp_path, proxy)

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    assert [(r.status, r.outcome) for r in fake_vendor.calls()] == [(200, "error-event"), (200, "complete")]
    assert len(sent_bodies(tmp_path)) == 1
    [flow] = generation_flows(proxy, tmp_path)
    [retry] = flow.metadata["rotator"]["events"]
    assert retry["kind"] == "retry" and "an error inside the 200 stream" in retry["reason"]


def test_a_cut_answer_is_continued_on_the_login_as_the_backend_takes_it(codex, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, witness=True)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), Fault.continuing())
    login = logins.codex_chatgpt(tmp_path, proxy)

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    cut, rest = fake_vendor.calls()
    assert cut.raw_body == sent_bodies(tmp_path)[0] and cut.outcome == "cut-reset"
    assert (rest.credential, rest.continued, rest.status) == (token_of(login), "instruction", 200)
    assert rest.headers["content-encoding"] == "zstd" and rest.raw_body.startswith(ZSTD_MAGIC)
    asked = zstd(rest.raw_body)  # compressed again, as Codex sends: and as the backend takes it
    assert (asked["store"], asked["stream"]) == (False, True) and "max_output_tokens" not in asked
    assert asked["input"][0]["type"] == "additional_tools"
    [flow] = generation_flows(proxy, tmp_path)
    [seam] = flow.metadata["rotator"]["resume"]
    assert (seam["outcome"], seam["method"]) == ("spliced", "instruction")


def test_a_cut_answer_not_continued_ends_honestly(codex, rotator, fake_vendor, tmp_path):
    """`response.incomplete` for running out of output: Codex says the answer was cut, and does not take a part
    of it for the whole."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, resume={"mode": "off"}, witness=True)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))

    done = logins.run(logins.codex_chatgpt(tmp_path, proxy))

    assert done.returncode == 1
    assert "Incomplete response returned, reason: max_output_tokens" in done.stderr
    [call] = fake_vendor.calls()
    assert call.outcome == "cut-reset"
    [cut] = generation_flows(proxy, tmp_path)
    assert [n["kind"] for n in cut.metadata["rotator"]["events"]] == ["repaired"]
    shown = cut.response.content.replace(b" ", b"")
    assert b'"type":"response.incomplete"' in shown and b'"reason":"max_output_tokens"' in shown


def test_a_cut_answer_ended_as_an_error_is_asked_again_by_codex(codex, rotator, fake_vendor, tmp_path):
    """With `on_truncation: error` the cut ends as a failed response, which Codex asks again itself."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, resume={"mode": "off"},
                             streaming={"on_truncation": "error"}, witness=True)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))

    done = logins.run(logins.codex_chatgpt(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    assert [c.outcome for c in fake_vendor.calls()] == ["cut-reset", "complete"]


def test_an_exhausted_plan_goes_on_with_the_openai_pool_and_is_not_asked_again(codex, rotator, fake_vendor,
                                                                                tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, FALLBACK, witness=True)
    login = logins.codex_chatgpt(tmp_path, proxy)
    token = token_of(login)
    fake_vendor.script(ld.exhausted(ld.CHATGPT, resets_in=3600), key=token)

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    spent, served = fake_vendor.calls()
    assert (spent.credential, spent.status, spent.dialect) == (token, 429, "chatgpt")
    assert served.credential in POOL_KEYS["openai"] and (served.path, served.status) == ("/v1/responses", 200)
    assert served.dialect is None and "content-encoding" not in served.headers  # the public API, plain JSON
    assert not {"chatgpt-account-id", "x-openai-fedramp"} & served.headers.keys()
    assert "client_metadata" not in served.body and (served.body["store"], served.body["stream"]) == (False, True)
    assert not [i for i in served.body["input"] if i.get("type") == "additional_tools"]
    assert "exec" in ld.declared_tools(served.body) and served.body["tools"]
    assert [i for i in served.body["input"] if i.get("role") == "developer"]  # (the public API takes them)

    (tmp_path / "again").mkdir()
    again = logins.codex_chatgpt(tmp_path / "again", proxy)
    shutil.copy(login.files["auth"], again.files["auth"])  # the same login's next turn: the plan is not asked
    done = logins.run(again)

    assert done.returncode == 0, done.stderr[-3000:]
    assert [c.credential in POOL_KEYS["openai"] for c in fake_vendor.calls()] == [False, True, True]
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    [seen] = next(p for p in status["providers"] if p["name"] == "chatgpt")["logins"]
    assert [x["why"] for x in seen["exhausted"]] == ["the plan's 5h window is used up"]  # (its 429's windows)
    assert "exhausted until" in seen["text"]
    logins.no_stray_calls(proxy)
    first, second = generation_flows(proxy, tmp_path)
    logins.carried_on(first, second, "openai")
    assert "covered" not in first.metadata["rotator"]


def test_an_exhausted_plan_without_a_route_gives_codex_its_own_answer(codex, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, witness=True)
    fake_vendor.script(ld.exhausted(ld.CHATGPT, resets_in=3600))
    login = logins.codex_chatgpt(tmp_path, proxy)

    done = logins.run(login)

    assert done.returncode == 1
    assert "You’ve hit your usage limit" in done.stderr and "try again at" in done.stderr
    assert [(c.credential, c.status) for c in fake_vendor.calls()] == [(token_of(login), 429)]
