"""Client input that must never reach the vendor, end to end through a real `mitmdump -s addons/rotator.py`: a model
name that is not one path segment of a Gemini URL (routed there, or in a native Gemini call's path), a path whose
dot segments would climb out of base_url, and a body nested too deeply to parse. Each is answered 400 in the
client's protocol, with one log line and no traceback, and the fake vendor receives nothing."""

from __future__ import annotations

import json
import ssl
import subprocess

import anthropic
import httpx
import openai
import pytest

from tests.support.clients import make_client

pytestmark = pytest.mark.e2e

# Each would end the model's segment of /v1beta/models/{model}:streamGenerateContent, or the URL itself.
HOSTILE_MODELS = ["gemini-x/../../../v1beta/files/abc:delete?", "gemini-x:generateContent?alt=json#",
                  "gemini-x\r\nX-Evil: 1", "gemini-x\\..\\..\\files"]
GEMINI_HOST = "https://generativelanguage.googleapis.com"
# Native Gemini calls whose model segment, once decoded, is not one segment (or whose path climbs).
HOSTILE_GEMINI_PATHS = ["/v1beta/models/x%2F..%2F..%2Ffiles%2Fabc:streamGenerateContent",
                        "/v1beta/models/x%3Falt=json%23:streamGenerateContent",
                        "/v1beta/models/x%0D%0A:streamGenerateContent",
                        "/v1beta/models/%2e%2e:streamGenerateContent"]
HI = {"contents": [{"parts": [{"text": "hi"}]}]}
TO_GEMINI = {"routes": [{"models": ["gemini-*"], "targets": ["gemini"]}]}


def through(proxy) -> httpx.Client:
    tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
    return httpx.Client(proxy=proxy.url, verify=tls, timeout=30, trust_env=False)


def assert_refused_quietly(proxy, fake_vendor) -> None:
    """Nothing reached the vendor, and the proxy said why in a line, without a traceback."""
    assert proxy.wait_log("bad request: ")
    assert fake_vendor.requests == []
    assert "Traceback" not in proxy.log and "internal error" not in proxy.log


@pytest.mark.parametrize("model", HOSTILE_MODELS)
def test_a_hostile_model_routed_to_gemini_is_refused_in_the_openai_shape(fake_vendor, rotator, model):
    proxy = rotator(TO_GEMINI)
    client = make_client("chat").with_options(max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True)
    error = refused.value.body
    assert error["type"] == "invalid_request_error" and "cannot be sent in a URL" in error["message"]
    assert_refused_quietly(proxy, fake_vendor)


def test_a_hostile_model_routed_to_gemini_is_refused_in_the_anthropic_shape(fake_vendor, rotator):
    proxy = rotator(TO_GEMINI)
    client = make_client("anthropic").with_options(max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=HOSTILE_MODELS[0], max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "cannot be sent in a URL" in refused.value.body["error"]["message"]
    assert_refused_quietly(proxy, fake_vendor)


@pytest.mark.parametrize("path", HOSTILE_GEMINI_PATHS)
def test_a_hostile_model_in_a_native_gemini_path_is_refused_in_the_gemini_shape(fake_vendor, rotator, path):
    proxy = rotator()
    with through(proxy) as http:
        answer = http.post(f"{GEMINI_HOST}{path}?alt=sse", json=HI, headers={"x-goog-api-key": "client-key"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert_refused_quietly(proxy, fake_vendor)


@pytest.mark.parametrize("path", ["/v1/../../admin", "/v1/chat/../../../admin/keys", "/v1/./../x"])
def test_dot_segments_on_an_intercepted_host_never_leave_base_urls_prefix(fake_vendor, rotator, path):
    proxy = rotator(providers={"openai": {"base_url": f"{fake_vendor.url}/prefix/v1"}})
    # curl sends the path as it is; an HTTP library would remove the dot segments before sending
    done = subprocess.run(["curl", "-s", "--path-as-is", "--proxy", proxy.url, "--cacert", str(proxy.ca_cert),
                           "-H", "authorization: Bearer sk-client", "-w", "\n%{http_code}",
                           f"https://api.openai.com{path}"], capture_output=True, text=True, timeout=30)
    body, _, status = done.stdout.rpartition("\n")
    assert status == "400", done.stdout
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert "dot segment" in json.loads(body)["error"]["message"]
    assert_refused_quietly(proxy, fake_vendor)


def test_escaped_dot_segments_are_refused_too(fake_vendor, rotator):
    proxy = rotator(providers={"openai": {"base_url": f"{fake_vendor.url}/prefix/v1"}})
    with through(proxy) as http:
        answer = http.get("https://api.openai.com/v1/%2e%2e/%2E%2E/admin", headers={"authorization": "Bearer sk-c"})
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"
    assert_refused_quietly(proxy, fake_vendor)


@pytest.mark.parametrize(("url", "shape"), [
    ("https://api.openai.com/v1/chat/completions", lambda e: e["error"]["type"] == "invalid_request_error"),
    ("https://api.anthropic.com/v1/messages", lambda e: e["error"]["type"] == "invalid_request_error"),
    (f"{GEMINI_HOST}/v1beta/models/gemini-2.5-flash:generateContent", lambda e: e["error"]["code"] == 400),
], ids=["chat", "anthropic", "gemini"])
def test_a_body_nested_100000_deep_is_the_protocols_400_in_one_log_line(fake_vendor, rotator, url, shape):
    proxy = rotator()
    deep = b'{"model": "gpt-x", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with through(proxy) as http:
        answer = http.post(url, content=deep, headers={"content-type": "application/json",
                                                       "authorization": "Bearer sk-client"})
    assert answer.status_code == 400, answer.text
    assert shape(answer.json()) and "nested too deeply" in answer.text
    assert_refused_quietly(proxy, fake_vendor)
    assert proxy.log.count("nested too deeply") == 1
