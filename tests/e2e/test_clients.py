"""Clients end to end through a real `mitmdump -s addons/rotator.py` with the official SDKs: known by their proxy
credentials (`HTTPS_PROXY=http://NAME:KEY@...`), a wrong pair refused with 407 before anything is relayed."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.clients import MODELS, PROTOCOLS, call, make_client
from tests.support.fake_vendor_ws import FakeWebSocketVendor
from tests.support.gate import CLIENTS, STRANGER, TEAM_A, TEAM_B
from tests.support.harness import POOL_KEYS, Rotator
from tests.support.timing import QUIET

pytestmark = pytest.mark.e2e


def proxy_as(proxy: Rotator, monkeypatch: pytest.MonkeyPatch, name: str, key: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://{name}:{key}@127.0.0.1:{proxy.port}")


def test_a_client_is_known_by_its_proxy_credentials_whatever_key_its_tool_sends(fake_vendor, rotator, monkeypatch):
    proxy = rotator(clients=CLIENTS)
    proxy_as(proxy, monkeypatch, "team-b", TEAM_B)
    monkeypatch.setenv("OPENAI_API_KEY", STRANGER)  # (the tool's own key: no client key in its key slot)

    assert call("chat", make_client("chat", max_retries=0), stream=True).text
    monkeypatch.setenv("OPENAI_API_KEY", TEAM_A)  # both: the proxy credentials' client
    assert call("responses", make_client("responses", max_retries=0), stream=False).text

    reqs = fake_vendor.wait_for(2)
    assert all(r.credential in POOL_KEYS["openai"] for r in reqs)
    assert all("proxy-authorization" not in {k.lower() for k in r.headers} for r in reqs)
    log = proxy.wait_log("client: team-b (proxy credentials)")
    assert "client: team-a" not in log
    assert log.count("openai") and TEAM_B not in proxy.full_log and STRANGER not in proxy.full_log


def test_a_wrong_proxy_credential_gets_407_and_reaches_nothing(fake_vendor, rotator, monkeypatch):
    proxy = rotator(fresh=True, clients=CLIENTS)
    proxy_as(proxy, monkeypatch, "team-a", TEAM_B)  # another client's key
    monkeypatch.setenv("OPENAI_API_KEY", TEAM_A)

    with pytest.raises(openai.APIConnectionError) as refused:
        call("chat", make_client("chat", max_retries=0), stream=False)
    assert "407" in repr(refused.value.__cause__) or "407" in str(refused.value.__cause__.__cause__)

    time.sleep(QUIET)  # stays: absence. Anything relayed would have reached the vendor by now
    assert fake_vendor.requests == []
    assert "refused: proxy credentials matched no client (407)" in proxy.log
    assert TEAM_B not in proxy.full_log


# ------------------------------------------------------------------------------------------------------------------
# Budgets, limits and models per client, in each protocol, stream and not

KEYS = {"budget": "rk-budget-Secret-0001-aaaa", "rpm": "rk-rpm-Secret-0002-bbbb", "tpm": "rk-tpm-Secret-0003-cccc",
        "models": "rk-models-Secret-0004-dddd", "other": "rk-other-Secret-0005-eeee"}
HELD = [
    {"name": "budget", "key": KEYS["budget"], "budget": {"dollars": 2.5, "per": "day"}},
    {"name": "rpm", "key": KEYS["rpm"], "limits": [{"per": "minute", "requests": 2}]},
    {"name": "tpm", "key": KEYS["tpm"], "limits": [{"per": "minute", "tokens": 20}]},  # (one answer: 12 in + more out)
    {"name": "models", "key": KEYS["models"], "models": ["nothing-*", "else-*"]},
    {"name": "other", "key": KEYS["other"]},
]
# Each answer's 12 input tokens cost $1 (the fake vendor's answers read or write no cache); its output nothing.
PRICES = {"*": {"input": 1_000_000 / 12, "output": 0}}
KEY_VARS = {"chat": "OPENAI_API_KEY", "responses": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
            "gemini": "GEMINI_API_KEY"}


def as_client(protocol: str, name: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(KEY_VARS[protocol], KEYS[name])
    return make_client(protocol) if protocol == "gemini" else make_client(protocol, max_retries=0)


def refused(protocol: str, name: str, stream: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, dict]:
    """The status, message and headers of the error the protocol's SDK raised for `name`'s request."""
    with pytest.raises(Exception) as caught:
        call(protocol, as_client(protocol, name, monkeypatch), stream=stream)
    error = caught.value
    if protocol == "gemini":
        assert isinstance(error, genai_errors.ClientError), error
        return error.code, error.message or "", dict(error.response.headers) if error.response else {}
    assert isinstance(error, (openai.APIStatusError, anthropic.APIStatusError)), error
    return error.status_code, error.message, dict(error.response.headers)


def fresh_minute() -> None:
    """Not within the last seconds of a UTC minute: a per-minute limit's requests all fall in one minute."""
    if time.time() % 60 > 50:
        time.sleep(60 - time.time() % 60)  # stays: not an assertion, the limits count calendar minutes


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_budgets_limits_and_models_hold_each_client_in_its_protocol(fake_vendor, rotator, monkeypatch, protocol,
                                                                    stream):
    proxy = rotator(fresh=True, clients=HELD, prices=PRICES)
    fresh_minute()
    served = [call(protocol, as_client(protocol, "budget", monkeypatch), stream=stream) for _ in range(3)]
    assert all(r.text for r in served)
    status, message, headers = refused(protocol, "budget", stream, monkeypatch)
    assert status == 429 and "client budget is over its budget of $2.5 per day" in message, message
    end_of_day = 86400 - time.time() % 86400
    if headers:  # (google-genai's error keeps no headers)
        assert abs(int(headers["retry-after"]) - end_of_day) <= 5
    assert call(protocol, as_client(protocol, "other", monkeypatch), stream=stream).text  # the other client served

    for _ in range(2):
        assert call(protocol, as_client(protocol, "rpm", monkeypatch), stream=stream).text
    status, message, headers = refused(protocol, "rpm", stream, monkeypatch)
    assert status == 429 and "limit of 2 requests per minute" in message, message
    if headers:
        assert 1 <= int(headers["retry-after"]) <= 60

    assert call(protocol, as_client(protocol, "tpm", monkeypatch), stream=stream).text
    status, message, _ = refused(protocol, "tpm", stream, monkeypatch)
    assert status == 429 and "limit of 20 tokens per minute" in message, message

    status, message, _ = refused(protocol, "models", stream, monkeypatch)
    assert status == 403 and f"may not use the model {MODELS[protocol]}; its models are: nothing-*, else-*" in message

    fake_vendor.wait_for(7)
    time.sleep(QUIET)  # stays: absence. A refused request that got through would have reached the vendor by now
    assert len(fake_vendor.requests) == 7  # 3 + 1 + 2 + 1: no refused request reached the vendor
    assert "every key" not in proxy.log

    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    page = httpx.get("http://rotator.status/?format=json", headers={"x-api-key": KEYS["other"]}, timeout=10).json()
    rows = {row["client"]: row for row in page["clients"]}
    assert sorted(rows) == ["budget", "other", "rpm", "tpm"]
    budget = rows["budget"]
    assert (budget["day"]["requests"], budget["total"]["requests"]) == (3, 3)
    assert budget["total"]["input_tokens"] == sum(r.input_tokens or 0 for r in served) == 36
    assert budget["total"]["output_tokens"] == sum(r.output_tokens or 0 for r in served)
    assert budget["total"]["cost"] == pytest.approx(3.0)


@pytest.fixture(scope="module")
def ws_vendor() -> Iterator[FakeWebSocketVendor]:
    vendor = FakeWebSocketVendor().start()
    yield vendor
    vendor.stop()


def test_a_websocket_upgrade_over_its_clients_limit_gets_429_in_the_handshake(rotator, ws_vendor, fake_vendor,
                                                                              monkeypatch):
    ws_vendor.reset()
    held = [{"name": "ci", "key": KEYS["rpm"], "limits": [{"per": "month", "requests": 1}]}]
    proxy = rotator({"providers": {"openai": {"base_url": f"{ws_vendor.url}/v1"}}}, fresh=True, clients=held)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEYS["rpm"])
    assert call("anthropic", make_client("anthropic", max_retries=0), stream=False).text  # its one request

    async def upgrade() -> None:
        tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
        async with connect("wss://api.openai.com/v1/realtime?model=gpt-realtime", proxy=proxy.url, ssl=tls,
                           additional_headers={"Authorization": f"Bearer {KEYS['rpm']}"}, open_timeout=15):
            pass

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(upgrade())
    response = refused.value.response
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    assert "client ci is over its limit of 1 requests per month" in json.loads(response.body)["error"]["message"]
    time.sleep(QUIET)  # stays: absence. An upgrade that got through would have reached the vendor by now
    assert ws_vendor.handshakes == []


def test_a_plain_http_proxy_request_is_known_by_its_own_proxy_credentials(fake_vendor, rotator):
    proxy = rotator(fresh=True, clients=CLIENTS)

    def status(user: str, key: str) -> httpx.Response:
        return httpx.get("http://rotator.status/?format=json", proxy=f"http://{user}:{key}@127.0.0.1:{proxy.port}",
                         timeout=10, trust_env=False)

    assert status("team-a", TEAM_A).status_code == 200  # (no client key in the request: its proxy credentials)
    wrong = status("team-a", STRANGER)
    assert wrong.status_code == 407 and wrong.headers["proxy-authenticate"] == 'Basic realm="rotator"'
    assert "refused: proxy credentials matched no client (407)" in proxy.log and STRANGER not in proxy.full_log
