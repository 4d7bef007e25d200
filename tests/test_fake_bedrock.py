"""The fake cloud's Bedrock on its own (tests/support/fake_bedrock.py), over plain HTTP with the real host in `Host`:
it checks every SigV4 signature as AWS does (a changed byte, a signature too old: 403), takes a Bedrock API key as a
bearer token, refuses an InvokeModel body that names its model, and answers in event stream frames botocore reads."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import bedrock_sdk as sdk
from tests.support.cloud_faults import CloudFault, bedrock_throttled
from tests.support.fake_cloud import FakeCloud
from tests.support.fake_vendor import TEXT

EAST = "bedrock-runtime.us-east-1.amazonaws.com"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
INVOKE = f"/model/{MODEL}/invoke-with-response-stream"
BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def platform():
    cloud = FakeCloud().start()
    cloud.http = httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))
    cloud.accounts.aws("AKIDFAKE", "fake-secret")
    cloud.accounts.bedrock_key("ABSKfakekey")
    yield cloud
    cloud.http.close()
    cloud.stop()


@pytest.fixture
def cloud(platform):
    platform.reset()
    yield platform
    platform.reset()


def signed(path: str, body: bytes, host: str = EAST, secret: str = "fake-secret", at: float | None = None) -> dict:
    request = AWSRequest(method="POST", url=f"https://{host}{path}", data=body,
                         headers={"content-type": "application/json"})
    auth = SigV4Auth(Credentials("AKIDFAKE", secret), "bedrock", "us-east-1")
    if at is not None:
        request.context["timestamp"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))
        auth._modify_request_before_signing(request)
        auth._inject_signature_to_request(request, auth.signature(auth.string_to_sign(
            request, auth.canonical_request(request)), request))
    else:
        auth.add_auth(request)
    return {"host": host, **dict(request.headers.items())}


def post(cloud: FakeCloud, path: str, body: bytes, headers: dict) -> httpx.Response:
    return cloud.http.post(cloud.url + path, content=body, headers=headers)


def test_a_signed_invoke_stream_is_answered_in_chunk_frames_botocore_reads(cloud):
    raw = json.dumps(BODY).encode()
    answer = post(cloud, INVOKE, raw, signed(INVOKE, raw))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.amazon.eventstream"
    said = [json.loads(e["chunk"]["bytes"]) for e in sdk.invoke_stream(answer.content)]
    text = "".join(e["delta"]["text"] for e in said if e["type"] == "content_block_delta")
    assert text == TEXT and said[-1]["type"] == "message_stop" and "amazon-bedrock-invocationMetrics" in said[-1]
    (rec,) = cloud.requests
    assert (rec.model, rec.stream, rec.status) == (MODEL, True, 200)


@pytest.mark.parametrize("change", ["body", "path", "host", "old"])
def test_a_changed_byte_or_an_old_signature_is_refused_as_aws_refuses_it(cloud, change):
    raw = json.dumps(BODY).encode()
    headers = signed(INVOKE, raw, at=time.time() - 400 if change == "old" else None)
    path = INVOKE.replace(":0", "%3A0") if change == "path" else INVOKE
    if change == "host":
        headers["host"] = "bedrock-runtime.us-west-2.amazonaws.com"
    answer = post(cloud, path, raw + b" " if change == "body" else raw, headers)
    assert answer.status_code == 403 and answer.json()["__type"] == "InvalidSignatureException"
    assert ("expired" in answer.json()["message"]) is (change == "old")


def test_a_bedrock_api_key_is_taken_as_a_bearer_token_and_a_wrong_one_is_not(cloud):
    raw = json.dumps(BODY).encode()
    good = post(cloud, INVOKE, raw, {"host": EAST, "authorization": "Bearer ABSKfakekey"})
    bad = post(cloud, INVOKE, raw, {"host": EAST, "authorization": "Bearer ABSKother"})
    assert (good.status_code, bad.status_code) == (200, 403)


def test_an_invoke_body_naming_its_model_is_refused(cloud):
    raw = json.dumps({**BODY, "model": MODEL}).encode()
    answer = post(cloud, INVOKE, raw, signed(INVOKE, raw))
    assert answer.status_code == 400 and "extraneous key [model]" in answer.json()["message"]


def test_converse_stream_and_converse_are_answered_as_botocore_reads_them(cloud):
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()
    path = f"/model/{MODEL}/converse-stream"
    events = sdk.converse_stream(post(cloud, path, body, signed(path, body)).content)
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == TEXT
    assert events[-2]["messageStop"]["stopReason"] == "end_turn" and events[-1]["metadata"]["usage"]["totalTokens"]
    path = f"/model/{MODEL}/converse"
    answer = sdk.converse(post(cloud, path, body, signed(path, body)).content)
    assert answer["output"]["message"]["content"] == [{"text": TEXT}] and answer["stopReason"] == "end_turn"


def test_faults_are_bedrocks_a_throttle_and_an_exception_frame_in_the_stream(cloud):
    raw = json.dumps(BODY).encode()
    cloud.script(bedrock_throttled(), CloudFault.error_after(deltas=1).exception("throttlingException"))
    first = post(cloud, INVOKE, raw, signed(INVOKE, raw))
    assert first.status_code == 429 and first.headers["x-amzn-errortype"].startswith("ThrottlingException:")
    second = post(cloud, INVOKE, raw, signed(INVOKE, raw))
    with pytest.raises(Exception, match="Too many tokens"):
        sdk.invoke_stream(second.content)


def test_the_control_plane_lists_the_inference_profiles(cloud):
    answer = cloud.http.get(cloud.url + "/inference-profiles?type=SYSTEM_DEFINED",
                            headers={"host": "bedrock.us-east-1.amazonaws.com", "authorization": "Bearer ABSKfakekey"})
    ids = [p["inferenceProfileId"] for p in answer.json()["inferenceProfileSummaries"]]
    assert "us.anthropic.claude-sonnet-4-5-20250929-v1:0" in ids
