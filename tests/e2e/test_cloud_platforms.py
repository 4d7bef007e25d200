"""Vertex AI and Azure OpenAI served like the vendors' own APIs (issue 36), end to end: the official SDKs' cloud
clients (AnthropicVertex, google-genai with vertexai=True, AzureOpenAI) and the real agent CLIs in their cloud modes
(Claude Code and Gemini CLI on Vertex, Codex with an Azure provider), through a real `mitmdump -s addons/rotator.py`
that intercepts the clouds' real hostnames, against the fake platform (tests/support/cloud_kit.py): a stalled first
token retried without the client seeing it, a cut stream continued or ended in the protocol's own terms, Azure's
filter frame before a stall (no first token, for the watchdog as for a hedge), a content-filtered ending left alone,
a 429 moved to the next resource or region, service accounts' tokens minted by Rotator for each request's project, a
throttled request answered by another vendor through a route.

Needs root (unshare -m -n); the CLIs are installed by scripts/setup-agents and scripts/setup-codex, else skipped.
"""

from __future__ import annotations

import json

import pytest

from tests.support import reliability
from tests.support.cloud_agents import run_claude_vertex, run_codex_azure, run_gemini_vertex
from tests.support.cloud_faults import CloudFault, azure_throttled, vertex_exhausted
from tests.support.cloud_kit import (
    AZURE_A,
    AZURE_B,
    AZURE_KEYS,
    DEPLOYMENTS,
    PROJECT_A,
    PROJECT_B,
    VERTEX_EAST,
    VERTEX_EUROPE,
    VERTEX_GLOBAL,
)
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.views import shown

pytestmark = pytest.mark.e2e

OAUTH = "oauth2.googleapis.com"
FAST = {"streaming": {**reliability.FAST, "first_token_retries": 2}}
# For the tests of cuts, refusals and throttling, not of stalls: tests/support/reliability.py's watchdogs, which a
# loaded machine does not reach (a fake vendor starved past FAST's 2 s would be retried, and the retry would take
# the answer scripted for the next call).
UNHURRIED = {"streaming": {**reliability.UNHURRIED, "first_token_retries": 2}}
NO_RESUME = {**FAST, "resume": {"mode": "off"}}
CUT_NO_RESUME = {**UNHURRIED, "resume": {"mode": "off"}}
STALL = 6.0  # seconds a scripted stall lasts: longer than FAST's watchdogs
REGIONS = {**UNHURRIED, "providers": {"vertex": {"regions": ["us-east5", "europe-west1", "global"]}}}
CLAUDE_STREAM = ("/v1/projects/proj-a/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"
                 ":streamRawPredict")


def claude(cloud, proxy, **options) -> dict:
    """AnthropicVertex, its token from proj-a's key file (the client's own credential)."""
    return cloud.sdk(proxy, "anthropic_vertex", project=PROJECT_A, region=options.pop("region", "us-east5"),
                     credentials=str(cloud.key_file(PROJECT_A)), **options)


def azure_chat(cloud, proxy, **options) -> dict:
    return cloud.sdk(proxy, "azure_chat", endpoint=f"https://{AZURE_A}", api_key=options.pop("api_key", AZURE_KEYS[
        AZURE_A]), deployment=options.pop("deployment", "gpt-4o-deploy"), **options)


def status(cloud, proxy) -> dict:
    """The status page's JSON, asked through the proxy inside the namespace."""
    done = cloud.net.run(["curl", "-sS", "-x", proxy.url, "http://rotator.status/?format=json"],
                         env=cloud.client_env(proxy))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- Vertex: Claude (AnthropicVertex) and Gemini (google-genai)


def test_a_vertex_claude_turn_is_priced_and_read_in_the_llm_view_its_token_masked(cloud, tmp_path, llm_view):
    saved = tmp_path / "flows"
    proxy = cloud.rotator(UNHURRIED, fresh=True, args=("--save-stream-file", str(saved)))

    seen = claude(cloud, proxy, prompt="Say hello to Vertex")

    assert seen.get("text") == TEXT, seen
    [call] = cloud.fake.at(VERTEX_EAST)
    proxy.proc.stop()
    [flow] = [f for f in read_flows(saved) if f.request.pretty_host == VERTEX_EAST]
    record = flow.metadata["rotator"]
    assert (record["provider"], record["protocol"], record["model"]) == ("vertex", "anthropic_messages",
                                                                         "claude-sonnet-4-5@20250929")
    assert record["usage"]["output_tokens"] > 0 and record["cost"] > 0
    assert "Say hello to Vertex" in shown(flow, flow.request) and TEXT in shown(flow, flow.response)
    assert flow.request.headers["authorization"] != f"Bearer {call.credential}"  # (the client's token: masked)
    assert call.credential[-4:] in flow.request.headers["authorization"]


def test_a_stalled_first_token_on_vertex_claude_is_retried_and_the_client_sees_one_answer(cloud):
    proxy = cloud.rotator(FAST)
    cloud.fake.script(Fault.stall_after(deltas=0, seconds=STALL), host=VERTEX_EAST)

    seen = claude(cloud, proxy)

    assert seen.get("text") == TEXT and seen["finish"] == "end_turn", seen
    assert [r.status for r in cloud.fake.at(VERTEX_EAST)] == [200, 200]
    assert all("model" not in r.body and r.body["anthropic_version"] for r in cloud.fake.at(VERTEX_EAST))


def test_a_cut_vertex_claude_stream_is_continued_into_the_same_answer(cloud):
    proxy = cloud.rotator(UNHURRIED)
    cloud.fake.script(Fault.cut_after(deltas=3, how="clean"), Fault().continuing(), host=VERTEX_EAST)

    seen = claude(cloud, proxy)

    assert seen.get("text") == TEXT and seen["finish"] == "end_turn", seen
    first, rest = cloud.fake.at(VERTEX_EAST)
    assert rest.path == first.path == CLAUDE_STREAM
    assert "model" not in rest.body and rest.body["anthropic_version"] == first.body["anthropic_version"]
    assert rest.body["messages"][-1]["role"] == "assistant"  # (the prefill: what the client got, continued)


def test_a_cut_vertex_claude_stream_ends_as_max_tokens_without_resume(cloud):
    proxy = cloud.rotator(CUT_NO_RESUME)
    cloud.fake.script(Fault.cut_after(deltas=3, how="clean"), host=VERTEX_EAST)

    seen = claude(cloud, proxy)

    assert seen.get("finish") == "max_tokens" and TEXT.startswith(seen["text"]) and seen["text"] != TEXT, seen


def test_a_cut_vertex_gemini_stream_ends_as_max_tokens_and_a_stall_is_retried(cloud):
    proxy = cloud.rotator(NO_RESUME)
    cloud.fake.script(Fault.cut_after(deltas=2, how="clean"), Fault.stall_after(deltas=0, seconds=STALL),
                      host=VERTEX_EUROPE)

    cut = cloud.sdk(proxy, "genai_vertex", project=PROJECT_A, location="europe-west1",
                    credentials=str(cloud.key_file(PROJECT_A)))
    stalled = cloud.sdk(proxy, "genai_vertex", project=PROJECT_A, location="europe-west1",
                        credentials=str(cloud.key_file(PROJECT_A)))

    assert cut.get("finish") == "FinishReason.MAX_TOKENS", cut
    assert TEXT.startswith(cut["text"]) and cut["text"] != TEXT, cut
    assert stalled.get("text") == TEXT, stalled
    assert len(cloud.fake.at(VERTEX_EUROPE)) == 3


def test_a_429_in_one_region_goes_to_the_next_region_with_the_clients_token(cloud):
    proxy = cloud.rotator(REGIONS)
    cloud.fake.always(vertex_exhausted(), host=VERTEX_EAST)

    seen = claude(cloud, proxy)

    assert seen.get("text") == TEXT, seen
    [east], [europe] = cloud.fake.at(VERTEX_EAST), cloud.fake.at(VERTEX_EUROPE)
    assert (east.status, europe.status) == (429, 200)
    assert europe.path == CLAUDE_STREAM.replace("us-east5", "europe-west1")
    assert europe.credential == east.credential and cloud.accounts.grant(europe.credential).project == PROJECT_A


def test_service_accounts_tokens_are_minted_by_rotator_for_each_requests_project(cloud, tmp_path):
    keys = [{"service_account": str(cloud.key_file(p))} for p in (PROJECT_A, PROJECT_B)]
    saved = tmp_path / "flows"
    proxy = cloud.rotator({**UNHURRIED, "providers": {"vertex": {"keys": keys}}}, fresh=True,
                          args=("--save-stream-file", str(saved)))

    answers = [claude(cloud, proxy, access_token="not-a-google-token", prompt=f"conversation {n}") for n in range(3)]

    assert [a.get("text") for a in answers] == [TEXT] * 3, answers
    calls = cloud.fake.at(VERTEX_EAST)
    projects = [c.path.split("/")[3] for c in calls]
    assert sorted(projects[:2]) == [PROJECT_A, PROJECT_B]  # (new conversations spread over the accounts)
    for call, project in zip(calls, projects):
        grant = cloud.accounts.grant(call.credential)
        assert (grant.project, grant.via) == (project, "oauth2")  # each request's token is its project's own
    assert [r.status for r in cloud.fake.at(OAUTH)] == [200, 200]  # (minted once per account, then kept)
    page = status(cloud, proxy)
    [vertex] = [p for p in page["providers"] if p["name"] == "vertex"]
    assert sorted(k["total"]["requests"] for k in vertex["pool"]["keys"]) == [1, 2]
    proxy.proc.stop()
    log, flows = proxy.full_log, saved.read_bytes().decode("latin-1")
    tokens = {c.credential for c in calls}
    assert not any(t in log or t in json.dumps(page) or t in flows for t in tokens)  # (never logged nor shown)


def test_a_throttled_vertex_claude_request_is_answered_by_the_anthropic_api_through_a_route(cloud):
    proxy = cloud.rotator({**UNHURRIED, "providers": {"anthropic": {"keys": ["sk-ant-pooled"]}},
                           "routes": [{"from": "vertex", "targets": ["vertex", "anthropic/claude-sonnet-4-5"]}]})
    cloud.fake.always(vertex_exhausted(), host=VERTEX_EAST)

    seen = claude(cloud, proxy)

    assert seen.get("text") == TEXT and seen["finish"] == "end_turn", seen
    [vendor] = cloud.fake.at("api.anthropic.com")
    assert vendor.path == "/v1/messages" and vendor.body["model"] == "claude-sonnet-4-5"
    assert "anthropic_version" not in vendor.body and vendor.headers.get("x-api-key") == "sk-ant-pooled"
    assert "authorization" not in vendor.headers  # (the client's Google token stays with Google)


# --- Azure: AzureOpenAI (Chat) and Codex (Responses)


def test_a_filter_frame_then_a_stall_is_no_first_token_the_request_is_retried(cloud):
    proxy = cloud.rotator(FAST)
    baseline = azure_chat(cloud, proxy)
    cloud.fake.script(CloudFault.stall_after(deltas=0, seconds=STALL), host=AZURE_A)

    seen = azure_chat(cloud, proxy)

    assert seen.get("text") == TEXT and seen["finish"] == "stop", seen
    assert seen["first_choices"] == [] and seen["prompt_filter_results"]  # (one filter frame: the retry's)
    assert seen["chunks"] == baseline["chunks"]
    assert len(cloud.fake.at(AZURE_A)) == 3


def test_a_hedge_does_not_take_the_filter_frame_for_a_first_token_and_the_client_gets_one_of_them(cloud):
    proxy = cloud.rotator({**FAST, "streaming": {"first_token_timeout": 10},
                           "hedging": {"mode": "on", "delay": 0.5, "max_share": 1.0}})
    baseline = azure_chat(cloud, proxy)
    cloud.fake.script(CloudFault.stall_after(deltas=0, seconds=STALL), host=AZURE_A)  # its filter frame, then silence

    seen = azure_chat(cloud, proxy)

    assert seen.get("text") == TEXT and seen["chunks"] == baseline["chunks"], seen  # (one filter frame: the winner's)
    _, slow, fast = cloud.fake.at(AZURE_A)
    assert 0.45 <= fast.received_at - slow.received_at < STALL  # hedged after its delay, not waited out
    assert slow.done.wait(5) and slow.outcome == "client-gone"


def test_a_content_filter_ending_is_left_alone_neither_repaired_nor_continued(cloud):
    proxy = cloud.rotator(UNHURRIED)
    cloud.fake.script(CloudFault.filtered(deltas=2), host=AZURE_A)

    seen = azure_chat(cloud, proxy)

    assert seen.get("finish") == "content_filter" and seen["text"] == "Hello from", seen
    assert len(cloud.fake.at(AZURE_A)) == 1


def test_a_cut_azure_chat_stream_ends_as_length_without_resume(cloud):
    proxy = cloud.rotator(CUT_NO_RESUME)
    cloud.fake.script(Fault.cut_after(deltas=3, how="clean"), host=AZURE_A)

    seen = azure_chat(cloud, proxy)

    assert seen.get("finish") == "length" and TEXT.startswith(seen["text"]) and seen["text"] != TEXT, seen


def test_a_429_at_one_resource_goes_to_the_next_keys_resource_and_its_deployment(cloud):
    keys = [{"key": AZURE_KEYS[AZURE_A], "endpoint": f"https://{AZURE_A}", "deployments": {"gpt-4o": "gpt-4o-deploy"}},
            {"key": AZURE_KEYS[AZURE_B], "endpoint": f"https://{AZURE_B}", "deployments": {"gpt-4o": "gpt-4o-eu"}}]
    proxy = cloud.rotator({**UNHURRIED, "providers": {"azure": {"keys": keys}}}, fresh=True)
    cloud.fake.always(azure_throttled(30), host=AZURE_A)

    seen = azure_chat(cloud, proxy, api_key="the-clients-own-key")

    assert seen.get("text") == TEXT and seen["model"] == "gpt-4o-2024-11-20", seen
    [a], [b] = cloud.fake.at(AZURE_A), cloud.fake.at(AZURE_B)
    assert (a.status, a.path, a.credential) == (429, "/openai/deployments/gpt-4o-deploy/chat/completions",
                                                AZURE_KEYS[AZURE_A])
    assert (b.status, b.path, b.credential) == (200, "/openai/deployments/gpt-4o-eu/chat/completions",
                                                AZURE_KEYS[AZURE_B])
    assert b.params == {"api-version": "2024-10-21"}
    [azure] = [p for p in status(cloud, proxy)["providers"] if p["name"] == "azure"]
    assert [k["state"] for k in azure["pool"]["keys"]] == ["resting", "ready"]


def test_azures_retry_after_is_waited_before_the_same_key_is_asked_again(cloud):
    proxy = cloud.rotator(UNHURRIED)
    cloud.fake.script(azure_throttled(2), host=AZURE_A)

    seen = azure_chat(cloud, proxy)

    assert seen.get("text") == TEXT, seen
    throttled, served = cloud.fake.at(AZURE_A)
    assert (throttled.status, served.status) == (429, 200)
    assert served.received_at - throttled.received_at >= 1.9  # (retry-after-ms: 2000)


# --- the agent CLIs


def test_claude_code_on_vertex_gets_a_stalled_first_token_retried(cloud, claude_bin, tmp_path):
    proxy = cloud.rotator(FAST)
    cloud.fake.script(Fault.stall_after(deltas=0, seconds=STALL), host=VERTEX_EAST)

    done = run_claude_vertex(cloud, proxy, claude_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    streamed = [r for r in cloud.fake.at(VERTEX_EAST) if r.path.endswith(":streamRawPredict")]
    assert len(streamed) >= 2 and streamed[0].status == 200


def test_claude_code_on_vertex_global_goes_on_in_the_next_region_after_a_429(cloud, claude_bin, tmp_path):
    proxy = cloud.rotator({**UNHURRIED, "providers": {"vertex": {"regions": ["global", "us-east5"]}}})
    cloud.fake.always(vertex_exhausted(), host=VERTEX_GLOBAL)

    done = run_claude_vertex(cloud, proxy, claude_bin, tmp_path, region="global",
                             extra={"CLAUDE_CODE_MAX_RETRIES": "0"})

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    assert any(r.status == 200 and "/locations/us-east5/" in r.path for r in cloud.fake.at(VERTEX_EAST))


def test_gemini_cli_on_vertex_gets_a_cut_answer_continued(cloud, gemini_bin, tmp_path):
    proxy = cloud.rotator(UNHURRIED)
    cloud.fake.always(Fault().continuing(), host=VERTEX_EAST)
    cloud.fake.script(Fault.cut_after(deltas=3, how="clean"), host=VERTEX_EAST)

    done = run_gemini_vertex(cloud, proxy, gemini_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    cut, rest = [r for r in cloud.fake.at(VERTEX_EAST) if r.path.endswith(":streamGenerateContent")]
    assert rest.path == cut.path and rest.body["contents"][-1]["role"] == "model"  # (what it got, continued)


def test_codex_on_azure_gets_a_stalled_first_token_retried(cloud, codex_bin, tmp_path):
    proxy = cloud.rotator(FAST)
    cloud.fake.script(Fault.stall_after(deltas=0, seconds=STALL), host=AZURE_A)

    done = run_codex_azure(cloud, proxy, codex_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    assert [r.path for r in cloud.fake.at(AZURE_A)][:2] == ["/openai/responses"] * 2


def test_codex_on_an_azure_pool_goes_to_the_next_resource_and_its_deployment_after_a_429(cloud, codex_bin, tmp_path):
    cloud.accounts.azure(AZURE_B, [AZURE_KEYS[AZURE_B]], {**DEPLOYMENTS[AZURE_B], "gpt-5-eu": "gpt-5-2025-08-07"})
    keys = [{"key": AZURE_KEYS[AZURE_A], "endpoint": f"https://{AZURE_A}", "deployments": {"gpt-5": "gpt-5-deploy"}},
            {"key": AZURE_KEYS[AZURE_B], "endpoint": f"https://{AZURE_B}", "deployments": {"gpt-5": "gpt-5-eu"}}]
    proxy = cloud.rotator({**UNHURRIED, "providers": {"azure": {"keys": keys}}}, fresh=True)
    cloud.fake.always(azure_throttled(30, "Responses_Create"), host=AZURE_A)

    done = run_codex_azure(cloud, proxy, codex_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [served] = [r for r in cloud.fake.at(AZURE_B) if r.status == 200]
    assert (served.path, served.body["model"], served.credential) == ("/openai/responses", "gpt-5-eu",
                                                                      AZURE_KEYS[AZURE_B])
