"""Who pays on a cloud platform (rewrite/plugins/payers/azure.py, vertex.py), through the engine against a scripted
platform (no sockets): an Azure key at its own resource and deployment, a Vertex region moved after a 429, service
accounts whose tokens Rotator mints (the token endpoint is the fake platform's own check, tests/support/cloud_auth.py),
and what a platform without keys does for another provider's client."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from rewrite.lifecycle.hooks import plugins_for
from rewrite.lifecycle.setting import Setting
from tests.support import samples
from tests.support.cloud_auth import CloudAccounts
from tests.support.cloud_faults import google_error, vertex_exhausted
from tests.support.engine_harness import Upstream, sse
from tests.support.routed_exchange import exchange, router

CLAUDE_PATH = ("/v1/projects/proj-a/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"
               ":streamRawPredict")
CLAUDE_BODY = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 64, "stream": True,
               "messages": [{"role": "user", "content": "hi"}]}
EAST, EUROPE = "us-east5-aiplatform.googleapis.com", "europe-west1-aiplatform.googleapis.com"
CHAT_CHUNKS = [b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5.1",
                                       "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
                                      ).encode() + b"\n\n",
               b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5.1",
                                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                                      ).encode() + b"\n\nde", b"ta: [DONE]\n\n"]


def claude_stream(request: httpx.Request) -> httpx.Response:
    return sse([samples.ANTHROPIC_TEXT])


def throttled(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, json=vertex_exhausted().error_body)


def headers(host: str, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [("host", host), ("content-type", "application/json"), *more]


async def test_vertex_claude_goes_to_the_host_called_with_the_clients_token_and_its_body_as_it_came():
    upstream = Upstream([claude_stream])

    out, _ = await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream,
                            headers(EAST, ("authorization", "Bearer ya29.client")), config="{}")

    [sent] = upstream.seen
    assert str(sent.url) == f"https://{EAST}{CLAUDE_PATH}"
    assert sent.headers["authorization"] == "Bearer ya29.client" and json.loads(sent.content) == CLAUDE_BODY
    assert out.status == 200 and b"Paris" in out.body


async def test_a_throttled_region_sends_the_next_attempt_to_the_next_region_with_the_clients_token():
    upstream = Upstream([throttled, claude_stream])

    out, job = await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream,
                              headers(EAST, ("authorization", "Bearer ya29.client")),
                              config="providers: {vertex: {regions: [us-east5, europe-west1, global]}}")

    assert [urlsplit(str(r.url)).netloc for r in upstream.seen] == [EAST, EUROPE]
    assert upstream.seen[1].url.path == CLAUDE_PATH.replace("us-east5", "europe-west1")
    assert upstream.seen[1].headers["authorization"] == "Bearer ya29.client"
    assert out.status == 200 and b"Paris" in out.body
    assert [e["kind"] for e in job.notes] == ["retry"]


async def test_without_regions_a_throttled_request_backs_off_where_it_called():
    upstream = Upstream([throttled, claude_stream])

    out, _ = await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream, headers(EAST, ("authorization", "Bearer t")),
                            config="{}")

    assert [urlsplit(str(r.url)).netloc for r in upstream.seen] == [EAST, EAST]
    assert upstream.at[1] - upstream.at[0] >= 0.2  # (backed off: no Retry-After to go by)
    assert out.status == 200


@pytest.fixture(scope="module")
def accounts():
    return CloudAccounts()


def key_files(accounts: CloudAccounts, tmp_path, *projects: str) -> list[str]:
    return [str(accounts.service_account(p).write(tmp_path / f"sa-{p}.json")) for p in projects]


def vertex_platform(accounts: CloudAccounts, answer=claude_stream):
    """The token endpoint (checking each assertion) and Vertex (checking each token's project)."""
    def step(request: httpx.Request) -> httpx.Response:
        if request.url.host == "oauth2.googleapis.com":
            status, body = accounts.token_endpoint(request.content)
            return httpx.Response(status, json=body)
        grant = accounts.grant(request.headers.get("authorization", "").removeprefix("Bearer "))
        project = request.url.path.split("/")[3]
        if grant is None or grant.project != project:
            return httpx.Response(401 if grant is None else 403, json=google_error(401, "denied"))
        return answer(request)
    return step


async def test_service_accounts_tokens_are_minted_and_each_request_goes_with_its_accounts_project(accounts,
                                                                                                   tmp_path):
    a, b = key_files(accounts, tmp_path, "proj-a", "proj-b")
    config = f"providers: {{vertex: {{keys: [{{service_account: '{a}'}}, {{service_account: '{b}'}}]}}}}"
    upstream = Upstream([vertex_platform(accounts)])
    rt = router(config)
    plugins = plugins_for(Setting(rt.config, router=rt))  # (an engine's: its tokens kept across requests)

    for n in range(3):  # (three conversations: the pool spreads new ones over its accounts)
        body = {**CLAUDE_BODY, "messages": [{"role": "user", "content": f"conversation {n}"}]}
        out, job = await exchange(EAST, CLAUDE_PATH, body, upstream, headers(EAST), router=rt, plugins=plugins)
        assert out.status == 200, out.body

    calls = [r for r in upstream.seen if r.url.host == EAST]
    assert [r.url.path.split("/")[3] for r in calls] == ["proj-a", "proj-b", "proj-a"]
    assert [r.url.host for r in upstream.seen].count("oauth2.googleapis.com") == 2  # (one token each, kept)
    assert job.key is not None and "ya29" not in job.key


async def test_a_token_refused_with_401_is_minted_again_and_the_account_kept(accounts, tmp_path):
    [a] = key_files(accounts, tmp_path, "proj-a")
    config = f"providers: {{vertex: {{keys: [{{service_account: '{a}'}}]}}}}"
    platform = vertex_platform(accounts)
    refused = []

    def once_expired(request: httpx.Request) -> httpx.Response:
        if request.url.host == EAST and not refused:
            refused.append(request)
            return httpx.Response(401, json=google_error(401, "expired", "ACCESS_TOKEN_EXPIRED"))
        return platform(request)

    upstream = Upstream([once_expired])
    out, _ = await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream, headers(EAST), config=config)

    assert out.status == 200
    assert [r.url.host for r in upstream.seen] == ["oauth2.googleapis.com", EAST, "oauth2.googleapis.com", EAST]
    tokens = [r.headers["authorization"] for r in upstream.seen if r.url.host == EAST]
    assert tokens[0] != tokens[1]


async def test_a_key_file_the_endpoint_refuses_puts_its_account_out_and_another_serves(accounts, tmp_path):
    a, b = key_files(accounts, tmp_path, "proj-a", "proj-b")
    forged = tmp_path / "forged.json"
    info = json.loads(Path(a).read_text())
    forged.write_text(json.dumps({**info, "private_key": json.loads(Path(b).read_text())["private_key"]}))
    config = f"providers: {{vertex: {{keys: [{{service_account: '{forged}'}}, {{service_account: '{b}'}}]}}}}"
    upstream = Upstream([vertex_platform(accounts)])

    out, _ = await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream, headers(EAST), config=config)

    assert out.status == 200
    [call] = [r for r in upstream.seen if r.url.host == EAST]
    assert call.url.path.split("/")[3] == "proj-b"


AZURE_A, AZURE_B = "res-a.openai.azure.com", "res-b.openai.azure.com"
AZURE_CONFIG = """
providers:
  azure:
    keys:
      - {key: azure-key-a, endpoint: https://res-a.openai.azure.com, deployments: {gpt-5.1: prod-a}}
      - {key: azure-key-b, endpoint: https://res-b.openai.azure.com, deployments: {gpt-5.1: prod-b}}
"""


def azure_answer(request: httpx.Request) -> httpx.Response:
    if request.url.host == AZURE_A:
        return httpx.Response(429, headers={"retry-after-ms": "20000"}, json={"error": {"code": "429", "message": "x"}})
    return sse(CHAT_CHUNKS)


async def test_an_azure_request_throttled_at_one_resource_goes_to_the_other_keys_resource_and_deployment():
    upstream = Upstream([azure_answer])
    body = {"model": "prod-a", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    out, job = await exchange(AZURE_A, "/openai/deployments/prod-a/chat/completions?api-version=2024-10-21", body,
                              upstream, headers(AZURE_A, ("api-key", "client-key")), config=AZURE_CONFIG)

    assert [(r.url.host, r.url.path, r.headers["api-key"]) for r in upstream.seen] == [
        (AZURE_A, "/openai/deployments/prod-a/chat/completions", "azure-key-a"),
        (AZURE_B, "/openai/deployments/prod-b/chat/completions", "azure-key-b")]
    assert upstream.seen[1].url.params["api-version"] == "2024-10-21"
    assert json.loads(upstream.seen[1].content)["model"] == "prod-b"
    assert out.status == 200 and b"Hi" in out.body and job.model == "gpt-5.1"


async def test_an_azure_responses_request_names_the_other_resources_deployment_in_its_body():
    upstream = Upstream([azure_answer])
    body = {"model": "prod-a", "input": "hi", "stream": True}

    await exchange(AZURE_A, "/openai/responses?api-version=2025-04-01-preview", body, upstream,
                   headers(AZURE_A, ("authorization", "Bearer client-key")), config=AZURE_CONFIG)

    assert [(r.url.host, r.url.path, json.loads(r.content)["model"]) for r in upstream.seen] == [
        (AZURE_A, "/openai/responses", "prod-a"), (AZURE_B, "/openai/responses", "prod-b")]
    assert "authorization" not in upstream.seen[1].headers


async def test_a_platform_without_keys_is_not_asked_for_another_providers_client():
    config = "providers: {anthropic: {base_url: 'http://anthropic.test', keys: [sk-a]}}\n" \
             "routes: [{models: ['claude-*'], targets: [vertex, anthropic]}]"
    upstream = Upstream([claude_stream])
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True, "messages": [{"role": "user",
                                                                                          "content": "hi"}]}

    out, _ = await exchange("api.anthropic.com", "/v1/messages", body, upstream,
                            headers("api.anthropic.com", ("x-api-key", "sk-client")), config=config)

    assert [r.url.host for r in upstream.seen] == ["anthropic.test"]
    assert out.status == 200


async def test_a_throttled_vertex_claude_request_is_answered_by_anthropic_through_a_route():
    config = "providers: {anthropic: {base_url: 'http://anthropic.test', keys: [sk-a]}}\n" \
             "routes: [{from: vertex, targets: [vertex, anthropic/claude-sonnet-4-5]}]"
    upstream = Upstream([lambda r: throttled(r) if r.url.host == EAST else claude_stream(r)])

    out, job = await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream, headers(
        EAST, ("authorization", "Bearer ya29.client"), ("anthropic-version", "2023-06-01")), config=config)

    assert out.status == 200 and b"Paris" in out.body
    sent = upstream.seen[-1]
    assert (sent.url.host, sent.url.path) == ("anthropic.test", "/v1/messages")
    assert sent.headers["x-api-key"] == "sk-a" and "authorization" not in sent.headers
    assert json.loads(sent.content) == {"model": "claude-sonnet-4-5", **{k: v for k, v in CLAUDE_BODY.items()
                                                                         if k != "anthropic_version"}}
    assert [e["kind"] for e in job.notes] == ["retry", "fallback"]


async def test_a_configured_base_url_is_kept_and_only_the_location_moves():
    upstream = Upstream([throttled, claude_stream])

    await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream, headers(EAST, ("authorization", "Bearer t")),
                   config="providers: {vertex: {base_url: 'http://vertex.test', regions: [us-east5, europe-west1]}}")

    assert [str(r.url) for r in upstream.seen] == [f"http://vertex.test{CLAUDE_PATH}",
                                                  f"http://vertex.test{CLAUDE_PATH.replace('us-east5', 'europe-west1')}"]


async def test_an_anthropic_client_routed_to_vertex_gets_its_call_in_vertexs_shape_for_the_accounts_project(
        accounts, tmp_path):
    [b] = key_files(accounts, tmp_path, "proj-b")
    config = (f"providers: {{vertex: {{keys: [{{service_account: '{b}'}}], regions: [europe-west1, global]}}}}\n"
              "routes: [{models: ['claude-*'], targets: ['vertex/claude-sonnet-4-5@20250929']}]")
    upstream = Upstream([vertex_platform(accounts)])
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}

    out, _ = await exchange("api.anthropic.com", "/v1/messages", body, upstream,
                            headers("api.anthropic.com", ("x-api-key", "sk-ant-client"),
                                    ("anthropic-version", "2023-06-01")), config=config)

    assert out.status == 200 and b"Paris" in out.body
    call = upstream.seen[-1]
    assert str(call.url) == (f"https://{EUROPE}/v1/projects/proj-b/locations/europe-west1/publishers/anthropic/models/"
                             "claude-sonnet-4-5@20250929:streamRawPredict")
    assert json.loads(call.content) == {"anthropic_version": "vertex-2023-10-16", "max_tokens": 64, "stream": True,
                                        "messages": body["messages"]}
    assert "x-api-key" not in call.headers  # (the client's Anthropic key stays with Anthropic)


async def test_an_openai_client_routed_to_azure_gets_the_v1_api_at_the_keys_resource_and_deployment():
    config = AZURE_CONFIG + "routes: [{models: ['gpt-5.1'], targets: [azure]}]\n"
    upstream = Upstream([lambda r: sse(CHAT_CHUNKS)])
    body = {"model": "gpt-5.1", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    out, _ = await exchange("api.openai.com", "/v1/chat/completions", body, upstream,
                            headers("api.openai.com", ("authorization", "Bearer sk-client")), config=config)

    assert out.status == 200 and b"Hi" in out.body
    [call] = upstream.seen
    assert (call.url.host, call.url.path, call.headers["api-key"]) == (AZURE_A, "/openai/v1/chat/completions",
                                                                       "azure-key-a")
    assert json.loads(call.content)["model"] == "prod-a" and "authorization" not in call.headers


async def test_a_conversation_stays_on_its_project(accounts, tmp_path):
    a, b = key_files(accounts, tmp_path, "proj-a", "proj-b")
    rt = router(f"providers: {{vertex: {{keys: [{{service_account: '{a}'}}, {{service_account: '{b}'}}]}}}}")
    plugins = plugins_for(Setting(rt.config, router=rt))
    upstream = Upstream([vertex_platform(accounts)])
    long = "Read this first. " * 800  # (a prompt worth caching: shorter ones are placed afresh each turn)
    turn = {**CLAUDE_BODY, "system": long, "messages": [{"role": "user", "content": "hi"}]}

    for _ in range(3):
        out, _ = await exchange(EAST, CLAUDE_PATH, turn, upstream, headers(EAST), router=rt, plugins=plugins)
        assert out.status == 200

    assert {r.url.path.split("/")[3] for r in upstream.seen if r.url.host == EAST} == {"proj-a"}


async def test_an_sdk_vertex_claude_call_routed_to_anthropic_gets_the_version_header_anthropic_requires():
    # (the anthropic SDK's AnthropicVertex sends no `anthropic-version` header: its version is in the body, for Vertex)
    config = "providers: {anthropic: {base_url: 'http://anthropic.test', keys: [sk-a]}}\n" \
             "routes: [{from: vertex, targets: [vertex, anthropic/claude-sonnet-4-5]}]"
    upstream = Upstream([lambda r: throttled(r) if r.url.host == EAST else claude_stream(r)])

    out, _ = await exchange(EAST, CLAUDE_PATH, CLAUDE_BODY, upstream,
                            headers(EAST, ("authorization", "Bearer ya29.client")), config=config)

    sent = upstream.seen[-1]
    assert sent.url.host == "anthropic.test" and sent.headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-version" not in upstream.seen[0].headers  # (the platform's call as it came)
    assert out.status == 200
