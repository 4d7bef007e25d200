"""Claude Pro/Max plan windows that hold for some models only: the weekly `seven_day_overage_included` bucket
(headers `anthropic-ratelimit-unified-7d_oi-*`, Claude Code's "Fable limit": a per-model bucket, sent on that model's
answers alone). A 429 of that bucket leaves the login to the model it refused; the plan's other models are still
served on it."""

from __future__ import annotations

import json
import time

import httpx

from protocols.logins import claude_login
from protocols.vendor_errors import ErrorAnswer, ErrorKind, VendorError, error_object, lowered
from protocols.windows import WindowAnswer
from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange, Job
from rewrite.intake.clients import HeldCredential
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support.engine_harness import FakeResponder, Upstream, events_of, sse
from tests.support.samples import ANTHROPIC_TEXT

TOKEN = "sk-ant-oat01-the-users-own-login"
OAUTH = {"authorization": f"Bearer {TOKEN}", "anthropic-beta": "claude-code-20250219,oauth-2025-04-20"}
FALLBACK = ("providers: {claude_login: {base_url: 'http://vendor.test'}, anthropic: {base_url: 'http://vendor.test',"
            " keys: [sk-ant-pool]}}\nroutes: [{from: claude_login, targets: [claude_login, anthropic]}]")


def bucket_refusal(now: float) -> dict[str, str]:
    """A 429 of the per-model weekly bucket, the account-wide windows with room (a production answer's headers, as
    a peer recorded them: 5h allowed, 7d allowed_warning, 7d_oi rejected)."""
    reset = str(int(now + 14 * 3600))
    return {
        "anthropic-ratelimit-unified-5h-reset": str(int(now + 600)),
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-5h-utilization": "0.0",
        "anthropic-ratelimit-unified-7d-reset": reset,
        "anthropic-ratelimit-unified-7d-status": "allowed_warning",
        "anthropic-ratelimit-unified-7d-surpassed-threshold": "0.75",
        "anthropic-ratelimit-unified-7d-utilization": "0.94",
        "anthropic-ratelimit-unified-7d_oi-reset": reset,
        "anthropic-ratelimit-unified-7d_oi-status": "rejected",
        "anthropic-ratelimit-unified-7d_oi-surpassed-threshold": "1.0",
        "anthropic-ratelimit-unified-7d_oi-utilization": "1.0",
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-representative-claim": "seven_day_overage_included",
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-status": "rejected",
        "retry-after": "51811",
    }


REFUSED = {"type": "error", "error": {"type": "rate_limit_error", "message": "Error"}}


def test_the_per_model_buckets_refusal_is_the_models_quota_and_names_its_window():
    now = time.time()
    h = bucket_refusal(now)
    body = json.dumps(REFUSED).encode()
    answer = ErrorAnswer(429, lowered(h.items()), body, error_object(body), now)

    error = claude_login.exhausted(answer, VendorError(429, ErrorKind.RATE_LIMITED))

    assert error.kind is ErrorKind.QUOTA and error.quota.per_model
    windows = claude_login.windows(WindowAnswer(429, lowered(h.items()), b"", now), ())
    [bucket] = [w for w in windows if w.binding]
    assert bucket.name == "seven_day_overage_included" and bucket.used == 1.0
    assert "7d_oi" not in {w.name for w in windows}  # one window, not two names for it


def message(model: str) -> bytes:
    return json.dumps({"model": model, "max_tokens": 100, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()


async def test_a_models_weekly_bucket_spent_leaves_the_plans_other_models_on_the_login():
    cfg = parse(FALLBACK)
    cfg.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    r = Router(cfg)
    upstream = Upstream([
        lambda q: httpx.Response(429, headers={"content-type": "application/json", **bucket_refusal(time.time())},
                                 json=REFUSED),
        lambda q: sse(events_of(ANTHROPIC_TEXT)),  # the refused model, on the next target's key
        lambda q: sse(events_of(ANTHROPIC_TEXT)),  # another model: the plan still serves it
    ])
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        for n, model in enumerate(("claude-fable-5", "claude-sonnet-5")):
            route = r.route("api.anthropic.com", "POST", "/v1/messages", OAUTH)
            job = Job(f"job-{n}", route, route.provider)
            job.credential = HeldCredential(None, [("authorization", f"Bearer {TOKEN}")])
            sent = [("content-type", "application/json"), ("anthropic-beta", OAUTH["anthropic-beta"])]
            await Exchange(client, cfg.streaming, job, LoopbackRequest("POST", "/v1/messages", sent, message(model)),
                           FakeResponder(), router=r).run()

    refused, fallback, other = upstream.seen
    assert fallback.headers.get("x-api-key") == "sk-ant-pool"
    assert other.headers.get("authorization") == f"Bearer {TOKEN}"  # not sent to the pooled key
    login = job.route.provider.logins.login(TOKEN)  # (the login's state, as the flow's requests left it)
    assert login.exhausted_for("claude-fable-5", time.time()) is not None
    assert login.exhausted_for("claude-sonnet-5", time.time()) is None
