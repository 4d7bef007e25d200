"""Antigravity's requests in the IDE's shape (shared/docs/antigravity.md: Code Assist's envelope with `userAgent:
"antigravity"`, `requestType: "agent"`, the IDE's User-Agent) sent with httpx through a real mitmdump, served by
Rotator's `antigravity` provider against the fake vendor's Code Assist dialect; its look-ups of its plan answered by
the stand-ins (tests/support/stand_ins.py); Codex's look-up of its reset credits, in Codex's shape, too. Nothing
leaves 127.0.0.1 (tests/support/logins.py)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support import login_dialects as ld
from tests.support import logins, stand_ins
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.raw_http import through

pytestmark = pytest.mark.e2e

SANDBOX, PROD = "daily-cloudcode-pa.sandbox.googleapis.com", "cloudcode-pa.googleapis.com"
STREAM = "/v1internal:streamGenerateContent?alt=sse"
TOKEN = "ya29.fake-antigravity-token"
IDE = {"authorization": f"Bearer {TOKEN}", "user-agent": "antigravity/1.18.3 darwin/arm64",
       "accept": "text/event-stream"}
MODEL = "claude-sonnet-4-5"


def antigravity(vendor) -> dict:
    return {"providers": {"antigravity": {"base_url": vendor.url}}}


def envelope(model: str = MODEL) -> dict:
    return {"project": stand_ins.CODE_ASSIST_PROJECT, "model": model, "userAgent": "antigravity",
            "requestType": "agent", "requestId": f"agent-{uuid.uuid4()}",
            "request": {"contents": [{"role": "user", "parts": [{"text": logins.PROMPT}]}],
                        "systemInstruction": {"role": "user", "parts": [{"text": "You are Antigravity."}]},
                        "generationConfig": {"maxOutputTokens": 256}, "sessionId": "-1234567890123456789"}}


def ask(proxy, host: str = SANDBOX, headers: dict | None = None, model: str = MODEL):
    with through(proxy) as client:
        return client.post(f"https://{host}{STREAM}", headers=headers or IDE, json=envelope(model))


def answer_text(body: bytes) -> str:
    """The text of an SSE answer in the Code Assist envelope, every event's `response` opened."""
    out = []
    for line in body.splitlines():
        if line.startswith(b"data:"):
            event = json.loads(line[5:])
            for c in event["response"].get("candidates", []):
                out += [p.get("text", "") for p in c.get("content", {}).get("parts", []) if not p.get("thought")]
    return "".join(out)


def flows_of(proxy, tmp_path, host: str = SANDBOX) -> list:
    proxy.proc.stop()
    return [f for f in read_flows(tmp_path / "flows") if f.request.pretty_host == host
            and "GenerateContent" in f.request.path]


def status_of(proxy, provider: str) -> list:
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    return next(p for p in status["providers"] if p["name"] == provider)["logins"]


def test_served_on_its_own_login_in_its_envelope(rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor))

    done = ask(proxy)

    assert done.status_code == 200 and answer_text(done.content) == TEXT
    [call] = fake_vendor.calls()
    assert (call.dialect, call.path, call.credential) == ("code_assist", "/v1internal:streamGenerateContent", TOKEN)
    assert (call.body["userAgent"], call.body["requestType"], call.body["model"]) == ("antigravity", "agent", MODEL)
    [flow] = flows_of(proxy, tmp_path)
    record = flow.metadata["rotator"]
    assert (record["provider"], record["covered"], record["key"]) == ("antigravity", "plan", None)
    assert TOKEN.encode() not in (tmp_path / "flows").read_bytes() and TOKEN not in proxy.full_log


def test_on_the_shared_host_antigravity_and_gemini_cli_are_each_served_on_their_own_provider(rotator, fake_vendor,
                                                                                            tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor))
    gemini_cli = {"authorization": f"Bearer {logins.GEMINI_TOKEN}", "user-agent": "GeminiCLI/0.20.0 (linux; x64)"}
    body = {"model": "gemini-2.5-flash", "project": "p", "user_prompt_id": "u",
            "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}}

    agent = ask(proxy, PROD, {**IDE, "user-agent": "node"})  # (told by its body alone)
    with through(proxy) as client:
        cli = client.post(f"https://{PROD}{STREAM}", headers=gemini_cli, json=body)

    assert agent.status_code == cli.status_code == 200
    first, second = flows_of(proxy, tmp_path, PROD)
    assert [first.metadata["rotator"]["provider"], second.metadata["rotator"]["provider"]] == ["antigravity",
                                                                                            "code_assist"]


def test_a_stalled_first_token_is_asked_again_on_the_same_login(rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor),
                             streaming={"first_token_timeout": 2})
    fake_vendor.script(Fault.stall_before_headers(30))

    done = ask(proxy)

    assert done.status_code == 200 and answer_text(done.content) == TEXT
    first, second = fake_vendor.calls()
    assert first.credential == second.credential == TOKEN and first.raw_body == second.raw_body
    [flow] = flows_of(proxy, tmp_path)
    assert [n["kind"] for n in flow.metadata["rotator"]["events"]] == ["retry"]


def test_a_cut_answer_is_continued_in_its_envelope(rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor))
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), Fault.continuing())

    done = ask(proxy)

    assert done.status_code == 200 and answer_text(done.content) == TEXT
    cut, rest = fake_vendor.calls()
    assert (rest.credential, rest.continued is not None) == (TOKEN, True)
    assert {k: v for k, v in rest.body.items() if k != "request"} == {k: v for k, v in cut.body.items()
                                                                      if k != "request"}
    [flow] = flows_of(proxy, tmp_path)
    assert [seam["outcome"] for seam in flow.metadata["rotator"]["resume"]] == ["spliced"]


def test_a_cut_answer_not_continued_ends_honestly_in_its_envelope(rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor), resume={"mode": "off"})
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))

    done = ask(proxy)

    last = [line for line in done.content.splitlines() if line.startswith(b"data:")][-1]
    assert json.loads(last[5:])["response"]["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_its_quota_look_ups_are_shown_as_the_plan_s_windows_and_a_used_up_model_is_not_asked(rotator, fake_vendor,
                                                                                              tmp_path):
    """The IDE reads its quota on the production host with its Electron User-Agent; Rotator keeps what it says on
    that login's entry, and a model it says is used up goes to the route's next target, the login unasked."""
    route = {"routes": [{"from": "antigravity", "targets": ["antigravity", "gemini/gemini-2.5-flash"]}]}
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor), route)
    electron = {"authorization": f"Bearer {TOKEN}", "user-agent": "Mozilla/5.0 Antigravity/1.18.3 Electron/37.3.1"}
    with through(proxy) as client:
        models = client.post(f"https://{PROD}/v1internal:fetchAvailableModels", headers=electron,
                             json={"project": stand_ins.CODE_ASSIST_PROJECT})
        summary = client.post(f"https://{PROD}/v1internal:retrieveUserQuotaSummary", headers=electron, json={})
    assert models.status_code == summary.status_code == 200

    [login] = status_of(proxy, "antigravity")
    shown = {w["name"]: w for w in login["windows"]}
    assert shown["claude-sonnet-4-5 quota"]["used"] == 0.6
    assert shown[f"{stand_ins.ANTIGRAVITY_SPENT} quota"]["status"] == "exhausted"
    assert shown["Claude 5h"]["used"] == 0.25 and "Claude weekly" in shown
    assert TOKEN not in json.dumps(login)

    done = ask(proxy, model=stand_ins.ANTIGRAVITY_SPENT)

    assert done.status_code == 200 and answer_text(done.content) == TEXT
    [served] = fake_vendor.calls()
    assert served.credential.startswith("g-pool-") and served.dialect is None
    assert served.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert "userAgent" not in served.body and "contents" in served.body and "authorization" not in served.headers
    assert b'"response"' in done.content  # (in the client's envelope)
    [flow] = flows_of(proxy, tmp_path)
    assert "was not asked (plan exhausted until" in flow.metadata["rotator"]["events"][0]["detail"]


def test_an_exhausted_model_goes_on_to_own_keys_through_from(
        rotator, fake_vendor, tmp_path):
    route = {"routes": [{"from": "antigravity", "targets": ["antigravity", "gemini/gemini-2.5-flash"]}]}
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor), route)
    fake_vendor.script(ld.exhausted(ld.CODE_ASSIST, resets_in=7200), key=TOKEN)

    carried = ask(proxy, model="claude-sonnet-4-5-thinking")
    unrouted = ask(proxy, model="gemini-3-flash")  # (no quota answer scripted: served on the login)

    assert carried.status_code == 200 and answer_text(carried.content) == TEXT
    spent, served, own = fake_vendor.calls()
    assert (spent.credential, spent.status) == (TOKEN, 429)
    assert served.credential.startswith("g-pool-")
    assert served.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"  # (never the -thinking alias)
    assert unrouted.status_code == 200 and own.credential == TOKEN
    [login] = status_of(proxy, "antigravity")
    assert login["exhausted"][0]["model"] == "claude-sonnet-4-5-thinking"


def test_without_a_route_an_exhausted_model_s_refusal_comes_with_its_delay_bounded(rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, antigravity(fake_vendor))
    fake_vendor.script(ld.exhausted(ld.CODE_ASSIST, resets_in=7200), key=TOKEN)

    done = ask(proxy)

    assert done.status_code == 429 and "QUOTA_EXHAUSTED" in done.text
    details = done.json()["error"]["details"]
    assert [d["retryDelay"] for d in details if d["@type"].endswith("RetryInfo")] == ["1s"]  # (the vendor's: 7200s)


def test_codex_s_reset_credits_are_shown_on_its_login_and_never_redeemed(rotator, fake_vendor, tmp_path):
    """Codex's own look-up (codex-rs backend-client: GET /backend-api/wham/rate-limit-reset-credits), sent in its
    shape (the real Codex's TUI makes it: tests/e2e/test_codex_tui.py; `codex exec` never does)."""
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)
    auth = logins.codex_auth()["tokens"]
    headers = {"authorization": f"Bearer {auth['access_token']}", "chatgpt-account-id": auth["account_id"],
               "originator": "codex_cli_rs"}
    with through(proxy) as client:
        listed = client.get("https://chatgpt.com/backend-api/wham/rate-limit-reset-credits", headers=headers)

    assert listed.status_code == 200
    [login] = status_of(proxy, "chatgpt")
    assert login["reset_credits"] == {"available": 2, "expires_at": list(stand_ins.RESET_CREDIT_LAPSES)}
    assert "reset credits: 2 available, the first lapsing 2099-01-01T00:00:00Z" in login["text"]
    assert not [c for c in logins.side_calls(proxy) if "consume" in c]
    assert auth["access_token"] not in json.dumps(login)
