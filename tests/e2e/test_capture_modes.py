"""Reverse mode through a real `mitmdump -s addons/rotator.py`: one listener per vendor
(`--mode reverse:https://api.anthropic.com@PORT`), each official SDK's base URL pointed at it over plain http on
loopback, with no proxy variable and no CA to trust. Rotator serves what the vendor URL stands for (the fake vendor
here, the providers' base_url): pooled keys, repairs, routes and the flow's record work as they do through
HTTPS_PROXY. (Regular mode is what every other e2e test uses.)"""

from __future__ import annotations

import pytest

from tests.support.clients import TRUNCATED, call, make_client
from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.flows import read_vendor_flows
from tests.support.harness import CLIENT_KEYS, POOL_KEYS, RotatorStartError, free_port, port_taken
from tests.support.reliability import FIRST_TOKEN_TIMEOUT
from tests.support.startup import wait_for_block

pytestmark = pytest.mark.e2e

VENDORS = {"anthropic": "https://api.anthropic.com", "chat": "https://api.openai.com",
           "gemini": "https://generativelanguage.googleapis.com"}
API_KEYS = {"anthropic": CLIENT_KEYS["ANTHROPIC_API_KEY"], "chat": CLIENT_KEYS["OPENAI_API_KEY"],
            "gemini": CLIENT_KEYS["GEMINI_API_KEY"]}
FAMILY = {"anthropic": "anthropic", "chat": "openai", "gemini": "gemini"}
DELTAS = 2
PREFIX = "".join(split_text(TEXT)[:DELTAS])


def reverse_proxy(rotator, *, args: tuple[str, ...] = (), **config) -> tuple[object, dict[str, str]]:
    """A proxy whose only listeners are reverse ones, one per vendor; (its handle, protocol -> base URL), the base
    URLs as the start-up block prints them."""
    for attempt in range(3):
        modes: list[str] = []
        for vendor in VENDORS.values():
            # The first takes --listen-port (where the harness waits for the proxy); the others their own port.
            at = "" if not modes else f"@{free_port()}"
            modes += ["--mode", f"reverse:{vendor}{at}"]
        try:
            proxy = rotator(config or None, fresh=True, apply_env=False, args=(*modes, *args))
            break
        except RotatorStartError as e:  # (a port drawn here, taken by another test's connection before the bind)
            if attempt == 2 or not port_taken(str(e)):
                raise
    block = wait_for_block(proxy, f"serves {list(VENDORS.values())[-1]}")
    lines = [line.split(" serves ") for line in block.splitlines() if " serves " in line]
    served = {vendor: listener.strip() for listener, vendor in lines}  # vendor URL -> the listener's URL
    assert f"http://127.0.0.1:{proxy.port}" in served.values() and "HTTPS_PROXY" not in block, block
    return proxy, {protocol: served[vendor] for protocol, vendor in VENDORS.items()}


def client(protocol: str, base_url: str):
    return make_client(protocol, base_url=base_url, api_key=API_KEYS[protocol])


@pytest.mark.parametrize("protocol", list(VENDORS))
def test_each_sdk_at_a_reverse_listener_is_served_from_the_pool(fake_vendor, rotator, protocol, tmp_path):
    flows = tmp_path / "flows.mitm"
    proxy, urls = reverse_proxy(rotator, args=("-w", str(flows)))
    for stream in (True, False):
        seen = call(protocol, client(protocol, urls[protocol]), stream=stream)
        assert seen.text == TEXT
    assert fake_vendor.keys() == POOL_KEYS[FAMILY[protocol]][:2]  # the pool's keys in turn, never the client's
    proxy.proc.stop()  # the flow file is complete once mitmdump has exited
    recorded = read_vendor_flows(flows)
    assert len(recorded) == 2
    for flow in recorded:  # the flow's record: the vendor it stands for, with Rotator's metadata
        assert flow.request.pretty_host == VENDORS[protocol].removeprefix("https://")
        assert flow.metadata["rotator"]["usage"]["output_tokens"] > 0
    assert not any(key.encode() in flows.read_bytes() for keys in POOL_KEYS.values() for key in keys)


@pytest.mark.parametrize("protocol", list(VENDORS))
def test_a_cut_stream_at_a_reverse_listener_ends_truncated(fake_vendor, rotator, protocol):
    _, urls = reverse_proxy(rotator)
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"))
    seen = call(protocol, client(protocol, urls[protocol]), stream=True)
    assert seen.text == PREFIX
    assert seen.finish == TRUNCATED[protocol]


def test_a_first_key_that_stalls_is_retried_on_the_next(fake_vendor, rotator):
    _, urls = reverse_proxy(rotator, streaming={"first_token_timeout": FIRST_TOKEN_TIMEOUT, "first_token_retries": 1})
    first, second = POOL_KEYS["anthropic"][:2]
    fake_vendor.script(Fault.stall_before_headers(20), key=first)
    seen = call("anthropic", client("anthropic", urls["anthropic"]), stream=True)
    assert seen.text == TEXT
    assert fake_vendor.keys() == [first, second]


def test_a_route_serves_a_reverse_listeners_client_from_another_vendor(fake_vendor, rotator):
    """Claude Code's shape: an Anthropic client at the Anthropic listener, its model served by an OpenAI-compatible
    target."""
    target_keys = ["sk-deepseek-rev-1"]
    _, urls = reverse_proxy(
        rotator,
        providers={"deepseek": {"kind": "openai", "base_url": f"{fake_vendor.url}/v1", "keys": target_keys}},
        routes=[{"models": ["claude-via-deepseek"], "targets": ["deepseek/deepseek-chat"]}],
    )
    seen = call("anthropic", client("anthropic", urls["anthropic"]), stream=True, model="claude-via-deepseek")
    assert seen.text == TEXT
    [req] = fake_vendor.calls()
    assert (req.protocol, req.model, req.credential) == ("chat", "deepseek-chat", target_keys[0])
