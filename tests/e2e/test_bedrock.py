"""Amazon Bedrock end to end (issue 37): boto3, the anthropic SDK's AnthropicBedrock and the real Claude Code in
Bedrock mode, through a real `mitmdump -s addons/rotator.py` intercepting the real hostnames, against the cloud kit's
fake Bedrock (tests/support/fake_bedrock.py), which checks every SigV4 signature as AWS does (a changed byte is a
403). Signed by the client (no keys configured): the request goes as it came and still gets the watchdogs, the
identical request again, honest endings in frames the SDKs read, a route's next target. Signed by Rotator (a pool):
a throttled key or region moves to the next, a cut answer is continued.

Needs root (unshare -m -n); Claude Code is installed by scripts/setup-agents, else its tests are skipped.
"""

from __future__ import annotations

import json

import pytest

from tests.support.cloud_agents import run_claude_bedrock
from tests.support.cloud_faults import CloudFault, bedrock_throttled
from tests.support.cloud_kit import AWS_CLIENT, AWS_POOL_A, AWS_POOL_B, AWS_TEMPORARY, BEDROCK_EAST, BEDROCK_WEST
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.reliability import UNHURRIED

pytestmark = pytest.mark.e2e

SIGNED = {"access_key": AWS_CLIENT[0], "secret_key": AWS_CLIENT[1]}
TEMPORARY = {"access_key": AWS_TEMPORARY[0], "secret_key": AWS_TEMPORARY[1], "session_token": AWS_TEMPORARY[2]}
STALLING = {"streaming": {"first_token_timeout": 2, "idle_timeout": 3}}  # (the stall test's: the fake stalls 6 s)
# The other tests' watchdogs, which a loaded machine's fake does not reach: a fake answering past 2 s would be
# retried, and a test counting the requests would see one more.
STREAMING = {"streaming": UNHURRIED}
POOL = {**STREAMING, "providers": {"bedrock": {
    "keys": [{"access_key_id": AWS_POOL_A[0], "secret_access_key": AWS_POOL_A[1]},
             {"access_key_id": AWS_POOL_B[0], "secret_access_key": AWS_POOL_B[1]}],
    "regions": ["us-east-1", "us-west-2"]}}}


def signer(request) -> str:
    """The access key id a request the fake took was signed with."""
    return request.headers.get("authorization", "").split("Credential=")[1].split("/")[0]


def test_boto3_streams_signed_by_itself_as_it_came_and_aws_takes_the_signature(cloud):
    proxy = cloud.rotator(STREAMING)

    converse = cloud.sdk(proxy, "boto3_converse_stream", **SIGNED)
    invoke = cloud.sdk(proxy, "boto3_invoke_stream", **SIGNED)
    whole = cloud.sdk(proxy, "boto3_converse", **SIGNED)

    assert (converse.get("text"), converse.get("finish")) == (TEXT, "end_turn"), converse
    assert converse["events"][0] == "messageStart" and converse["events"][-1] == "metadata"
    assert (invoke.get("text"), invoke.get("finish")) == (TEXT, "end_turn"), invoke
    assert (whole.get("text"), whole.get("finish")) == (TEXT, "end_turn"), whole
    calls = cloud.fake.at(BEDROCK_EAST)
    assert [c.status for c in calls] == [200, 200, 200] and {signer(c) for c in calls} == {AWS_CLIENT[0]}


def test_anthropic_bedrock_streams_signed_by_itself(cloud):
    proxy = cloud.rotator(STREAMING)

    seen = cloud.sdk(proxy, "anthropic_bedrock", **SIGNED)

    assert (seen.get("text"), seen.get("finish")) == (TEXT, "end_turn"), seen
    (call,) = cloud.fake.at(BEDROCK_EAST)
    assert call.path.endswith("/invoke-with-response-stream") and call.status == 200 and "model" not in call.body


def test_claude_code_on_bedrock_with_its_own_aws_keys(cloud, claude_bin, tmp_path):
    proxy = cloud.rotator(STREAMING)

    done = run_claude_bedrock(cloud, proxy, claude_bin, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    calls = cloud.fake.at(BEDROCK_EAST)
    assert calls and all(c.status == 200 for c in calls), [(c.path, c.status) for c in calls]
    assert any(c.path.endswith("/invoke-with-response-stream") for c in calls)
    assert {signer(c) for c in calls} == {AWS_CLIENT[0]}


@pytest.mark.parametrize("signed", [SIGNED, TEMPORARY], ids=["aws-keys", "session-token"])
def test_a_stalled_first_token_is_the_identical_signed_request_again(cloud, signed):
    proxy = cloud.rotator(STALLING)
    cloud.fake.script(Fault.stall_after(deltas=0, seconds=6))

    seen = cloud.sdk(proxy, "boto3_invoke_stream", **signed)

    assert seen.get("text") == TEXT, seen
    first, second = cloud.fake.at(BEDROCK_EAST)[:2]
    assert (first.path, first.raw_body) == (second.path, second.raw_body)
    token = signed.get("session_token")  # (a temporary credential's token: sent again as signed, once)
    assert first.headers.get("x-amz-security-token") == second.headers.get("x-amz-security-token") == token
    assert first.headers["authorization"] == second.headers["authorization"]  # the client's own signature, again
    assert second.status == 200


def test_a_cut_is_ended_honestly_in_frames_each_sdk_reads(cloud):
    proxy = cloud.rotator(STREAMING)
    cloud.fake.always(Fault.cut_after(deltas=2))  # (the body ends, without its completion signal)

    invoke = cloud.sdk(proxy, "boto3_invoke_stream", **SIGNED)
    converse = cloud.sdk(proxy, "boto3_converse_stream", **SIGNED)
    claude = cloud.sdk(proxy, "anthropic_bedrock", **SIGNED)

    assert invoke.get("finish") == "max_tokens" and invoke["events"][-2:] == ["message_delta", "message_stop"], invoke
    assert TEXT.startswith(invoke["text"]) and invoke["text"] != TEXT
    assert converse.get("finish") == "max_tokens" and converse["events"][-2:] == ["messageStop", "metadata"], converse
    assert (claude.get("finish"), claude.get("error")) == ("max_tokens", None), claude


def test_an_exception_frame_after_content_is_ended_honestly(cloud):
    proxy = cloud.rotator(STREAMING)
    cloud.fake.script(CloudFault.error_after(deltas=2).exception("modelStreamErrorException"))

    seen = cloud.sdk(proxy, "boto3_invoke_stream", **SIGNED)

    assert (seen.get("finish"), seen.get("error")) == ("max_tokens", None), seen
    assert len(cloud.fake.at(BEDROCK_EAST)) == 1


def test_a_pool_signs_and_a_throttled_region_moves_to_the_next(cloud):
    proxy = cloud.rotator(POOL)
    cloud.fake.always(bedrock_throttled(), host=BEDROCK_EAST)

    seen = cloud.sdk(proxy, "boto3_converse_stream", unsigned=True)

    assert seen.get("text") == TEXT, seen
    east, west = cloud.fake.at(BEDROCK_EAST), cloud.fake.at(BEDROCK_WEST)
    assert [c.status for c in east] == [429] and [c.status for c in west] == [200]
    assert signer(east[0]) == signer(west[0]) == AWS_POOL_A[0]
    assert "/20" in west[0].headers["authorization"] and "/us-west-2/bedrock/" in west[0].headers["authorization"]


def test_a_pool_continues_a_cut_answer(cloud):
    proxy = cloud.rotator(POOL)
    cloud.fake.script(Fault.cut_after(deltas=2), Fault.continuing())

    seen = cloud.sdk(proxy, "anthropic_bedrock", access_key="AKIDANYTHING", secret_key="anything")

    assert (seen.get("text"), seen.get("finish")) == (TEXT, "end_turn"), seen
    cut, rest = cloud.fake.requests[:2]
    assert rest.continued and rest.path == cut.path and "model" not in rest.body
    assert {signer(cut), signer(rest)} <= {AWS_POOL_A[0], AWS_POOL_B[0]}


ROUTED = {**STREAMING, "providers": {
    "anthropic": {"base_url": "http://127.0.0.1:80", "keys": ["sk-ant-fake-pool-key"]},
    "openai": {"base_url": "http://127.0.0.1:80/v1", "keys": ["sk-fake-pool-key"]}},
    "routes": [{"from": "bedrock", "models": ["*anthropic.claude-*"],
                "targets": ["bedrock", "anthropic/claude-sonnet-4-5"]},
               {"models": ["*meta.llama*"], "targets": ["openai/gpt-4o-mini"]}]}


def test_a_throttled_bedrock_request_is_answered_by_the_anthropic_api_through_a_route(cloud):
    proxy = cloud.rotator(ROUTED)
    cloud.fake.always(bedrock_throttled(), host=BEDROCK_EAST)

    seen = cloud.sdk(proxy, "boto3_invoke_stream", **SIGNED)

    assert (seen.get("text"), seen.get("finish")) == (TEXT, "end_turn"), seen
    (throttled,) = cloud.fake.at(BEDROCK_EAST)
    (answered,) = cloud.metadata.calls("anthropic")
    assert throttled.status == 429 and answered.credential == "sk-ant-fake-pool-key"
    assert answered.body["model"] == "claude-sonnet-4-5" and "anthropic_version" not in answered.body


def test_converse_is_routed_to_a_chat_target_and_back(cloud):
    proxy = cloud.rotator(ROUTED)

    streamed = cloud.sdk(proxy, "boto3_converse_stream", model="meta.llama3-70b-instruct-v1:0", **SIGNED)
    whole = cloud.sdk(proxy, "boto3_converse", model="meta.llama3-70b-instruct-v1:0", **SIGNED)

    assert (streamed.get("text"), streamed.get("finish")) == (TEXT, "end_turn"), streamed
    assert streamed["events"][0] == "messageStart" and streamed["usage"]["outputTokens"] > 0
    assert (whole.get("text"), whole.get("finish")) == (TEXT, "end_turn"), whole
    chats = cloud.metadata.calls("chat")
    assert len(chats) == 2 and {c.model for c in chats} == {"gpt-4o-mini"} and not cloud.fake.at(BEDROCK_EAST)


def test_claude_code_skipping_its_own_auth_is_signed_by_the_pool(cloud, claude_bin, tmp_path):
    proxy = cloud.rotator(POOL)

    done = run_claude_bedrock(cloud, proxy, claude_bin, tmp_path, keys=None)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    calls = cloud.fake.at(BEDROCK_EAST) + cloud.fake.at(BEDROCK_WEST)
    assert calls and all(c.status == 200 for c in calls), [(c.path, c.status) for c in calls]
    assert {signer(c) for c in calls} <= {AWS_POOL_A[0], AWS_POOL_B[0]}


def status(cloud, proxy) -> dict:
    """The status page's JSON, fetched inside the namespace."""
    got = cloud.net.run(["curl", "-s", "-x", proxy.url, "http://rotator.status/?format=json"],
                        env=cloud.client_env(proxy))
    return json.loads(got.stdout)


def test_no_secret_of_the_pool_is_in_a_flow_the_log_or_the_status_page(cloud, tmp_path):
    saved = tmp_path / "flows"
    proxy = cloud.rotator(POOL, fresh=True, args=("--save-stream-file", str(saved)))

    seen = cloud.sdk(proxy, "boto3_converse_stream", unsigned=True)

    assert seen.get("text") == TEXT, seen
    page = json.dumps(status(cloud, proxy), ensure_ascii=False)
    proxy.proc.stop()
    [flow] = [f for f in read_flows(saved) if f.request.pretty_host.startswith("bedrock-runtime.")]
    shown = flow.request.headers.get("authorization", "")
    served = shown.removeprefix("Bearer ")  # (the key that served, masked, in its region, told from the other's)
    assert served in ("…0001@us-east-1 #1", "…0001@us-east-1 #3"), shown
    for where in (saved.read_bytes().decode("latin-1"), proxy.full_log, page):
        assert AWS_POOL_A[1] not in where and AWS_POOL_B[1] not in where
        assert AWS_POOL_A[0] not in where and AWS_POOL_B[0] not in where  # (shown masked)
    assert served in page


def test_throttling_of_a_clients_own_signature_is_counted_per_access_key_and_region(cloud):
    proxy = cloud.rotator(STREAMING, fresh=True)
    cloud.fake.always(bedrock_throttled(), host=BEDROCK_EAST)

    seen = cloud.sdk(proxy, "boto3_converse_stream", **SIGNED)

    assert seen.get("status") == 429 and seen["body"]["Code"] == "ThrottlingException", seen
    [bedrock] = [p for p in status(cloud, proxy)["providers"] if p["name"] == "bedrock"]
    [shown] = bedrock["signers"]
    assert (shown["region"], shown["throttled"]) == ("us-east-1", len(cloud.fake.at(BEDROCK_EAST)))
    assert AWS_CLIENT[0] not in shown["signer"] and shown["signer"].endswith(" us-east-1")
