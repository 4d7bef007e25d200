"""Keys that rest, and keys that cannot be used, end to end through a real `mitmdump -s addons/rotator.py` with the
official SDKs: a pool whose every key was rejected or rate limited answers in the protocol's own shape without
calling the vendor, a key that stalls rests so later requests do not pay its timeout, and a key that could break
the request stops start-up with one line."""

from __future__ import annotations

import json
import subprocess
import time

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from tests.support.clients import call, make_client
from tests.support.fake_vendor import Fault
from tests.support.harness import ADDON, MITMDUMP, POOL_KEYS, REPO, clean_environ, default_config, free_port
from tests.support.reliability import FIRST_TOKEN_TIMEOUT
from tests.support.timing import QUIET

pytestmark = pytest.mark.e2e

PROTOCOL_POOL = {"chat": "openai", "anthropic": "anthropic", "gemini": "gemini", "responses": "openai"}


def without_retries(protocol: str):
    client = make_client(protocol)
    return client if protocol == "gemini" else client.with_options(max_retries=0)


def raised(protocol: str) -> Exception:
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError, genai_errors.APIError)) as e:
        call(protocol, without_retries(protocol), stream=False)
    return e.value


def status_of(error: Exception) -> int:
    return error.code if isinstance(error, genai_errors.APIError) else error.status_code


def assert_clean_log(proxy) -> None:
    assert "Traceback" not in proxy.log and "internal error" not in proxy.log and "AssertionError" not in proxy.log
    assert not any(key in proxy.log for keys in POOL_KEYS.values() for key in keys)


def test_a_pool_whose_every_key_was_rejected_answers_401_without_calling_the_vendor(fake_vendor, rotator):
    proxy = rotator(fresh=True)
    for keys in POOL_KEYS.values():
        for key in keys:
            fake_vendor.always(Fault.status(401), key=key)

    for protocol in ("chat", "anthropic", "gemini"):
        first = raised(protocol)  # every key tried once: the vendor's own 401
        assert status_of(first) == 401 and "Rotator" not in str(first)
    tried = len(fake_vendor.wait_for(sum(map(len, POOL_KEYS.values()))))

    for protocol in ("chat", "responses", "anthropic", "gemini"):
        error = raised(protocol)
        assert status_of(error) == 401, error
        assert "rejected every key" in str(error)
        if isinstance(error, openai.APIStatusError):
            assert isinstance(error, openai.AuthenticationError) and error.code == "invalid_api_key"
        elif isinstance(error, anthropic.APIStatusError):
            assert isinstance(error, anthropic.AuthenticationError)
            assert error.body["error"]["type"] == "authentication_error"
        else:
            assert error.status == "UNAUTHENTICATED"

    time.sleep(QUIET)  # stays: absence. A call that got through anyway would have reached the vendor by now
    assert len(fake_vendor.requests) == tried
    assert_clean_log(proxy)


def test_a_pool_whose_every_key_is_rate_limited_answers_429_with_retry_after(fake_vendor, rotator):
    proxy = rotator(fresh=True)
    for keys in POOL_KEYS.values():
        for key in keys:
            fake_vendor.always(Fault.status(429, headers={"retry-after": "120"}), key=key)

    for protocol in ("chat", "anthropic"):
        assert status_of(raised(protocol)) == 429  # the vendor's own 429, once every key had one
    tried = len(fake_vendor.wait_for(len(POOL_KEYS["openai"]) + len(POOL_KEYS["anthropic"])))

    chat = raised("chat")
    assert isinstance(chat, openai.RateLimitError) and chat.code == "rate_limit_exceeded"
    assert "rate limited" in chat.message
    assert 110 <= int(chat.response.headers["retry-after"]) <= 120
    claude = raised("anthropic")
    assert isinstance(claude, anthropic.RateLimitError) and claude.body["error"]["type"] == "rate_limit_error"
    assert 110 <= int(claude.response.headers["retry-after"]) <= 120

    time.sleep(QUIET)  # stays: absence. A call that got through anyway would have reached the vendor by now
    assert len(fake_vendor.requests) == tried
    assert_clean_log(proxy)


def test_a_key_that_stalls_rests_so_the_next_requests_go_to_the_other_key(fake_vendor, rotator):
    stalling, good = POOL_KEYS["openai"][:2]
    proxy = rotator(fresh=True, providers={"openai": {"keys": [stalling, good]}},
                    streaming={"first_token_timeout": FIRST_TOKEN_TIMEOUT})
    fake_vendor.always(Fault.stall_before_headers(20), key=stalling)

    for _ in range(3):
        assert call("chat", make_client("chat"), stream=True).text

    fake_vendor.wait_for(4, done=False)
    assert fake_vendor.keys() == [stalling, good, good, good]  # without the rest: stalling, good, stalling, good, ...
    assert "rests 5 s (first-token timeout" in proxy.wait_log("rests 5 s")
    assert_clean_log(proxy)


def test_a_gemini_key_google_calls_invalid_is_taken_out_and_the_request_served_by_another(fake_vendor, rotator):
    # Google answers a key it does not know with 400 API_KEY_INVALID, where other vendors say 401: the key's fault,
    # not the request's, so the client must not get that 400 while the pool holds a good key.
    invalid, good = POOL_KEYS["gemini"]
    proxy = rotator(fresh=True, providers={"gemini": {"keys": [invalid, good]}})
    fake_vendor.always(Fault.status(400, {"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com"}]}}), key=invalid)

    for _ in range(3):
        assert call("gemini", make_client("gemini"), stream=False).text

    fake_vendor.wait_for(4, done=False)
    assert fake_vendor.keys() == [invalid, good, good, good]  # out after its first refusal, never asked again
    assert "was refused by the vendor" in proxy.wait_log("was refused by the vendor")
    assert_clean_log(proxy)


# ------------------------------------------------------------------------------------------------------------------
# A key that could break the request: refused at start-up


@pytest.mark.parametrize("key", ["abc\r\nx-injected: yes", "sk-pasted-with\u200b-a-zero-width-space"],
                         ids=["crlf", "zero-width-space"])
def test_a_key_that_could_break_the_request_stops_startup_with_one_line(fake_vendor, tmp_path, key):
    config = default_config(fake_vendor.url)
    config["providers"]["openai"]["keys"] = ["sk-pool-1", key]
    path = tmp_path / "rotator.yaml"
    path.write_text(json.dumps(config))  # (JSON is YAML: the key's CR, LF and U+200B are escaped in it)
    command = [str(MITMDUMP), "-s", ADDON, "--listen-host", "127.0.0.1", "--listen-port", str(free_port()),
               "--set", f"confdir={tmp_path / 'confdir'}", "--set", f"rotator_config={path}"]

    proc = subprocess.run(command, cwd=REPO, env=clean_environ(), capture_output=True, text=True, timeout=60)

    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "providers.openai.keys" in line]
    assert "providers.openai.keys.1" in line and "printable ASCII" in line, line
    assert "abc" not in output and "zero-width" not in output and "x-injected" not in output
    assert fake_vendor.requests == []
