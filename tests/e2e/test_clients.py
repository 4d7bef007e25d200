"""Clients end to end through a real `mitmdump -s addons/rotator.py` with the official SDKs: known by their proxy
credentials (`HTTPS_PROXY=http://NAME:KEY@...`), a wrong pair refused with 407 before anything is relayed."""

from __future__ import annotations

import time

import openai
import pytest

from tests.support.clients import call, make_client
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
