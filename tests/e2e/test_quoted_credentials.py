"""A vendor's error answer that quotes the credential it was sent (issue 65): every credential an attempt carried,
in the form it went, reaches the client, its saved flow and the log masked. A Bedrock API key pooled as
`<key>@<region>` goes as a bearer token without its region; a pool of temporary AWS keys sends its access key id
in the signature and its session token in `x-amz-security-token`. Through a real `mitmdump -s addons/rotator.py`
and the cloud kit's fake Bedrock (needs root: unshare -m -n)."""

from __future__ import annotations

import json

import pytest

from tests.support.cloud_faults import CloudFault
from tests.support.cloud_kit import AWS_TEMPORARY, BEDROCK_API_KEY, BEDROCK_EAST
from tests.support.flows import read_flows
from tests.support.masks import masked
from tests.support.reliability import UNHURRIED

pytestmark = pytest.mark.e2e

ACCESS_KEY_ID, SECRET, TOKEN = AWS_TEMPORARY


def pool(*keys: dict) -> dict:
    return {"streaming": UNHURRIED, "providers": {"bedrock": {"keys": list(keys), "regions": ["us-east-1"]}}}


def refusing(*quoted: str) -> CloudFault:
    """Bedrock's 403 in the words of a server that quotes what it was sent."""
    return CloudFault.status(403, {"message": "The security token included in the request is invalid: "
                                              + ", ".join(quoted)})


def refused_through(cloud, tmp_path, config: dict, *quoted: str) -> tuple[str, str, str]:
    """What the client saw of the refusal, its saved flow's answer and the proxy's log."""
    saved = tmp_path / "flows"
    proxy = cloud.rotator(config, fresh=True, args=("--save-stream-file", str(saved)))
    cloud.fake.always(refusing(*quoted), host=BEDROCK_EAST)

    seen = cloud.sdk(proxy, "boto3_converse", unsigned=True)

    proxy.proc.stop()
    flows = [f for f in read_flows(saved) if f.request.pretty_host.startswith("bedrock-runtime.")]
    assert seen.get("status") == 403 and flows, (seen, proxy.full_log[-3000:])
    assert {f.response.status_code if f.response else None for f in flows} == {403}, [f.response for f in flows]
    answers = "\n".join(f.response.get_text() or "" for f in flows if f.response is not None)
    return json.dumps(seen, ensure_ascii=False), answers, proxy.full_log


def test_a_pooled_bedrock_api_key_quoted_in_a_refusal_reaches_the_client_and_the_flow_masked(cloud, tmp_path):
    config = pool({"bearer": BEDROCK_API_KEY})

    client, flow, log = refused_through(cloud, tmp_path, config, BEDROCK_API_KEY)

    assert "invalid: " + masked(BEDROCK_API_KEY) in flow and "invalid: " + masked(BEDROCK_API_KEY) in client
    for where in (client, flow, log):
        assert BEDROCK_API_KEY not in where


def test_a_pooled_session_token_and_access_key_id_quoted_in_a_refusal_are_masked(cloud, tmp_path):
    config = pool({"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET, "session_token": TOKEN})

    client, flow, log = refused_through(cloud, tmp_path, config, TOKEN, ACCESS_KEY_ID)

    assert masked(TOKEN) in flow and masked(TOKEN) in client
    for where in (client, flow, log):
        assert TOKEN not in where and ACCESS_KEY_ID not in where and SECRET not in where
