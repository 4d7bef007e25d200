"""The start-up block's pure parts (addons/welcome.py); tests/e2e/test_first_minutes.py reads it from a real proxy."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy.proxy.mode_specs import ProxyMode

from addons.welcome import DEFAULT_CONFDIR, WRAPPER, Setup, proxy_url, reverse_listeners, welcome


@pytest.mark.parametrize("modes, host, port, auth, url", [
    (["regular"], "127.0.0.1", None, False, "http://127.0.0.1:8080"),
    (["regular"], "127.0.0.1", 9000, False, "http://127.0.0.1:9000"),
    (["regular@0.0.0.0:8888"], "127.0.0.1", None, True, "http://USER:PASSWORD@THIS-HOST:8888"),
    (["regular"], "::1", 8080, False, "http://[::1]:8080"),
    (["local", "regular@7000"], "127.0.0.1", None, False, "http://127.0.0.1:7000"),  # the first mode that listens
    (["reverse:https://api.openai.com@8083", "regular@7000"], "127.0.0.1", None, False, "http://127.0.0.1:7000"),
    (["reverse:https://api.openai.com@8083"], "127.0.0.1", None, False, ""),  # a reverse listener is no proxy
])
def test_the_proxy_url_clients_export(modes, host, port, auth, url):
    assert proxy_url(modes, host, port, auth) == url


def test_the_block_never_holds_a_password_and_says_what_to_use():
    setup = Setup(None, [("api.openai.com", "openai")], Path("/conf/mitmproxy-ca-cert.pem"),
                  "http://USER:PASSWORD@127.0.0.1:8080", proxyauth=True, clients=True)
    block = welcome(setup)
    assert "config: none (" in block and "embedded defaults" in block
    assert "intercepting: api.openai.com (openai)" in block
    assert " --proxy http://USER:PASSWORD@127.0.0.1:8080 " in block
    assert "--proxyauth" in block and "`clients`" in block


def test_the_block_says_where_the_status_page_is_unless_it_is_off():
    setup = Setup(None, [], Path("/ca.pem"), "http://127.0.0.1:8080", proxyauth=False, clients=False,
                  status_host="rotator.status")
    assert "curl -x http://127.0.0.1:8080 http://rotator.status/\n" in welcome(setup) + "\n"
    assert "curl -x http://127.0.0.1:8080 http://rotator.status/metrics\n" in welcome(setup) + "\n"
    setup.clients = True
    assert "curl -x http://127.0.0.1:8080 -H 'x-api-key: CLIENT-KEY' http://rotator.status/\n" in welcome(setup)
    assert "curl -x http://127.0.0.1:8080 -H 'x-api-key: CLIENT-KEY' http://rotator.status/metrics\n" in welcome(setup)
    setup.status_host = ""
    assert "rotator.status" not in welcome(setup)


def test_reverse_listeners_are_named_with_the_vendor_they_serve():
    modes = ["reverse:https://api.anthropic.com@8082", "reverse:https://api.openai.com@0.0.0.0:8083", "regular"]
    listeners = reverse_listeners(modes, "127.0.0.1", 8080)
    assert listeners == [("http://127.0.0.1:8082", "https://api.anthropic.com"),
                         ("http://THIS-HOST:8083", "https://api.openai.com")]
    block = welcome(Setup(None, [], Path("/ca.pem"), "", proxyauth=False, clients=False,
                          status_host="rotator.status", reverse=listeners))
    assert "    http://127.0.0.1:8082 serves https://api.anthropic.com\n" in block
    assert "HTTPS_PROXY" not in block and "trust mitmproxy's CA" not in block and "rotator.status" not in block


def test_a_listener_asked_for_port_0_is_named_with_the_port_it_was_given():
    modes = ["regular", "reverse:https://api.openai.com"]
    bound = {ProxyMode.parse("regular"): 41001, ProxyMode.parse("reverse:https://api.openai.com"): 41002}
    assert proxy_url(modes, "127.0.0.1", 0, False, bound) == "http://127.0.0.1:41001"
    assert reverse_listeners(modes, "127.0.0.1", 0, bound) == [("http://127.0.0.1:41002", "https://api.openai.com")]
    assert proxy_url(modes, "127.0.0.1", 0, False) == "http://127.0.0.1:0"  # (not bound yet: as asked)


@pytest.mark.parametrize("proxy, ca, options", [
    ("http://127.0.0.1:8080", DEFAULT_CONFDIR / "mitmproxy-ca-cert.pem", ""),  # the wrapper's own defaults
    ("http://127.0.0.1:9000", DEFAULT_CONFDIR / "mitmproxy-ca-cert.pem", " --proxy http://127.0.0.1:9000"),
    ("http://127.0.0.1:8080", Path("/srv/my ca/mitmproxy-ca-cert.pem"), " --confdir '/srv/my ca'"),
])
def test_the_block_runs_tools_through_the_wrapper_for_this_proxy(proxy, ca, options):
    """No trust store replaced: the block names scripts/with-rotator, with this proxy's address and confdir where
    they are not the wrapper's defaults, and its --print-env for a whole shell."""
    block = welcome(Setup(None, [], ca, proxy, proxyauth=False, clients=False))
    assert f"    {WRAPPER}{options} CMD [ARGS...]" in block, block
    assert f'    eval "$({WRAPPER}{options} --print-env)"' in block, block
    assert "export" not in block and "SSL_CERT_FILE" not in block, block
    assert WRAPPER.is_file()


def test_the_block_says_everything_else_is_tunnelled_unless_told_otherwise():
    setup = Setup(None, [("api.openai.com", "openai")], Path("/ca.pem"), "http://127.0.0.1:8080", proxyauth=False,
                  clients=False)
    lines = welcome(setup).splitlines()
    assert "  intercepting: api.openai.com (openai)" in lines
    assert lines[lines.index("  intercepting: api.openai.com (openai)") + 1].startswith(
        "  everything else is tunnelled untouched")
    setup.intercept = "all"
    assert "rotator_intercept=all: every other HTTPS connection is decrypted too" in welcome(setup)
    setup.allow_hosts = True
    assert "allow_hosts decides" in welcome(setup) and "tunnelled" not in welcome(setup)
