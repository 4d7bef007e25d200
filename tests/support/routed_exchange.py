"""One exchange through the engine with a router and its routes, against a scripted upstream (no sockets)."""

from __future__ import annotations

import json

import httpx

from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support.engine_harness import FakeResponder, Upstream

CHAT_PATH = "/v1/chat/completions"
MESSAGES_PATH = "/v1/messages"
CONFIG = """
providers:
  openai: {base_url: 'http://openai.test/v1', keys: [sk-o1]}
  anthropic: {base_url: 'http://anthropic.test', keys: [sk-a1]}
  gemini: {base_url: 'http://gemini.test', keys: [g-1]}
  local: {kind: openai, base_url: 'http://local.test/api/v1'}
  respond: {kind: openai, protocol: responses, base_url: 'http://respond.test/v1', keys: [sk-r1]}
  reasoner: {kind: openai, base_url: 'http://reasoner.test/v1', keys: [sk-d1],
             adapters: [{reasoning_field: reasoning_content}]}
  plain: {kind: openai, base_url: 'http://plain.test/v1', keys: [sk-p1], force_upstream_stream: false}
routes:
  - {models: [to-local], targets: [local/llama]}
  - {models: [chat-then-local], targets: [openai/gpt-x, local/llama]}
  - {models: [claude-then-chat], targets: [anthropic, openai/gpt-x]}
  - {models: [to-chat], targets: [openai/gpt-x]}
  - {models: [to-reasoner], targets: [reasoner/deepseek-reasoner]}
  - {models: [to-plain], targets: [plain/gpt-x]}
"""
ANTHROPIC_HEADERS = [("content-type", "application/json"), ("x-api-key", "sk-ant-client"),
                     ("anthropic-version", "2023-06-01")]
CHAT_HEADERS = [("content-type", "application/json"), ("authorization", "Bearer sk-client")]


def router(config: str = CONFIG) -> Router:
    return Router(parse(config))


make_router = router


async def exchange(host: str, path: str, body: dict | bytes, upstream: Upstream, headers=CHAT_HEADERS,
                   config: str = CONFIG, router: Router | None = None,
                   plugins: list | None = None, resume: bool = False, **streaming) -> tuple[FakeResponder, Job]:
    """One request (`router` and `plugins`: what several requests share, as an engine's, whose providers the test
    may read after; else made for it; `resume`: cut answers continued as the config's `resume` says; `streaming`:
    settings over the small timeouts here)."""
    rt = router or make_router(config)
    route = rt.route(host, "POST", path.partition("?")[0])
    job = Job("job-0001", route, route.provider)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    out = FakeResponder()
    cfg = StreamingConfig(**{"first_token_timeout": 5, "idle_timeout": 5, "heartbeat_interval": 30,
                             "first_token_retries": 1, **streaming})
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg, job, LoopbackRequest("POST", path, list(headers), raw), out, router=rt,
                       plugins=plugins, resume_for=rt.config.resume_for if resume else None).run()
    return out, job
