"""Codex's per-model limit families (protocols/logins/chatgpt.py): a limit of its own for some models
(`x-codex-bengalfox-*`, named by `x-codex-bengalfox-limit-name`: gpt-5.3-codex-spark), which `x-codex-active-limit`
names when a request counts in it (and `x-codex-*` then repeats its figures). That limit used up leaves the login
to that model only: the plan's other models are still served on it (codex-rs's own account-pool tests answer a
spark request so: `usage_limit_response("bengalfox")`)."""

from __future__ import annotations

import json
import time

import httpx

from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange, Job
from rewrite.intake.clients import hide
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support.engine_harness import FakeResponder, Upstream, events_of, sse
from tests.support.samples import RESPONSES_TEXT

CONFIG = ("providers: {chatgpt: {base_url: 'http://vendor.test/backend-api/codex'}, openai: {base_url: "
          "'http://vendor.test/v1', keys: [sk-pool]}}\nroutes: [{from: chatgpt, targets: [chatgpt, openai]}]")
SPARK = "gpt-5.3-codex-spark"


def spark_spent(now: float) -> httpx.Response:
    """A spark request's 429: its own family used up, the plan's own 5h and 7d windows with room."""
    reset = str(int(now + 3 * 86400))
    headers = {"x-codex-active-limit": "codex_bengalfox",
               "x-codex-primary-used-percent": "100.0", "x-codex-primary-window-minutes": "10080",
               "x-codex-primary-reset-at": reset,
               "x-codex-bengalfox-primary-used-percent": "100.0", "x-codex-bengalfox-primary-window-minutes": "10080",
               "x-codex-bengalfox-primary-reset-at": reset, "x-codex-bengalfox-limit-name": "GPT-5.3-Codex-Spark"}
    body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                      "plan_type": "pro", "resets_at": int(reset)}}
    return httpx.Response(429, headers={"content-type": "application/json", **headers}, json=body)


def other_models_answer(now: float) -> httpx.Response:
    """Another model's answer: the plan's own windows, and the spark family's figures beside them."""
    response = sse(events_of(RESPONSES_TEXT))
    response.headers.update({
        "x-codex-active-limit": "premium",
        "x-codex-primary-used-percent": "10", "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(int(now + 3600)),
        "x-codex-bengalfox-primary-used-percent": "100.0", "x-codex-bengalfox-primary-window-minutes": "10080",
        "x-codex-bengalfox-primary-reset-at": str(int(now + 3 * 86400))})
    return response


async def test_a_models_own_limit_used_up_leaves_the_plans_other_models_on_the_login():
    cfg = parse(CONFIG)
    cfg.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    router = Router(cfg)
    up = Upstream([lambda r: spark_spent(time.time()),
                   lambda r: sse(events_of(RESPONSES_TEXT)),  # spark, on the next target's key
                   lambda r: other_models_answer(time.time()),  # another model, on the login
                   lambda r: other_models_answer(time.time())])  # and again: the spark family's figures did not
    async with httpx.AsyncClient(transport=httpx.MockTransport(up)) as client:
        for n, model in enumerate((SPARK, "gpt-5.5-codex", "gpt-5.5-codex")):
            route = router.route("chatgpt.com", "POST", "/backend-api/codex/responses", {"authorization": "Bearer jwt"})
            headers = [("host", "chatgpt.com"), ("content-type", "application/json"), ("authorization", "Bearer jwt")]
            shown, _, held = hide(route.provider.credential, headers, "")
            job = Job(f"job-{n}", route, route.provider)
            job.credential = held
            body = {"model": model, "input": "hi", "store": False, "stream": True}
            await Exchange(client, cfg.streaming, job, LoopbackRequest("POST", "/backend-api/codex/responses", shown,
                                                                       json.dumps(body).encode()),
                           FakeResponder(), router=router).run()

    spent, fallback, other, again = up.seen
    assert fallback.headers["authorization"] == "Bearer sk-pool"
    assert other.headers["authorization"] == "Bearer jwt" and again.headers["authorization"] == "Bearer jwt"
    login = job.route.provider.logins.login("jwt")  # (the login's state, as the flow's requests left it)
    assert login.exhausted_for(SPARK, time.time()) is not None
    assert login.exhausted_for("gpt-5.5-codex", time.time()) is None
