"""Antigravity on Cloud Code (protocols/logins/antigravity.py, rewrite/providers/antigravity.py): told apart from
Gemini CLI on the production host they share by what a request says, at home on its own hosts; its plan's quota
read from its client's look-ups; Codex's reset credits read from its own (protocols/logins/chatgpt.py)."""

from __future__ import annotations

import json

from protocols.logins import antigravity as wire
from protocols.logins import chatgpt
from protocols.windows import WindowStatus, iso
from rewrite.config import parse
from rewrite.pool.logins import LoginBook
from rewrite.routing.router import Router

NOW = 1_800_000_000.0
PROD, SANDBOX = "cloudcode-pa.googleapis.com", "daily-cloudcode-pa.sandbox.googleapis.com"
BEARER = {"authorization": "Bearer ya29.x"}
GENERATE = "/v1internal:streamGenerateContent"
INNER = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
ANTIGRAVITY_BODY = json.dumps({"project": "p", "model": "claude-sonnet-4-5", "request": INNER,
                               "userAgent": "antigravity", "requestType": "agent", "requestId": "agent-1"}).encode()
GEMINI_CLI_BODY = json.dumps({"model": "gemini-2.5-flash", "project": "p", "user_prompt_id": "u",
                              "request": INNER}).encode()


def served(host: str, body: bytes | None, headers: dict | None = None, path: str = GENERATE) -> str | None:
    route = Router(parse("")).route(host, "POST", path, {**BEARER, **(headers or {})}, body)
    return route.provider.name if route is not None else None


def test_the_production_host_serves_each_login_by_what_its_request_says():
    assert served(PROD, ANTIGRAVITY_BODY) == "antigravity"
    assert served(PROD, GEMINI_CLI_BODY) == "code_assist"
    assert served(PROD, None, {"user-agent": "antigravity/1.18.3 darwin/arm64"}) == "antigravity"
    assert served(PROD, None, {"user-agent": "GeminiCLI/0.20.0/gemini-2.5-flash (linux; x64)"}) == "code_assist"
    assert served(PROD, GEMINI_CLI_BODY, {}, "/v1internal:loadCodeAssist") is None  # (passes as it came)


def test_antigravity_s_own_hosts_serve_it_whatever_the_body():
    for host in wire.HOSTS[:3]:
        assert served(host, GEMINI_CLI_BODY) == "antigravity"
    assert served(SANDBOX, ANTIGRAVITY_BODY, {"authorization": ""}) is None  # (no login: not Rotator's)


def test_a_lookup_on_the_production_host_is_kept_on_the_antigravity_login_that_made_it():
    router = Router(parse(""))
    keep = router.looked_up(PROD, "/v1internal:fetchAvailableModels", [("Authorization", "Bearer ya29.ag")])
    assert keep is not None
    keep(200, json.dumps({"models": {"claude-sonnet-4-5": {"quotaInfo": {"remainingFraction": 0.25}}}}).encode())
    [login] = router.provider_named("antigravity").logins.describe()
    assert login["windows"][0]["name"] == "claude-sonnet-4-5 quota" and login["windows"][0]["used"] == 0.75
    assert "ya29.ag" not in json.dumps(login)
    assert router.looked_up(PROD, "/v1internal:retrieveUserQuota", [("authorization", "Bearer ya29.g")]) is None
    assert router.looked_up(PROD, "/v1internal:fetchAvailableModels", []) is None


def test_fetch_available_models_reports_each_model_s_quota_and_a_missing_fraction_is_used_up():
    reset = iso(NOW + 3600)
    body = {"models": {"claude-sonnet-4-5": {"quotaInfo": {"remainingFraction": 0.4, "resetTime": reset}},
                       "gemini-3-pro-high": {"quotaInfo": {"resetTime": reset}},
                       "chat_20706": {"displayName": "no quota"}}}
    windows, facts = wire.plan_lookup("/v1internal:fetchAvailableModels", 200, json.dumps(body).encode(), NOW)
    assert facts == {}
    left, spent = windows
    assert (left.model, left.used, left.status) == ("claude-sonnet-4-5", 0.6, WindowStatus.ALLOWED)
    assert (spent.model, spent.used, spent.status, spent.resets_at) == ("gemini-3-pro-high", 1.0,
                                                                        WindowStatus.EXHAUSTED, NOW + 3600)
    book = LoginBook("antigravity", wall=lambda: NOW)
    state = book.login("ya29.x")
    book.looked_up(state, windows, facts)
    assert state.exhausted_for("gemini-3-pro-high", NOW) is not None
    assert state.exhausted_for("claude-sonnet-4-5", NOW) is None
    served_again = {"models": {"gemini-3-pro-high": {"quotaInfo": {"remainingFraction": 1, "resetTime": reset}}}}
    book.looked_up(state, *wire.plan_lookup("", 200, json.dumps(served_again).encode(), NOW))
    assert state.exhausted_for("gemini-3-pro-high", NOW) is None


def test_the_quota_summary_s_buckets_are_windows_and_an_error_reports_none():
    body = {"groups": [{"displayName": "Claude", "buckets": [
        {"bucketId": "c5", "window": "5h", "remainingFraction": 0.75, "resetTime": iso(NOW + 60)},
        {"bucketId": "cw", "window": "weekly", "remainingFraction": "x"}]}]}
    [five] = wire.plan_lookup("", 200, json.dumps(body).encode(), NOW)[0]
    assert (five.name, five.used, five.resets_at) == ("Claude 5h", 0.25, NOW + 60)
    assert wire.plan_lookup("", 403, b'{"models": {}}', NOW) == ((), {})
    assert wire.plan_lookup("", 200, b"not json", NOW) == ((), {})


def test_codex_s_reset_credits_are_counted_with_their_lapses_soonest_first():
    body = {"available_count": 2, "credits": [
        {"id": "b", "status": "available", "expires_at": "2099-02-01T00:00:00Z"},
        {"id": "a", "status": "available", "expires_at": "2099-01-01T00:00:00Z"},
        {"id": "c", "status": "redeemed", "expires_at": "2098-01-01T00:00:00Z"}]}
    windows, facts = chatgpt.reset_credits("", 200, json.dumps(body).encode(), NOW)
    assert windows == ()
    assert facts == {"reset_credits": {"available": 2, "expires_at": ["2099-01-01T00:00:00Z",
                                                                      "2099-02-01T00:00:00Z"]}}
    bare = [{"id": "a", "status": "available", "expires_at": "2099-01-01T00:00:00Z"}]
    assert chatgpt.reset_credits("", 200, json.dumps(bare).encode(), NOW)[1]["reset_credits"]["available"] == 1
    assert chatgpt.reset_credits("", 200, b'{"detail": "x"}', NOW) == ((), {})
    book = LoginBook("chatgpt", wall=lambda: NOW)
    state = book.login("jwt")
    book.looked_up(state, windows, facts)
    [entry] = book.describe()
    assert entry["reset_credits"]["available"] == 2
    assert "reset credits: 2 available, the first lapsing 2099-01-01T00:00:00Z" in entry["text"]


def test_with_gemini_cli_s_login_moved_away_antigravity_still_takes_only_its_own_on_the_shared_host():
    config = parse("providers:\n  code_assist: {hosts: [code-assist.invalid]}\n")
    router = Router(config)
    assert router.route(PROD, "POST", GENERATE, BEARER, GEMINI_CLI_BODY) is None
    assert router.route(PROD, "POST", GENERATE, BEARER, ANTIGRAVITY_BODY).provider.name == "antigravity"


def test_a_thinking_alias_is_never_another_vendor_s_model_name():
    config = parse("providers:\n  gemini: {keys: [g-1]}\nroutes:\n"
                   "  - {from: antigravity, targets: [antigravity, gemini, gemini/gemini-2.5-pro]}\n")
    router = Router(config)
    called = router.provider_named("antigravity")
    planned = [(p.name, t.model_for("claude-sonnet-4-5-thinking"))
               for p, t in router.targets(called, "claude-sonnet-4-5-thinking")]
    assert planned == [("antigravity", "claude-sonnet-4-5-thinking"), ("gemini", "claude-sonnet-4-5"),
                       ("gemini", "gemini-2.5-pro")]
    assert [t.model_for("gemini-3-flash") for _, t in router.targets(called, "gemini-3-flash")] == [
        "gemini-3-flash", "gemini-3-flash", "gemini-2.5-pro"]
