"""The engine's self-correction: a target that answers 400 naming a parameter its model does not support gets the
same request once more without it, and that provider's model is sent no such parameter again (scripted upstream,
no sockets; through a real mitmdump in tests/e2e/test_param_refusals.py)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange, Job
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.routing.router import Router
from tests.support import samples
from tests.support.engine_harness import FakeResponder, Upstream, sse
from tests.support.fake_vendor import param_refusal, sampling_of

CONFIG = """
providers:
  openai: {base_url: 'http://openai.test/v1', keys: [sk-o1]}
  anthropic: {base_url: 'http://anthropic.test', keys: [sk-a1]}
  gemini: {base_url: 'http://gemini.test', keys: [g-1]}
routes:
  - {models: [to-claude], targets: [anthropic/claude-sonnet-4-5]}  # a model that takes sampling parameters
"""
HEADERS = [("content-type", "application/json"), ("authorization", "Bearer sk-client")]
HI = [{"role": "user", "content": "hi"}]


def chat(**extra) -> dict:
    return {"model": "gpt-5", "stream": True, "stream_options": {"include_usage": True}, "messages": HI, **extra}


# (host, path, client body, the fake vendor's protocol upstream, the upstream's answer)
CASES = {
    "chat": ("api.openai.com", "/v1/chat/completions", chat(temperature=0.2), "chat", samples.CHAT_TEXT),
    "responses": ("api.openai.com", "/v1/responses", {"model": "gpt-5", "stream": True, "input": "hi",
                                                      "temperature": 0.2}, "responses", samples.RESPONSES_TEXT),
    "anthropic": ("api.anthropic.com", "/v1/messages", {"model": "claude-opus-4-8", "max_tokens": 64, "stream": True,
                                                        "messages": HI, "temperature": 0.2},
                  "anthropic", samples.ANTHROPIC_TEXT),
    "gemini": ("generativelanguage.googleapis.com", "/v1beta/models/gemini-3-pro:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64}}, "gemini", samples.GEMINI_TEXT),
    "anthropic non-stream": ("api.anthropic.com", "/v1/messages", {"model": "claude-opus-4-8", "max_tokens": 64,
                                                                   "messages": HI, "temperature": 0.2},
                             "anthropic", samples.ANTHROPIC_TEXT),  # (sent upstream as a stream, folded back)
    "chat routed to anthropic": ("api.openai.com", "/v1/chat/completions", chat(model="to-claude", temperature=0.2),
                                 "anthropic", samples.ANTHROPIC_TEXT),
}


async def exchange(router: Router, host: str, path: str, body: dict, upstream: Upstream) -> tuple[FakeResponder, Job]:
    route = router.route(host, "POST", path.partition("?")[0])
    assert route is not None
    job = Job("job-0001", route, route.provider)
    out = FakeResponder()
    cfg = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30, first_token_retries=1)
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg, job, LoopbackRequest("POST", path, HEADERS, json.dumps(body).encode()), out,
                       router=router).run()
    return out, job


def refusing(protocol: str, *names: str):
    """An upstream whose model refuses each of `names`, the first one a request carries first."""
    def step(request: httpx.Request) -> httpx.Response:
        sent = sampling_of(protocol, json.loads(request.content))
        refused = next((n for n in names if n in sent), None)
        if refused is None:
            return sse([samples.CHAT_TEXT])
        return httpx.Response(400, json=param_refusal(protocol, refused))
    return step


def sent(upstream: Upstream, n: int) -> dict:
    return json.loads(upstream.seen[n].content)


@pytest.mark.parametrize(("host", "path", "body", "protocol", "answer"), CASES.values(), ids=list(CASES))
def test_a_refused_parameter_is_left_out_at_once_and_then_for_that_model(host, path, body, protocol, answer):
    router = Router(parse(CONFIG))
    upstream = Upstream([lambda r: httpx.Response(400, json=param_refusal(protocol, "temperature")),
                         lambda r: sse([answer])])

    out, job = asyncio.run(exchange(router, host, path, body, upstream))

    assert out.status == 200 and b"Paris" in out.body  # the client gets its answer, not the 400
    first, again = sent(upstream, 0), sent(upstream, 1)
    assert "temperature" in sampling_of(protocol, first)
    assert "temperature" not in sampling_of(protocol, again)
    sampling_of(protocol, first).pop("temperature")
    assert again == first  # nothing else changed
    assert upstream.keys()[0] == upstream.keys()[1]  # a 400 says nothing against the key
    [note] = job.notes
    assert note["kind"] == "param-refused" and note["detail"].startswith("temperature ")

    upstream = Upstream([lambda r: sse([answer])])
    out, job = asyncio.run(exchange(router, host, path, body, upstream))  # the model's next request

    assert out.status == 200 and len(upstream.seen) == 1
    assert "temperature" not in sampling_of(protocol, sent(upstream, 0))
    assert job.notes == []
    assert any("param-refused): temperature" in c for c in job.records["steps"][-1]["changes"])  # the flow's steps say why


def test_a_refusal_teaches_the_requests_next_attempt_where_nothing_was_learned_before():
    router = Router(parse(CONFIG))
    upstream = Upstream([refusing("chat", "temperature")])
    asyncio.run(exchange(router, "api.openai.com", "/v1/chat/completions", chat(temperature=0.2), upstream))
    assert [sent(upstream, n).get("temperature") for n in (0, 1)] == [0.2, None]


def test_another_model_of_the_provider_still_gets_the_parameter():
    router = Router(parse(CONFIG))
    upstream = Upstream([refusing("chat", "temperature")])
    asyncio.run(exchange(router, "api.openai.com", "/v1/chat/completions", chat(temperature=0.2), upstream))

    other = Upstream([lambda r: sse([samples.CHAT_TEXT])])
    asyncio.run(exchange(router, "api.openai.com", "/v1/chat/completions", chat(model="gpt-4o", temperature=0.2),
                         other))

    assert [sent(upstream, n).get("temperature") for n in (0, 1)] == [0.2, None]  # gpt-5 went again without it
    assert sent(other, 0)["temperature"] == 0.2


def test_at_most_three_parameters_are_left_out_of_one_request():
    names = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
    upstream = Upstream([refusing("chat", *names)])

    out, job = asyncio.run(exchange(Router(parse(CONFIG)), "api.openai.com", "/v1/chat/completions",
                                    chat(**dict.fromkeys(names, 0.5)), upstream))

    assert len(upstream.seen) == 4
    assert out.status == 400 and json.loads(out.body)["error"]["param"] == "frequency_penalty"
    assert [n["detail"].split()[0] for n in job.notes if n["kind"] == "param-refused"] == list(names[:3])


THEN_REFUSED = {
    "an essential parameter": ("anthropic", {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: Extra inputs are not permitted"}}),
    "a parameter the request does not carry": ("chat", param_refusal("chat", "top_k")),
}


@pytest.mark.parametrize(("protocol", "error"), THEN_REFUSED.values(), ids=list(THEN_REFUSED))
def test_a_refusal_that_leaving_out_cannot_help_goes_to_the_client(protocol, error):
    host, path, body, _, _ = CASES[protocol]
    upstream = Upstream([lambda r: httpx.Response(400, json=param_refusal(protocol, "temperature")),
                         lambda r: httpx.Response(400, json=error)])

    out, job = asyncio.run(exchange(Router(parse(CONFIG)), host, path, body, upstream))

    assert len(upstream.seen) == 2  # without temperature, then no more
    assert out.status == 400 and json.loads(out.body) == error
    assert [n["kind"] for n in job.notes] == ["param-refused"]
