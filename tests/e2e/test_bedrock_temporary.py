"""Amazon Bedrock with temporary AWS credentials (issue 65): an access key id, its secret and a session token (AWS
SSO, an assumed role, Claude Code's awsAuthRefresh), signed by boto3, AnthropicBedrock and the real Claude Code, or
pooled and signed by Rotator, through a real `mitmdump -s addons/rotator.py` against the cloud kit's fake Bedrock,
which checks every signature as AWS does. The session token is a signed header: it must reach the platform with its
exact bytes, once, on every path (a stall's replay with one: tests/e2e/test_bedrock.py); its masked form is only
ever the flow's.

Needs root (unshare -m -n); Claude Code is installed by scripts/setup-agents, else its test is skipped.
"""

from __future__ import annotations

import pytest

from tests.support.cloud_agents import run_claude_bedrock
from tests.support.cloud_kit import AWS_TEMPORARY, BEDROCK_EAST, BEDROCK_WEST
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.reliability import UNHURRIED

pytestmark = pytest.mark.e2e

ACCESS_KEY_ID, SECRET, TOKEN = AWS_TEMPORARY
SIGNED = {"access_key": ACCESS_KEY_ID, "secret_key": SECRET, "session_token": TOKEN}
STREAMING = {"streaming": UNHURRIED}
POOL = {**STREAMING, "providers": {"bedrock": {
    "keys": [{"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET, "session_token": TOKEN}],
    "regions": ["us-east-1"]}}}


def taken(calls) -> None:
    """Every call signed with the temporary credentials, AWS took the signature, and the token went once, as sent."""
    assert calls and [c.status for c in calls] == [200] * len(calls), [(c.path, c.status) for c in calls]
    assert {c.headers.get("x-amz-security-token") for c in calls} == {TOKEN}
    assert {c.headers["authorization"].split("Credential=")[1].split("/")[0] for c in calls} == {ACCESS_KEY_ID}


def test_each_sdk_signing_with_a_session_token_is_taken_by_aws(cloud):
    proxy = cloud.rotator(STREAMING)

    invoke = cloud.sdk(proxy, "boto3_invoke_stream", **SIGNED)
    converse = cloud.sdk(proxy, "boto3_converse_stream", **SIGNED)
    claude = cloud.sdk(proxy, "anthropic_bedrock", **SIGNED)

    for seen in (invoke, converse, claude):
        assert (seen.get("text"), seen.get("finish")) == (TEXT, "end_turn"), seen
    taken(cloud.fake.at(BEDROCK_EAST))


def test_claude_code_with_a_session_token_gets_its_probes_and_its_turn(cloud, claude_bin, tmp_path):
    proxy = cloud.rotator(STREAMING)

    done = run_claude_bedrock(cloud, proxy, claude_bin, tmp_path, keys=AWS_TEMPORARY)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    calls = cloud.fake.at(BEDROCK_EAST)
    taken(calls)
    assert any(c.path.endswith("/invoke-with-response-stream") for c in calls)


def test_a_pool_of_temporary_keys_signs_a_continuation_with_its_token(cloud):
    proxy = cloud.rotator(POOL)
    cloud.fake.script(Fault.cut_after(deltas=2), Fault.continuing())

    seen = cloud.sdk(proxy, "boto3_invoke_stream", unsigned=True)

    assert (seen.get("text"), seen.get("finish")) == (TEXT, "end_turn"), seen
    cut, rest = cloud.fake.at(BEDROCK_EAST)[:2]
    assert rest.continued and not cloud.fake.at(BEDROCK_WEST)
    assert {c.headers.get("x-amz-security-token") for c in (cut, rest)} == {TOKEN}


def test_the_flow_and_the_log_show_a_clients_session_token_masked(cloud, tmp_path):
    saved = tmp_path / "flows"
    proxy = cloud.rotator(STREAMING, fresh=True, args=("--save-stream-file", str(saved)))

    seen = cloud.sdk(proxy, "boto3_invoke_stream", **SIGNED)

    assert seen.get("text") == TEXT, seen
    taken(cloud.fake.at(BEDROCK_EAST))
    proxy.proc.stop()
    [flow] = [f for f in read_flows(saved) if f.request.pretty_host.startswith("bedrock-runtime.")]
    [shown] = flow.request.headers.get_all("x-amz-security-token")  # (once: its masked form alone)
    assert "…" in shown and TOKEN.startswith(shown.partition("…")[0])
    assert TOKEN not in saved.read_bytes().decode("latin-1") and TOKEN not in proxy.full_log
