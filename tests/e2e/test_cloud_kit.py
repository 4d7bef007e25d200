"""The cloud test kit end to end (tests/support/cloud_kit.py): the official cloud SDKs and the real agent CLIs in their
Vertex and Azure modes, through a real `mitmdump -s addons/rotator.py`, reach the fake platform at the clouds' real
hostnames inside a private namespace. Rotator serves these hosts (rewrite/providers/vertex.py, azure.py) with the
client's own credential: each test shows the path works and the fake saw the request as the platform would (host,
path, credential); what Rotator repairs there is tests/e2e/test_cloud_platforms.py's.

Needs root (unshare -m -n); the CLIs are installed by scripts/setup-agents and scripts/setup-codex, else skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cloud_agents import run_claude_vertex, run_codex_azure, run_gemini_vertex
from tests.support.cloud_faults import CloudFault, vertex_exhausted
from tests.support.cloud_kit import AZURE_A, AZURE_KEYS, PROJECT_A, PROJECT_B, VERTEX_EAST, VERTEX_EUROPE
from tests.support.fake_vendor import TEXT
from tests.support.flows import read_flows

pytestmark = pytest.mark.e2e

OAUTH = "oauth2.googleapis.com"


def test_inside_the_namespace_the_real_names_are_loopback_and_outside_they_are_not(cloud):
    proxy = cloud.rotator()
    inside = cloud.net.run(["getent", "hosts", VERTEX_EAST, AZURE_A], env=cloud.client_env(proxy))

    assert inside.returncode == 0, inside.stderr
    assert {line.split()[0] for line in inside.stdout.splitlines()} == {"127.0.0.1"}
    assert VERTEX_EAST not in Path("/etc/hosts").read_text()


def test_anthropic_vertex_with_a_service_account_key_gets_its_token_and_answer(cloud):
    proxy = cloud.rotator()

    seen = cloud.sdk(proxy, "anthropic_vertex", project=PROJECT_A, region="us-east5",
                     credentials=str(cloud.key_file(PROJECT_A)))

    assert seen.get("text") == TEXT, seen
    token_call, call = cloud.fake.at(OAUTH)[0], cloud.fake.at(VERTEX_EAST)[0]
    assert token_call.path == "/token" and token_call.status == 200
    assert call.path == ("/v1/projects/proj-a/locations/us-east5/publishers/anthropic/models/"
                         "claude-sonnet-4-5@20250929:streamRawPredict")
    assert "model" not in call.body and call.body["stream"] is True and call.body["anthropic_version"]
    grant = cloud.accounts.grant(call.credential)
    assert (grant.project, grant.via) == (PROJECT_A, "oauth2")  # the token the assertion got, for its project


def test_a_service_account_of_another_project_is_refused_in_googles_words(cloud):
    proxy = cloud.rotator()

    seen = cloud.sdk(proxy, "anthropic_vertex", project=PROJECT_A, region="us-east5",
                     credentials=str(cloud.key_file(PROJECT_B)))

    assert seen["status"] == 403 and seen["body"]["error"]["status"] == "PERMISSION_DENIED", seen
    assert cloud.fake.at(VERTEX_EAST)[0].status == 403


def test_google_genai_on_vertex_streams_from_its_regions_host(cloud):
    proxy = cloud.rotator()

    seen = cloud.sdk(proxy, "genai_vertex", project=PROJECT_A, location="europe-west1",
                     credentials=str(cloud.key_file(PROJECT_A)))

    assert seen.get("text") == TEXT, seen
    call = cloud.fake.at(VERTEX_EUROPE)[0]
    assert (call.path, call.params) == ("/v1beta1/projects/proj-a/locations/europe-west1/publishers/google/models/"
                                        "gemini-2.5-flash:streamGenerateContent", {"alt": "sse"})
    assert cloud.accounts.grant(call.credential).project == PROJECT_A


def test_a_429_scripted_for_a_region_is_backed_off_and_asked_again_there(cloud):
    proxy = cloud.rotator()
    cloud.fake.script(vertex_exhausted(), host=VERTEX_EAST)

    seen = cloud.sdk(proxy, "anthropic_vertex", project=PROJECT_A, region="us-east5",
                     credentials=str(cloud.key_file(PROJECT_A)))

    assert seen.get("text") == TEXT, seen
    assert [r.status for r in cloud.fake.at(VERTEX_EAST)] == [429, 200]


def test_azure_openai_streams_with_its_filter_frame_from_the_resource(cloud):
    proxy = cloud.rotator()

    seen = cloud.sdk(proxy, "azure_chat", endpoint=f"https://{AZURE_A}", api_key=AZURE_KEYS[AZURE_A],
                     deployment="gpt-4o-deploy")

    assert seen.get("text") == TEXT, seen
    assert seen["first_choices"] == [] and seen["prompt_filter_results"]
    assert seen["model"] == "gpt-4o-2024-11-20" and seen["finish"] == "stop"
    call = cloud.fake.at(AZURE_A)[0]
    assert (call.path, call.params) == ("/openai/deployments/gpt-4o-deploy/chat/completions",
                                        {"api-version": "2024-10-21"})
    assert (call.credential_source, call.credential) == ("api-key", AZURE_KEYS[AZURE_A])


def test_azure_responses_answers_naming_the_deployments_model_and_the_proxy_saves_the_flow(cloud, tmp_path):
    saved = tmp_path / "flows"
    proxy = cloud.rotator(fresh=True, args=("--save-stream-file", str(saved)))

    seen = cloud.sdk(proxy, "azure_responses", endpoint=f"https://{AZURE_A}", api_key=AZURE_KEYS[AZURE_A],
                     deployment="gpt-5-deploy")

    assert seen.get("text") == TEXT and seen["model"] == "gpt-5-2025-08-07", seen
    call = cloud.fake.at(AZURE_A)[0]
    assert (call.path, call.params, call.body["model"]) == ("/openai/responses",
                                                            {"api-version": "2025-04-01-preview"}, "gpt-5-deploy")
    proxy.proc.stop()  # (the saved flows are complete once mitmdump has ended)
    [flow] = read_flows(saved)
    assert (flow.request.pretty_host, flow.request.path) == (AZURE_A, "/openai/responses?api-version=2025-04-01-preview")
    assert flow.response.status_code == 200


def test_a_content_filter_ending_reaches_the_client_as_it_came(cloud):
    proxy = cloud.rotator()
    cloud.fake.script(CloudFault.filtered(deltas=2), host=AZURE_A)

    seen = cloud.sdk(proxy, "azure_chat", endpoint=f"https://{AZURE_A}", api_key=AZURE_KEYS[AZURE_A],
                     deployment="gpt-4o-deploy")

    assert seen.get("finish") == "content_filter" and seen["text"] == "Hello from", seen


def test_claude_code_on_vertex_answers_with_the_metadata_servers_token(cloud, claude_bin, tmp_path):
    proxy = cloud.rotator()

    done = run_claude_vertex(cloud, proxy, claude_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    streamed = [r for r in cloud.fake.at(VERTEX_EAST) if r.path.endswith(":streamRawPredict")]
    assert streamed and streamed[0].path.startswith("/v1/projects/proj-a/locations/us-east5/publishers/anthropic/")
    grant = cloud.accounts.grant(streamed[0].credential)
    assert (grant.project, grant.via) == (PROJECT_A, "metadata")
    assert any(r.path.endswith("/service-accounts/default/token") for r in cloud.metadata.requests)


def test_gemini_cli_on_vertex_answers(cloud, gemini_bin, tmp_path):
    proxy = cloud.rotator()

    done = run_gemini_vertex(cloud, proxy, gemini_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    streamed = [r for r in cloud.fake.at(VERTEX_EAST) if r.path.endswith(":streamGenerateContent")]
    assert streamed and streamed[0].path.startswith("/v1beta1/projects/proj-a/locations/us-east5/")
    assert cloud.accounts.grant(streamed[0].credential).via == "metadata"


def test_codex_with_an_azure_provider_answers(cloud, codex_bin, tmp_path):
    proxy = cloud.rotator()

    done = run_codex_azure(cloud, proxy, codex_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    call = cloud.fake.at(AZURE_A)[0]
    assert (call.path, call.params["api-version"], call.body["model"]) == ("/openai/responses", "2025-04-01-preview",
                                                                           "gpt-5-deploy")
    assert (call.credential_source, call.credential) == ("authorization", AZURE_KEYS[AZURE_A])
