"""The start-up block's pure parts (addons/welcome.py); tests/e2e/test_first_minutes.py reads it from a real proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from addons.welcome import Setup, proxy_url, welcome


@pytest.mark.parametrize("modes, host, port, auth, url", [
    (["regular"], "127.0.0.1", None, False, "http://127.0.0.1:8080"),
    (["regular"], "127.0.0.1", 9000, False, "http://127.0.0.1:9000"),
    (["regular@0.0.0.0:8888"], "127.0.0.1", None, True, "http://USER:PASSWORD@THIS-HOST:8888"),
    (["regular"], "::1", 8080, False, "http://[::1]:8080"),
    (["local", "regular@7000"], "127.0.0.1", None, False, "http://127.0.0.1:7000"),  # the first mode that listens
])
def test_the_proxy_url_clients_export(modes, host, port, auth, url):
    assert proxy_url(modes, host, port, auth) == url


def test_the_block_never_holds_a_password_and_says_what_to_use():
    setup = Setup(None, [("api.openai.com", "openai")], Path("/conf/mitmproxy-ca-cert.pem"),
                  "http://USER:PASSWORD@127.0.0.1:8080", proxyauth=True, clients=True)
    block = welcome(setup)
    assert "config: none (" in block and "embedded defaults" in block
    assert "intercepting: api.openai.com (openai)" in block
    assert "export HTTPS_PROXY=http://USER:PASSWORD@127.0.0.1:8080\n" in block
    assert "--proxyauth" in block and "`clients`" in block


def test_the_block_says_where_the_status_page_is_unless_it_is_off():
    setup = Setup(None, [], Path("/ca.pem"), "http://127.0.0.1:8080", proxyauth=False, clients=False,
                  status_host="rotator.status")
    assert "curl http://rotator.status/" in welcome(setup)
    setup.status_host = ""
    assert "rotator.status" not in welcome(setup)
