"""Rotator behind a corporate egress proxy, end to end: a real `mitmdump -s addons/rotator.py`, the official SDKs,
and a small HTTP proxy on 127.0.0.1 (tests/support/egress_proxy.py) that reaches the fake vendor and nothing else. Its
own upstream calls go through the proxy given as `upstream_proxy` or as mitmproxy's `--mode upstream:URL`: an
https base URL through a CONNECT tunnel (to a TLS front for the fake vendor, trusted with `upstream_ca`), an
http base URL as absolute-form requests; the proxy's password shows nowhere."""

from __future__ import annotations

import json

import pytest

from tests.support.clients import PROTOCOLS, call, make_client
from tests.support.egress_proxy import ConnectProxy, TLSFront

pytestmark = pytest.mark.e2e

USER, PASSWORD = "corp-user", "Egress-Secret-77"
VENDOR_HOST = "api.vendor.test"  # resolved by the proxy only: Rotator's host has no DNS entry for it


@pytest.fixture
def vendor_over_tls(fake_vendor, tmp_path):
    """A TLS front for the fake vendor as https://api.vendor.test, behind a proxy that requires credentials."""
    front = TLSFront(tmp_path, VENDOR_HOST, ("127.0.0.1", fake_vendor.port))
    proxy = ConnectProxy({f"{VENDOR_HOST}:443": None}, credentials=(USER, PASSWORD), front=front).start()
    yield proxy, front
    proxy.stop()


def https_config(front: TLSFront) -> dict:
    base = f"https://{VENDOR_HOST}"
    return {"providers": {"openai": {"base_url": f"{base}/v1"}, "anthropic": {"base_url": base},
                          "gemini": {"base_url": base}},
            "upstream_ca": str(front.ca_file)}


def assert_password_hidden(proxy) -> None:
    assert PASSWORD not in proxy.log
    assert "http://…@127.0.0.1:" in proxy.log


def test_https_base_urls_go_through_a_connect_tunnel_of_upstream_proxy(fake_vendor, rotator, vendor_over_tls):
    egress, front = vendor_over_tls
    proxy = rotator(https_config(front), upstream_proxy=f"http://{USER}:{PASSWORD}@127.0.0.1:{egress.port}")

    for protocol in PROTOCOLS:
        assert call(protocol, make_client(protocol), stream=True).text
    assert call("chat", make_client("chat"), stream=False).text

    requests = fake_vendor.wait_for(len(PROTOCOLS) + 1)
    assert all(r.headers["host"] == VENDOR_HOST for r in requests)  # the vendor was reached as api.vendor.test
    assert {(a.method, a.target, a.proxy_authorization is not None) for a in egress.seen} == {
        ("CONNECT", f"{VENDOR_HOST}:443", True)}
    assert all(a.status == 200 for a in egress.seen)
    assert front.connections >= 1
    assert_password_hidden(proxy)
    assert f"upstream calls go through the proxy http://…@127.0.0.1:{egress.port} (upstream_proxy)" in proxy.log


def test_http_base_urls_go_to_the_proxy_in_absolute_form(fake_vendor, rotator):
    vendor = f"127.0.0.1:{fake_vendor.port}"
    egress = ConnectProxy({vendor: ("127.0.0.1", fake_vendor.port)}, credentials=(USER, PASSWORD)).start()
    try:
        proxy = rotator(upstream_proxy=f"http://{USER}:{PASSWORD}@127.0.0.1:{egress.port}")
        for protocol in PROTOCOLS:
            assert call(protocol, make_client(protocol), stream=False).text
        fake_vendor.wait_for(len(PROTOCOLS))
    finally:
        egress.stop()
    # Each call was one absolute-form request to the proxy, for exactly what the vendor then received.
    assert [a.target for a in egress.seen] == [
        f"http://{vendor}{r.path}" + (f"?{r.query}" if r.query else "") for r in fake_vendor.requests]
    assert [r.protocol for r in fake_vendor.requests] == list(PROTOCOLS)
    assert all(a.method == "POST" and a.status == 200 and a.proxy_authorization for a in egress.seen)
    assert all("proxy-authorization" not in r.headers for r in fake_vendor.requests)
    assert_password_hidden(proxy)


def test_mitmproxy_upstream_mode_carries_rotators_own_calls(fake_vendor, rotator, vendor_over_tls):
    egress, front = vendor_over_tls
    mode = ("--mode", f"upstream:http://127.0.0.1:{egress.port}", "--upstream-auth", f"{USER}:{PASSWORD}")
    proxy = rotator(https_config(front), fresh=True, args=mode)

    for protocol in PROTOCOLS:
        assert call(protocol, make_client(protocol), stream=True).text

    fake_vendor.wait_for(len(PROTOCOLS))
    # Only Rotator's own calls went through the proxy; the intercepted flows reached Rotator's loopback server
    # directly (the proxy, like a corporate one, cannot reach this host's loopback).
    assert {(a.method, a.target, a.status) for a in egress.seen} == {("CONNECT", f"{VENDOR_HOST}:443", 200)}
    assert_password_hidden(proxy)
    assert f"upstream calls go through the proxy http://…@127.0.0.1:{egress.port} (--mode upstream)" in proxy.log


def test_a_proxy_that_refuses_is_reported_without_its_password(fake_vendor, rotator, vendor_over_tls):
    egress, front = vendor_over_tls
    rotator(https_config(front), upstream_proxy=f"http://{USER}:wrong-{PASSWORD}@127.0.0.1:{egress.port}",
            streaming={"first_token_retries": 1})
    client = make_client("chat").with_options(max_retries=0)
    with pytest.raises(Exception) as e:
        call("chat", client, stream=False)
    assert getattr(e.value, "status_code", None) == 502, e.value
    assert "407" in str(e.value.body) and PASSWORD not in str(e.value.body)
    assert fake_vendor.requests == []
    assert egress.seen and all(a.status == 407 for a in egress.seen)


@pytest.mark.parametrize("protocol", ["chat", "anthropic"])
def test_a_proxy_that_refuses_an_absolute_form_request_is_a_502_not_the_vendors_407(fake_vendor, rotator, protocol):
    vendor = f"127.0.0.1:{fake_vendor.port}"
    egress = ConnectProxy({vendor: ("127.0.0.1", fake_vendor.port)}, credentials=(USER, PASSWORD)).start()
    try:
        proxy = rotator(upstream_proxy=f"http://{USER}:wrong-{PASSWORD}@127.0.0.1:{egress.port}",
                        streaming={"first_token_retries": 1})
        client = make_client(protocol).with_options(max_retries=0)
        with pytest.raises(Exception) as e:
            call(protocol, client, stream=False)
    finally:
        egress.stop()
    assert getattr(e.value, "status_code", None) == 502, e.value
    message = json.dumps(e.value.body)
    assert "upstream proxy" in message and "refused" in message and "407" in message
    assert PASSWORD not in message
    assert fake_vendor.requests == []
    assert egress.seen and all(a.status == 407 for a in egress.seen)
    assert_password_hidden(proxy)
