"""The real Gemini CLI on a Code Assist login (`GOOGLE_GENAI_USE_GCA` with an access token), served by Rotator's
`code_assist` provider through a real mitmdump, against the fake vendor (its `code_assist` dialect: Gemini in the
Code Assist envelope, the 429 of a spent quota with its RetryInfo). Code Assist's own methods (`loadCodeAssist`,
...) pass untouched, to the stand-ins (tests/support/logins_addon.py); the generation methods are Rotator's.
Nothing leaves 127.0.0.1 (tests/support/logins.py).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.support import login_dialects as ld
from tests.support import logins, stand_ins
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.raw_http import through

pytestmark = pytest.mark.e2e

HOST = "cloudcode-pa.googleapis.com"
GENERATION = ("/v1internal:streamGenerateContent", "/v1internal:generateContent")
FALLBACK = {"routes": [{"from": "code_assist", "targets": ["code_assist", "gemini"]}]}


@pytest.fixture(scope="session")
def gemini():
    return logins.need("gemini")



def generation_flows(proxy, tmp_path) -> list:
    proxy.proc.stop()
    return [f for f in read_flows(tmp_path / "flows") if f.request.pretty_host == HOST
            and f.request.path.partition("?")[0] in GENERATION]



def test_a_turn_is_served_on_the_login_in_its_envelope_with_usage(gemini, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)

    done = logins.run(logins.gemini_code_assist(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [call] = fake_vendor.calls()
    assert (call.dialect, call.path, call.query) == ("code_assist", "/v1internal:streamGenerateContent", "alt=sse")
    assert call.credential == logins.GEMINI_TOKEN
    assert set(call.body) == {"model", "project", "user_prompt_id", "request"}
    assert call.body["project"] == stand_ins.CODE_ASSIST_PROJECT
    logins.no_stray_calls(proxy)
    [flow] = generation_flows(proxy, tmp_path)
    record = flow.metadata["rotator"]
    assert (record["provider"], record["covered"], record["key"]) == ("code_assist", "plan", None)
    assert record["usage"]["output_tokens"] > 0
    assert b'"response"' in flow.response.content and TEXT.split()[0].encode() in flow.response.content
    assert logins.GEMINI_TOKEN.encode() not in (tmp_path / "flows").read_bytes()
    assert logins.GEMINI_TOKEN not in proxy.full_log


def test_the_hosts_other_methods_pass_as_they_came(gemini, rotator, fake_vendor, tmp_path):
    """Code Assist's own methods go on as the CLI sent them (not Rotator's: no flow of its own); countTokens goes
    to the login as it came."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)

    done = logins.run(logins.gemini_code_assist(tmp_path, proxy))
    with through(proxy) as client:
        counted = client.post(f"https://{HOST}/v1internal:countTokens", headers={"authorization": "Bearer ya29.x"},
                              json={"request": {"model": "models/gemini-2.5-flash", "contents": []}})

    assert done.returncode == 0, done.stderr[-3000:]
    assert [c for c in logins.side_calls(proxy) if f"{HOST}/v1internal:loadCodeAssist -> 200" in c]
    assert counted.status_code == 200 and "totalTokens" in counted.json()
    count = fake_vendor.requests[-1]
    assert (count.path, count.credential) == ("/v1internal:countTokens", "ya29.x")
    logins.no_stray_calls(proxy)
    proxy.proc.stop()
    flows = read_flows(tmp_path / "flows")
    side = [f for f in flows if f.request.pretty_host == HOST and "loadCodeAssist" in f.request.path]
    assert side and not [f for f in side if "rotator" in f.metadata]  # mitmproxy forwarded them, as they came
    [counting] = [f for f in flows if f.request.path == "/v1internal:countTokens"]
    assert counting.metadata["rotator"]["provider"] == "code_assist"


def test_a_stalled_first_token_is_asked_again_with_the_same_bytes_on_the_same_login(gemini, rotator, fake_vendor,
                                                                                     tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, streaming={"first_token_timeout": 2})
    fake_vendor.script(Fault.stall_before_headers(30))

    done = logins.run(logins.gemini_code_assist(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    first, second = fake_vendor.calls()
    assert first.credential == second.credential == logins.GEMINI_TOKEN and first.raw_body == second.raw_body
    [flow] = generation_flows(proxy, tmp_path)
    assert [n["kind"] for n in flow.metadata["rotator"]["events"]] == ["retry"]


def test_a_cut_answer_is_continued_on_the_login_in_its_envelope(gemini, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), Fault.continuing())

    done = logins.run(logins.gemini_code_assist(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1
    cut, rest = fake_vendor.calls()
    assert (rest.credential, rest.path, rest.status) == (logins.GEMINI_TOKEN, cut.path, 200)
    assert rest.continued is not None
    assert {k: v for k, v in rest.body.items() if k != "request"} == {k: v for k, v in cut.body.items()
                                                                      if k != "request"}
    assert rest.body["request"]["contents"] != cut.body["request"]["contents"]  # (the continuation's own)
    [flow] = generation_flows(proxy, tmp_path)
    assert [seam["outcome"] for seam in flow.metadata["rotator"]["resume"]] == ["spliced"]


def test_a_cut_answer_not_continued_ends_honestly_in_its_envelope(gemini, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, resume={"mode": "off"})
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))

    logins.run(logins.gemini_code_assist(tmp_path, proxy))

    [call] = fake_vendor.calls()[:1]
    assert call.outcome == "cut-reset"
    cut = generation_flows(proxy, tmp_path)[0]
    assert [n["kind"] for n in cut.metadata["rotator"]["events"]] == ["repaired"]
    last = [line for line in cut.response.content.splitlines() if line.startswith(b"data:")][-1]
    ending = json.loads(last[5:])
    assert ending["response"]["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_an_exhausted_plan_goes_on_with_the_gemini_pool_and_is_not_asked_again(gemini, rotator, fake_vendor,
                                                                                tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, FALLBACK)
    fake_vendor.script(ld.exhausted(ld.CODE_ASSIST, resets_in=7200), key=logins.GEMINI_TOKEN)

    done = logins.run(logins.gemini_code_assist(tmp_path, proxy))

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    spent, served = fake_vendor.calls()
    assert (spent.credential, spent.status, spent.dialect) == (logins.GEMINI_TOKEN, 429, "code_assist")
    assert served.credential.startswith("g-pool-") and served.status == 200 and served.dialect is None
    assert served.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and served.query == "alt=sse"
    assert "contents" in served.body and "project" not in served.body and "session_id" not in served.body
    assert "authorization" not in served.headers  # (never its login)

    (tmp_path / "again").mkdir()
    again = logins.run(logins.gemini_code_assist(tmp_path / "again", proxy))

    assert again.returncode == 0, again.stderr[-3000:]
    assert [c.credential[:7] for c in fake_vendor.calls()] == [logins.GEMINI_TOKEN[:7], "g-pool-", "g-pool-"]
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    [login] = next(p for p in status["providers"] if p["name"] == "code_assist")["logins"]
    assert login["login"] != logins.GEMINI_TOKEN and logins.GEMINI_TOKEN not in json.dumps(status)
    assert login["exhausted"][0]["model"] == "gemini-2.5-flash"
    assert "exhausted for gemini-2.5-flash until" in login["text"]
    [window] = login["windows"]
    assert (window["name"], window["status"], window["model"]) == ("gemini-2.5-flash quota", "exhausted",
                                                                   "gemini-2.5-flash")
    metrics = through(proxy).get("http://rotator.status/metrics").text
    assert 'rotator_login_window_used_ratio{login="' in metrics and 'provider="code_assist"' in metrics
    logins.no_stray_calls(proxy)
    first, second = generation_flows(proxy, tmp_path)
    logins.carried_on(first, second, "gemini")
    assert b'"response"' in first.response.content


def test_an_exhausted_plan_without_a_route_ends_the_turn_without_sleeping_out_the_delay(gemini, rotator, fake_vendor,
                                                                                         tmp_path):
    """The quota answer whose message says "exhausted your capacity" and whose RetryInfo says 2 hours, which the CLI
    would sleep out (tests/e2e/test_logins_direct.py): given it with the delay bounded, it ends the turn with the
    vendor's message."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)
    fake_vendor.script(*[ld.exhausted(ld.CODE_ASSIST, resets_in=7200)] * 12)
    started = time.monotonic()

    done = logins.run(logins.gemini_code_assist(tmp_path, proxy), timeout=90)

    assert done.returncode != 0
    assert time.monotonic() - started < 90
    assert "You have exhausted your capacity on this model" in done.stderr
    calls = fake_vendor.calls()
    assert calls and {(c.credential, c.status) for c in calls} == {(logins.GEMINI_TOKEN, 429)}
    assert all("7200s" in c.sent.decode() for c in calls)  # (the vendor's own; the CLI got it bounded)
