"""A plug-in whose every observing hook raises (tests/support/raising_plugin/) cannot fail a request: through a real
mitmdump, each protocol's SDK is served what the vendor answered, native and routed to another protocol's target,
streamed and whole, and the plug-in's error is logged once, naming it (rewrite/lifecycle/hooks.py)."""

from __future__ import annotations

import pytest

from tests.support.clients import PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT
from tests.support.raising_plugin import NAME

pytestmark = pytest.mark.e2e

SCRIPT = "tests/support/raising_plugin/rotator.py"
ROUTED = "via-claude"


def test_a_plugin_that_raises_in_every_observing_hook_leaves_each_protocols_requests_served(rotator, fake_vendor):
    proxy = rotator({"routes": [{"models": [ROUTED], "targets": ["anthropic/claude-haiku-4-5"]}]}, fresh=True,
                    script=SCRIPT)
    for protocol in PROTOCOLS:
        for stream in (True, False):
            assert call(protocol, make_client(protocol), stream=stream).text == TEXT, (protocol, stream)
    for stream in (True, False):  # (translated: the body built for the target, its answer tapped and read)
        assert call("chat", make_client("chat"), stream=stream, model=ROUTED).text == TEXT, stream
    assert len(fake_vendor.wait_for(2 * len(PROTOCOLS) + 2)) == 2 * len(PROTOCOLS) + 2

    logged = [line for line in proxy.full_log.splitlines() if f"plug-in {NAME} failed" in line]
    assert len(logged) == 1, logged
    assert f"{NAME} is broken" in logged[0]
