"""Vertex AI's wire (protocols/platforms/vertex.py): its hosts and regions, the envelope its clients wrap Gemini's and
Claude's calls in, opened into the vendors' own calls and put back as they came, and its 429."""

import json

import pytest

import protocols
from protocols.families.google_rpc import RPC_ERRORS
from protocols.platforms import vertex
from protocols.registry import errors
from protocols.transcript import read_request
from protocols.urls import UnsafeURLValue
from protocols.vendor_errors import ErrorKind

CLAUDE = ("/v1/projects/proj-a/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"
          ":streamRawPredict")
GEMINI = "/v1beta1/projects/proj-a/locations/europe-west1/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
CLAUDE_BODY = {"anthropic_version": "vertex-2023-10-16", "messages": [{"role": "user", "content": "hi"}],
               "max_tokens": 256, "stream": True}


@pytest.mark.parametrize(("host", "region"), [
    ("us-east5-aiplatform.googleapis.com", "us-east5"), ("aiplatform.googleapis.com", "global"),
    ("aiplatform.eu.rep.googleapis.com", "eu"), ("EUROPE-WEST1-aiplatform.googleapis.com", "europe-west1"),
    ("generativelanguage.googleapis.com", None), ("aiplatform.googleapis.com.evil.example", None)])
def test_a_hosts_region_and_back(host, region):
    assert vertex.region_of(host) == region
    if region is not None:
        assert vertex.host_for(region) == host.lower()


@pytest.mark.parametrize(("path", "served"), [
    (CLAUDE, True), (CLAUDE.replace(":streamRawPredict", ":rawPredict"), True), (GEMINI, True),
    (GEMINI.replace("streamGenerateContent", "generateContent").replace("v1beta1", "v1"), True),
    ("/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent", True),  # (express mode)
    ("/v1/projects/p/locations/l/publishers/anthropic/models/count-tokens:rawPredict", False),
    (GEMINI.replace("streamGenerateContent", "countTokens"), False),
    ("/v1/projects/p/locations/l/endpoints/openapi/chat/completions", False)])
def test_the_generation_paths_and_the_protocol_each_stands_for(path, served):
    assert (vertex.GENERATION.fullmatch(path) is not None) is served
    if served:
        family = "anthropic" if "anthropic" in path else "gemini"
        assert protocols.detect("POST", vertex.sample_path(path)).family == family


def test_a_claude_call_opens_into_the_messages_call_with_its_model_and_goes_back_as_it_came():
    path, plain = vertex.opened(CLAUDE, CLAUDE_BODY)

    assert path == "/v1/messages" and protocols.detect("POST", path).name == "anthropic_messages"
    assert plain == {"model": "claude-sonnet-4-5@20250929", "messages": CLAUDE_BODY["messages"], "max_tokens": 256,
                     "stream": True}
    assert vertex.envelope_path(CLAUDE, path, plain) == CLAUDE
    sent = json.loads(vertex.enveloped(CLAUDE_BODY, path, json.dumps(plain).encode()))
    assert sent == CLAUDE_BODY  # (no model; its own anthropic_version)


def test_a_claude_call_asked_otherwise_gets_its_model_and_method_in_the_clients_path():
    plain = {"model": "claude-haiku-4-5@20251001", "messages": [], "max_tokens": 1}

    assert vertex.envelope_path(CLAUDE, "/v1/messages", plain) == CLAUDE.replace(
        "claude-sonnet-4-5@20250929:streamRawPredict", "claude-haiku-4-5@20251001:rawPredict")
    assert vertex.envelope_path(CLAUDE, "/v1/messages", {**plain, "stream": True}).endswith(
        "/models/claude-haiku-4-5@20251001:streamRawPredict")
    with pytest.raises(UnsafeURLValue):
        vertex.envelope_path(CLAUDE, "/v1/messages", {**plain, "model": "../../x"})


def test_a_gemini_call_opens_into_the_gemini_apis_and_keeps_its_version_and_place():
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    path, plain = vertex.opened(GEMINI, body)

    assert (path, plain) == ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", body)
    assert protocols.get("gemini").model(path, plain) == "gemini-2.5-flash"
    assert vertex.envelope_path(GEMINI, path, plain) == GEMINI
    assert vertex.envelope_path(GEMINI, "/v1beta/models/gemini-2.5-pro:generateContent", plain) == \
        GEMINI.replace("gemini-2.5-flash:streamGenerateContent", "gemini-2.5-pro:generateContent")
    assert vertex.enveloped(None, path, b'{"contents":[]}') == b'{"contents":[]}'


def test_a_call_made_for_vertex_by_another_client_goes_in_a_new_envelope_to_be_placed():
    plain = {"model": "claude-opus-4-6", "messages": [], "max_tokens": 8, "stream": True}

    path = vertex.envelope_path("", "/v1/messages", plain)
    body = json.loads(vertex.enveloped(None, "/v1/messages", json.dumps(plain).encode()))

    assert path == "/v1/projects/-/locations/global/publishers/anthropic/models/claude-opus-4-6:streamRawPredict"
    assert body == {"anthropic_version": vertex.DEFAULT_ANTHROPIC_VERSION, "messages": [], "max_tokens": 8,
                    "stream": True}
    assert vertex.placed(path, "proj-b", "europe-west1") == path.replace("projects/-/locations/global",
                                                                         "projects/proj-b/locations/europe-west1")
    assert vertex.envelope_path("", "/v1beta/models/gemini-2.5-flash:generateContent", {}) == \
        "/v1beta1/projects/-/locations/global/publishers/google/models/gemini-2.5-flash:generateContent"


def test_placing_keeps_the_project_unless_told_and_refuses_what_would_leave_the_path():
    assert vertex.placed(CLAUDE, None, "global") == CLAUDE.replace("us-east5", "global")
    express = "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent"
    assert vertex.placed(express, None, "us-east5") == express
    assert vertex.placed(express, "proj-a", "us-east5") == \
        "/v1beta1/projects/proj-a/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent"
    with pytest.raises(UnsafeURLValue):
        vertex.placed(CLAUDE, "a/b", "global")


def read_429(protocol: str, body: dict):
    reader = errors("", protocol).with_dialects(*RPC_ERRORS, vertex.exhausted)
    return reader.read(429, [("content-type", "application/json")], json.dumps(body).encode(), 1_800_000_000.0)


@pytest.mark.parametrize("protocol", ["anthropic_messages", "gemini"])
def test_resource_exhausted_is_a_rate_limit_without_a_delay_for_claude_and_gemini(protocol):
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Resource exhausted. Please try "
                      "again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429"}}

    error = read_429(protocol, body)

    assert (error.kind, error.delay) == (ErrorKind.RATE_LIMITED, None)
    assert error.message.startswith("Resource exhausted")


def test_a_daily_quota_stays_a_quota():
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaId": "OnlinePredictionRequestsPerDayPerProjectPerBaseModel"}]}]}}

    assert read_429("anthropic_messages", body).kind is ErrorKind.QUOTA


def test_the_llm_view_reads_a_claude_call_inside_its_envelope():
    reading = read_request("anthropic_messages", CLAUDE, json.dumps(CLAUDE_BODY).encode())

    assert reading.problem is None and reading.request.model == "claude-sonnet-4-5@20250929"
    assert reading.request.stream is True
