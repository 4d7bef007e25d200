"""The fake cloud platform on its own (tests/support/fake_cloud.py), over plain HTTP with the real host in `Host`: its
identities (a service account's signed assertion, the metadata server, Azure keys and deployments per resource), its
refusals in each platform's words, Azure's filter frames and the platforms' content-filter endings, and faults
chosen by host."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from google.oauth2 import service_account

from tests.support import cloud_net
from tests.support.cloud_auth import CLOUD_PLATFORM_SCOPE, JWT_BEARER, CloudAccounts
from tests.support.cloud_faults import AZURE_REMAINING_UNKNOWN, CloudFault, azure_throttled, vertex_exhausted
from tests.support.fake_cloud import FakeCloud
from tests.support.fake_vendor import TEXT, Fault

OAUTH, METADATA = "oauth2.googleapis.com", "metadata.google.internal"
EAST, EUROPE = "us-east5-aiplatform.googleapis.com", "europe-west1-aiplatform.googleapis.com"
AZURE_A, AZURE_B, FOUNDRY = "res-a.openai.azure.com", "res-b.openai.azure.com", "myres.services.ai.azure.com"
CLAUDE_PATH = "/v1/projects/{}/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:{}"
GEMINI_PATH = "/v1beta1/projects/{}/locations/europe-west1/publishers/google/models/gemini-2.5-flash:{}"
CHAT_PATH = "/openai/deployments/{}/chat/completions?api-version=2024-10-21"
PROMPT = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def platform():
    cloud = FakeCloud().start()
    cloud.http = httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))  # (reset drops busy ones)
    accounts = cloud.accounts
    cloud.sa_a, cloud.sa_b = accounts.service_account("proj-a"), accounts.service_account("proj-b")
    accounts.on_metadata_server(cloud.sa_a)
    accounts.azure(AZURE_A, ["key-a"], {"gpt-4o-deploy": "gpt-4o-2024-11-20"})
    accounts.azure(AZURE_B, ["key-b"], {"gpt-4o-eu": "gpt-4o-2024-11-20"})
    accounts.azure(FOUNDRY, ["foundry-key"], {"claude-opus-4-6": "claude-opus-4-6"})
    yield cloud
    cloud.http.close()
    cloud.stop()


@pytest.fixture
def cloud(platform):
    platform.reset()
    yield platform
    platform.reset()


def post(cloud: FakeCloud, host: str, path: str, body: object = None, headers: dict | None = None,
         data: dict | None = None) -> httpx.Response:
    return cloud.http.post(cloud.url + path, json=body, data=data, headers={"host": host, **(headers or {})})


def assertion(account) -> str:
    creds = service_account.Credentials.from_service_account_info(account.info(), scopes=[CLOUD_PLATFORM_SCOPE])
    signed = creds._make_authorization_grant_assertion()  # what google-auth sends to the token endpoint
    return signed.decode() if isinstance(signed, bytes) else signed


def token(cloud: FakeCloud, account) -> str:
    answer = post(cloud, OAUTH, "/token", data={"grant_type": JWT_BEARER, "assertion": assertion(account)})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def claude_body(**extra) -> dict:
    return {"anthropic_version": "vertex-2023-10-16", "max_tokens": 50, "messages": PROMPT, **extra}


def data_lines(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


def test_a_service_accounts_signed_assertion_gets_a_token_that_calls_vertex_for_its_project(cloud):
    bearer = {"authorization": f"Bearer {token(cloud, cloud.sa_a)}"}

    answer = post(cloud, EAST, CLAUDE_PATH.format("proj-a", "rawPredict"), claude_body(), bearer)

    assert answer.status_code == 200 and answer.json()["content"][0]["text"] == TEXT
    grant = cloud.accounts.grant(bearer["authorization"][7:])
    assert (grant.project, grant.via) == ("proj-a", "oauth2")


def test_an_assertion_signed_with_another_accounts_key_is_refused(cloud):
    forged = {**cloud.sa_a.info(), "private_key": cloud.sa_b.info()["private_key"]}  # proj-a's name, proj-b's key
    creds = service_account.Credentials.from_service_account_info(forged, scopes=[CLOUD_PLATFORM_SCOPE])
    signed = creds._make_authorization_grant_assertion()

    answer = post(cloud, OAUTH, "/token", data={"grant_type": JWT_BEARER, "assertion": signed.decode()})

    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}


def test_a_token_is_refused_on_another_projects_path_and_an_unknown_token_anywhere(cloud):
    bearer = {"authorization": f"Bearer {token(cloud, cloud.sa_a)}"}

    foreign = post(cloud, EAST, CLAUDE_PATH.format("proj-b", "rawPredict"), claude_body(), bearer)
    unknown = post(cloud, EAST, CLAUDE_PATH.format("proj-a", "rawPredict"), claude_body(),
                   {"authorization": "Bearer ya29.made-up"})
    api_key = post(cloud, EAST, CLAUDE_PATH.format("proj-a", "rawPredict"), claude_body(), {"x-goog-api-key": "k"})

    assert foreign.status_code == 403 and foreign.json()["error"]["status"] == "PERMISSION_DENIED"
    assert "projects/proj-b/locations/us-east5" in foreign.json()["error"]["message"]
    assert unknown.status_code == 401 and unknown.json()["error"]["status"] == "UNAUTHENTICATED"
    assert api_key.status_code == 401 and "API keys are not supported" in api_key.json()["error"]["message"]


def test_vertexs_anthropic_body_must_not_name_the_model_and_must_carry_anthropic_version(cloud):
    bearer = {"authorization": f"Bearer {cloud.accounts.mint(cloud.sa_a).token}"}
    path = CLAUDE_PATH.format("proj-a", "rawPredict")

    named = post(cloud, EAST, path, claude_body(model="claude-sonnet-4-5"), bearer)
    unversioned = post(cloud, EAST, path, {"max_tokens": 50, "messages": PROMPT}, bearer)

    assert named.status_code == 400 and "model: Extra inputs" in named.json()["error"]["message"]
    assert unversioned.status_code == 400 and "anthropic_version" in unversioned.json()["error"]["message"]


def test_the_metadata_server_wants_its_header_and_mints_tokens_for_the_vms_account(cloud):
    url = f"{cloud.url}/computeMetadata/v1/instance/service-accounts/default/token"

    refused = cloud.http.get(url, headers={"host": METADATA, "metadata-flavor": "nope"})
    minted = cloud.http.get(url, headers={"host": METADATA, "metadata-flavor": "Google"})
    project = cloud.http.get(f"{cloud.url}/computeMetadata/v1/project/project-id",
                        headers={"host": METADATA, "metadata-flavor": "Google"})

    assert refused.status_code == 403
    assert minted.status_code == 200 and minted.headers["metadata-flavor"] == "Google"
    assert cloud.accounts.grant(minted.json()["access_token"]).project == "proj-a" == project.text


def test_azure_keys_and_deployments_belong_to_their_resource(cloud):
    chat = {"messages": PROMPT}

    other_key = post(cloud, AZURE_A, CHAT_PATH.format("gpt-4o-deploy"), chat, {"api-key": "key-b"})
    other_deployment = post(cloud, AZURE_A, CHAT_PATH.format("gpt-4o-eu"), chat, {"api-key": "key-a"})
    no_version = post(cloud, AZURE_A, "/openai/deployments/gpt-4o-deploy/chat/completions", chat, {"api-key": "key-a"})
    v1_bearer = post(cloud, AZURE_B, "/openai/v1/chat/completions", {**chat, "model": "gpt-4o-eu"},
                     {"authorization": "Bearer key-b"})

    assert other_key.status_code == 401 and "Access denied" in other_key.json()["error"]["message"]
    assert other_deployment.status_code == 404 and other_deployment.json()["error"]["code"] == "DeploymentNotFound"
    assert no_version.status_code == 404
    assert v1_bearer.status_code == 200 and v1_bearer.json()["model"] == "gpt-4o-2024-11-20"
    assert v1_bearer.json()["prompt_filter_results"][0]["prompt_index"] == 0


def test_an_azure_chat_stream_opens_with_the_prompt_filter_frame_as_the_sdk_sees_it(cloud):
    client = openai.AzureOpenAI(azure_endpoint=cloud.url, api_key="key-a", api_version="2024-10-21", max_retries=0,
                                default_headers={"host": AZURE_A})

    chunks = list(client.chat.completions.create(model="gpt-4o-deploy", messages=PROMPT, stream=True))

    assert chunks[0].choices == [] and chunks[0].model_extra["prompt_filter_results"]
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(c.choices[0].delta.content for c in content) == TEXT
    assert all(c.choices[0].model_extra["content_filter_results"]["hate"]["filtered"] is False for c in content)
    assert {c.model for c in chunks[1:]} == {"gpt-4o-2024-11-20"}  # the deployment's model, not its name
    assert cloud.requests[0].credential_source == "api-key"


@pytest.mark.parametrize("where", ["chat", "responses", "gemini", "anthropic"])
def test_a_filtered_answer_ends_as_its_platform_ends_it(cloud, where):
    bearer = {"authorization": f"Bearer {cloud.accounts.mint(cloud.sa_a).token}"}
    host, path, body, headers = {
        "chat": (AZURE_A, CHAT_PATH.format("gpt-4o-deploy"), {"messages": PROMPT, "stream": True}, {"api-key": "key-a"}),
        "responses": (AZURE_A, "/openai/responses?api-version=2025-04-01-preview",
                      {"model": "gpt-4o-deploy", "input": "hi", "stream": True}, {"api-key": "key-a"}),
        "gemini": (EUROPE, GEMINI_PATH.format("proj-a", "streamGenerateContent") + "?alt=sse",
                   {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, bearer),
        "anthropic": (EAST, CLAUDE_PATH.format("proj-a", "streamRawPredict"), claude_body(stream=True), bearer),
    }[where]
    cloud.script(CloudFault.filtered(deltas=2))

    events = [json.loads(d) for d in data_lines(post(cloud, host, path, body, headers).text) if d != "[DONE]"]
    data = data_lines(cloud.requests[0].sent.decode())

    assert data[-1] != "[DONE]"
    last = events[-1]
    if where == "chat":
        assert last["choices"][0]["finish_reason"] == "content_filter"
        assert last["choices"][0]["content_filter_results"]["violence"]["filtered"] is True
    elif where == "responses":
        assert (last["type"], last["response"]["error"]["code"]) == ("response.failed", "content_filter")
    elif where == "gemini":
        assert last["candidates"][0]["finishReason"] == "SAFETY"
    else:
        assert [e["type"] for e in events[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
        assert events[-2]["delta"]["stop_reason"] == "refusal"
    assert cloud.requests[0].outcome == "complete"


def test_azures_asynchronous_filter_sends_annotation_frames_without_a_delta(cloud):
    cloud.script(CloudFault.async_filter())

    answer = post(cloud, AZURE_A, CHAT_PATH.format("gpt-4o-deploy"), {"messages": PROMPT, "stream": True},
                  {"api-key": "key-a"})

    frames = [json.loads(d) for d in data_lines(answer.text) if d != "[DONE]"]
    notes = [f for f in frames if f["choices"] and "content_filter_offsets" in f["choices"][0]]
    assert notes and all("delta" not in f["choices"][0] for f in notes)
    assert notes[-1]["choices"][0]["content_filter_offsets"]["end_offset"] == len(TEXT)
    assert data_lines(answer.text)[-1] == "[DONE]"


def test_a_fault_scripted_for_one_region_spares_the_others(cloud):
    bearer = {"authorization": f"Bearer {cloud.accounts.mint(cloud.sa_a).token}"}
    cloud.script(vertex_exhausted(), host=EAST)

    europe = post(cloud, EUROPE, GEMINI_PATH.format("proj-a", "generateContent"),
                  {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, bearer)
    east = post(cloud, EAST, CLAUDE_PATH.format("proj-a", "rawPredict"), claude_body(), bearer)

    assert europe.status_code == 200
    assert east.status_code == 429 and east.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "retry-after" not in east.headers
    assert [r.status for r in cloud.at(EAST)] == [429] and cloud.pending == 0


def test_throttling_and_errors_come_in_each_platforms_shape(cloud):
    bearer = {"authorization": f"Bearer {cloud.accounts.mint(cloud.sa_a).token}"}
    chat = (AZURE_A, CHAT_PATH.format("gpt-4o-deploy"), {"messages": PROMPT}, {"api-key": "key-a"})
    cloud.script(azure_throttled(6), Fault.status(500), CloudFault.with_headers(AZURE_REMAINING_UNKNOWN))
    cloud.script(Fault.status(503), host=EAST)

    throttled, failed, unknown = (post(cloud, *chat) for _ in range(3))
    vertex = post(cloud, EAST, CLAUDE_PATH.format("proj-a", "rawPredict"), claude_body(), bearer)

    assert throttled.status_code == 429 and "retry after 6 seconds" in throttled.json()["error"]["message"]
    assert (throttled.headers["retry-after"], throttled.headers["retry-after-ms"]) == ("6", "6000")
    assert failed.json() == {"error": {"code": "500", "message": "fake cloud: HTTP 500"}}
    assert unknown.status_code == 200 and unknown.headers["x-ratelimit-remaining-requests"] == "-1"
    assert vertex.status_code == 503 and vertex.json()["error"]["status"] == "UNAVAILABLE"


def test_azure_responses_fails_in_the_stream_with_response_failed(cloud):
    cloud.script(Fault.error_after(deltas=1))

    answer = post(cloud, AZURE_A, "/openai/v1/responses", {"model": "gpt-4o-deploy", "input": "hi", "stream": True},
                  {"authorization": "Bearer key-a"})

    last = json.loads(data_lines(answer.text)[-1])
    assert (last["type"], last["response"]["error"]["code"]) == ("response.failed", "server_error")
    assert last["response"]["model"] == "gpt-4o-2024-11-20"


def test_foundrys_anthropic_path_takes_its_deployment_and_key(cloud):
    client = anthropic.AnthropicFoundry(api_key="foundry-key", base_url=f"{cloud.url}/anthropic", max_retries=0,
                                        default_headers={"host": FOUNDRY})

    message = client.messages.create(model="claude-opus-4-6", max_tokens=50, messages=PROMPT)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=PROMPT)

    assert message.content[0].text == TEXT
    assert cloud.requests[0].path == "/anthropic/v1/messages" and cloud.requests[0].dialect == "foundry"


def test_accounts_are_shared_by_the_servers_that_hold_them():
    accounts = CloudAccounts()
    account = accounts.service_account("proj-x")
    grant = accounts.mint(account, lifetime=-1)  # already expired

    assert accounts.grant(grant.token) is None
    assert account.info()["token_uri"] == "https://oauth2.googleapis.com/token"


def test_the_kit_says_why_it_cannot_make_a_namespace_without_root(monkeypatch):
    monkeypatch.setattr(cloud_net.os, "geteuid", lambda: 1000)

    assert "needs root" in (cloud_net.unavailable() or "")


def test_vertex_express_mode_takes_a_registered_api_key_on_its_project_less_path(cloud):
    cloud.accounts.express_key("express-key", "proj-a")
    path = "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

    known = post(cloud, "aiplatform.googleapis.com", path, body, {"x-goog-api-key": "express-key"})
    unknown = post(cloud, "aiplatform.googleapis.com", path, body, {"x-goog-api-key": "other"})

    assert known.status_code == 200 and known.json()["candidates"][0]["content"]["parts"][0]["text"] == TEXT
    assert unknown.status_code == 400 and unknown.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
