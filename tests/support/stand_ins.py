"""Stand-ins for the side calls the four login CLIs make (tests/e2e/test_logins_direct.py): token refreshes, account
and plan look-ups, settings, telemetry. Pure: a request in, the answer the real service gives (as far as each CLI
needs it) out, so that nothing in the tests leaves 127.0.0.1.

    answer("chatgpt.com", "GET", "/backend-api/wham/accounts/check", b"", headers)  -> Answer(200, {...})
    answer("example.com", "GET", "/", b"", {})                                      -> None (not a side call)

The generation paths of these hosts are not here: the fake vendor (tests/support/login_dialects.py) serves them,
through Rotator or through the stand-in addon (tests/support/logins_addon.py) when it forwards them.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

# The fake logins' identities, as each CLI's credentials name them (tests/support/logins.py writes them).
CHATGPT_ACCOUNT = "acct-fake"
CHATGPT_EMAIL = "fake@example.com"
CODE_ASSIST_PROJECT = "fake-project-123"
GOOGLE_CLIENT = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"  # Gemini CLI's public id
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email "
                 "https://www.googleapis.com/auth/userinfo.profile openid")
COPILOT_API = "https://api.individual.githubcopilot.com"  # the API host copilot_internal/user names by default

# The hosts whose side calls are answered here; any other path of theirs gets a 404, as the CLIs tolerate.
SIDE_HOSTS = ("chatgpt.com", "ab.chatgpt.com", "auth.openai.com", "api.github.com", "oauth2.googleapis.com",
              "www.googleapis.com", "cloudcode-pa.googleapis.com", "platform.claude.com", "api.anthropic.com",
              "daily-cloudcode-pa.sandbox.googleapis.com", "daily-cloudcode-pa.googleapis.com",
              "autopush-cloudcode-pa.sandbox.googleapis.com")
COPILOT_HOSTS = re.compile(r"^(?:[a-z0-9-]+\.)*githubcopilot\.com$")

# Code Assist's own methods besides generation (packages/core/src/code_assist/server.ts), each with its answer.
CODE_ASSIST_SIDE = ("loadCodeAssist", "onboardUser", "retrieveUserQuota", "listExperiments",
                    "recordCodeAssistMetrics", "fetchAdminControls", "getCodeAssistGlobalUserSetting",
                    "setCodeAssistGlobalUserSetting", "listRemoteRepositories")
# Antigravity's look-ups of its plan (shared/docs/antigravity.md, "Quota"), answered by `antigravity_quota`.
ANTIGRAVITY_LOOKUPS = ("fetchAvailableModels", "retrieveUserQuotaSummary")
ANTIGRAVITY_SPENT = "gemini-3-pro-high"  # the model whose quota the stand-in says is used up


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # dict/list (JSON), bytes, or None (empty)
    headers: dict[str, str] = field(default_factory=dict)

    def wire(self) -> tuple[bytes, dict[str, str]]:
        """The body's bytes and its headers (content-type added for JSON)."""
        if self.body is None:
            return b"", dict(self.headers)
        if isinstance(self.body, bytes):
            return self.body, dict(self.headers)
        return json.dumps(self.body).encode(), {"content-type": "application/json", **self.headers}


NOT_FOUND = Answer(404, {"error": {"message": "not found (the tests' stand-in)", "code": "not_found"}})


def is_side_host(host: str) -> bool:
    return host in SIDE_HOSTS or bool(COPILOT_HOSTS.match(host))


def answer(host: str, method: str, path: str, body: bytes, headers: dict[str, str],
           copilot_api: str = COPILOT_API) -> Answer | None:
    """The stand-in's answer to a side call, or None for a host that is none of the CLIs' (refuse it).
    `path` may carry a query; `headers` have lower-cased names."""
    host = host.lower()
    if not is_side_host(host):
        return None
    path, _, query = path.partition("?")
    if host == "auth.openai.com" and method == "POST" and path == "/oauth/token":
        return Answer(200, chatgpt_tokens())
    if host == "chatgpt.com":
        return _chatgpt(method, path, headers)
    if host == "api.github.com" and method == "GET" and path == "/copilot_internal/user":
        return Answer(200, copilot_user(copilot_api))
    if host == "oauth2.googleapis.com":
        return _google_oauth(method, path, body, query)
    if host == "www.googleapis.com" and path == "/oauth2/v2/userinfo":
        return Answer(200, {"id": "1234567890", "email": CHATGPT_EMAIL, "verified_email": True, "name": "Fake User"})
    if host.endswith("cloudcode-pa.googleapis.com") or host.endswith("cloudcode-pa.sandbox.googleapis.com"):
        method_name = path.rpartition(":")[2] if path.startswith("/v1internal:") else None
        if method_name in CODE_ASSIST_SIDE:
            return Answer(200, code_assist_side(method_name, _json(body)))
        if method_name in ANTIGRAVITY_LOOKUPS:
            return Answer(200, antigravity_quota(method_name))
    if host == "platform.claude.com" and method == "POST" and path == "/v1/oauth/token":
        return Answer(200, claude_tokens())
    return NOT_FOUND


# --- ChatGPT (Codex)


def jwt(payload: dict) -> str:
    """An unsigned-looking JWT (Codex reads the claims, never checks the signature)."""
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.c2ln"


def chatgpt_claims(expires_in: float = 3600, plan: str = "pro") -> dict:
    return {"exp": int(time.time() + expires_in), "email": CHATGPT_EMAIL,
            "https://api.openai.com/auth": {"chatgpt_plan_type": plan, "chatgpt_user_id": "user-fake",
                                            "chatgpt_account_id": CHATGPT_ACCOUNT}}


def chatgpt_tokens(expires_in: float = 3600) -> dict:
    """auth.openai.com's refresh answer: fresh JWTs and a rotated refresh token."""
    token = jwt(chatgpt_claims(expires_in))
    return {"id_token": token, "access_token": token, "refresh_token": f"rt_fake_{int(time.time() * 1000)}",
            "token_type": "Bearer", "expires_in": int(expires_in)}


def _chatgpt(method: str, path: str, headers: dict[str, str]) -> Answer:
    if method == "GET" and path == "/backend-api/wham/accounts/check":
        # Codex (since 0.125) routes its workspace by this answer: no entry for its account, and it gives up.
        account = headers.get("chatgpt-account-id") or CHATGPT_ACCOUNT
        return Answer(200, {"accounts": [{"id": account, "workspace_backend_origin": "https://chatgpt.com",
                                          "account_routing_override": "NO_CONSTRAINT"}]})
    if method == "GET" and path == "/backend-api/wham/usage":
        # (the count of reset credits: Codex's TUI lists them, `wham/rate-limit-reset-credits`, when it is above 0)
        reset = int(time.time()) + 3600
        window = {"used_percent": 12, "limit_window_seconds": 18000, "reset_after_seconds": 3600, "reset_at": reset}
        return Answer(200, {"plan_type": "pro", "rate_limit": {
            "allowed": True, "limit_reached": False, "primary_window": window,
            "secondary_window": {**window, "used_percent": 30, "limit_window_seconds": 604800}}, "credits": None,
            "rate_limit_reset_credits": {"available_count": len(RESET_CREDIT_LAPSES)}})
    if method == "GET" and path == "/backend-api/wham/rate-limit-reset-credits":
        return Answer(200, reset_credits())
    return NOT_FOUND


RESET_CREDIT_LAPSES = ("2099-01-01T00:00:00Z", "2099-02-01T00:00:00Z")


def reset_credits() -> dict:
    """chatgpt.com's list of the plan's reset credits (codex-rs backend-client: RateLimitResetCreditsDetails): two
    available, one redeemed."""
    credits = [{"id": f"credit_{i}", "status": "available", "reset_type": "codex_rate_limits",
                "title": "Full reset (Weekly + 5 hr)", "granted_at": "2026-11-01T00:00:00Z", "expires_at": at}
               for i, at in enumerate(reversed(RESET_CREDIT_LAPSES))]
    credits.append({"id": "credit_used", "status": "redeemed", "reset_type": "codex_rate_limits",
                    "granted_at": "2026-10-01T00:00:00Z", "expires_at": "2099-03-01T00:00:00Z"})
    return {"available_count": 2, "credits": credits}


# --- GitHub Copilot


def copilot_user(api: str = COPILOT_API) -> dict:
    """api.github.com/copilot_internal/user: the plan, and the API host the CLI then calls."""
    return {
        "login": "fake-user", "access_type_sku": "free_limited_copilot", "copilot_plan": "individual",
        "chat_enabled": True, "analytics_tracking_id": "fake-tracking-id", "assigned_date": "2026-01-01T00:00:00Z",
        "can_signup_for_limited": False, "organization_login_list": [], "organization_list": [],
        "endpoints": {"api": api, "proxy": "https://proxy.individual.githubcopilot.com",
                      "telemetry": "https://telemetry.individual.githubcopilot.com",
                      "origin-tracker": "https://origin-tracker.individual.githubcopilot.com"},
        "quota_reset_date": "2026-12-01",
        "quota_snapshots": {
            "premium_interactions": {"entitlement": 300, "remaining": 250, "percent_remaining": 83.3,
                                     "unlimited": False, "overage_count": 0, "overage_permitted": False,
                                     "quota_id": "premium_interactions"},
            "chat": {"entitlement": 0, "remaining": 0, "percent_remaining": 100.0, "unlimited": True,
                     "overage_count": 0, "overage_permitted": False, "quota_id": "chat"},
            "completions": {"entitlement": 0, "remaining": 0, "percent_remaining": 100.0, "unlimited": True,
                            "overage_count": 0, "overage_permitted": False, "quota_id": "completions"},
        },
    }


# --- Google (Gemini CLI on Code Assist)


def _google_oauth(method: str, path: str, body: bytes, query: str) -> Answer:
    if method == "POST" and path == "/token":  # a form POST: grant_type=refresh_token&refresh_token=...
        return Answer(200, {"access_token": f"ya29.fake-{int(time.time() * 1000)}", "expires_in": 3599,
                            "token_type": "Bearer", "scope": GOOGLE_SCOPES, "id_token": "x.y.z"})
    if path == "/tokeninfo":  # Gemini CLI's check of a stored login: fatal if it fails
        return Answer(200, {"azp": GOOGLE_CLIENT, "aud": GOOGLE_CLIENT, "sub": "1234567890", "scope": GOOGLE_SCOPES,
                            "exp": str(int(time.time()) + 3500), "expires_in": "3500", "email": CHATGPT_EMAIL,
                            "email_verified": "true", "access_type": "offline"})
    return NOT_FOUND


def code_assist_side(method: str, request: Any) -> dict:
    """cloudcode-pa's answers to Code Assist's own calls: a Standard-tier user with a project, no experiments,
    no quota buckets, and a finished onboarding."""
    if method == "loadCodeAssist":
        tier = {"id": "standard-tier", "name": "Gemini Code Assist", "isDefault": True,
                "userDefinedCloudaicompanionProject": True}
        return {"currentTier": tier, "allowedTiers": [tier], "cloudaicompanionProject": CODE_ASSIST_PROJECT,
                "gcpManaged": False}
    if method == "onboardUser":
        return {"name": "operations/fake", "done": True,
                "response": {"cloudaicompanionProject": {"id": CODE_ASSIST_PROJECT, "name": CODE_ASSIST_PROJECT}}}
    if method == "retrieveUserQuota":
        return {"buckets": []}
    if method == "listExperiments":
        return {"experimentIds": [], "flags": []}
    if method == "fetchAdminControls":
        return {}
    if method in ANTIGRAVITY_LOOKUPS:
        return antigravity_quota(method)
    return {}


def antigravity_quota(method: str) -> dict:
    """Cloud Code's answers to Antigravity's look-ups of its plan: two models' quota, one of them used up (no
    `remainingFraction`), and a 5-hour and a weekly bucket."""
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 3600))
    if method == "fetchAvailableModels":
        return {"models": {"claude-sonnet-4-5": {"displayName": "Claude Sonnet 4.5",
                                                 "quotaInfo": {"remainingFraction": 0.4, "resetTime": reset}},
                           ANTIGRAVITY_SPENT: {"displayName": "Gemini 3 Pro (High)", "quotaInfo": {"resetTime": reset}}}}
    return {"groups": [{"displayName": "Claude", "buckets": [
        {"bucketId": "claude-5h", "window": "5h", "remainingFraction": 0.75, "resetTime": reset},
        {"bucketId": "claude-weekly", "window": "weekly", "remainingFraction": 0.9, "resetTime": reset}]}]}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return dict(parse_qsl(body.decode("latin-1")))


# --- Claude


def claude_tokens() -> dict:
    """platform.claude.com's refresh answer (a stored Pro/Max login close to its expiry)."""
    stamp = int(time.time() * 1000)
    return {"access_token": f"sk-ant-oat01-fake-{stamp}", "refresh_token": f"sk-ant-ort01-fake-{stamp}",
            "expires_in": 28800, "token_type": "Bearer", "scope": "user:inference user:profile user:sessions:claude_code",
            "account": {"uuid": "00000000-0000-4000-8000-000000000001", "email_address": CHATGPT_EMAIL},
            "organization": {"uuid": "00000000-0000-4000-8000-000000000002", "name": "Fake"}}
