"""The listening address guard: what counts as beyond loopback, and when a pool there is refused."""

import pytest
from mitmproxy import exceptions
from mitmproxy.addons.proxyauth import ProxyAuth
from mitmproxy.test import taddons

from addons.exposure import Exposure, exposed_hosts, is_loopback
from rewrite.config import parse
from rewrite.engine import Engine


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "192.168.1.10", "example.com", "localhost.example.com"])
def test_hosts_beyond_loopback(host):
    assert not is_loopback(host)


def test_exposed_hosts_take_each_modes_own_address_first():
    assert exposed_hosts(["regular"], "127.0.0.1", None) == []
    assert exposed_hosts(["regular"], "", None) == [""]
    assert exposed_hosts(["regular", "socks5@0.0.0.0:1080"], "127.0.0.1", None) == ["0.0.0.0"]
    assert exposed_hosts(["regular@127.0.0.1:8080"], "0.0.0.0", None) == []
    assert exposed_hosts(["regular", "socks5"], "10.0.0.5", 8080) == ["10.0.0.5"]
    assert exposed_hosts(["not a mode"], "0.0.0.0", None) == []


POOL = "providers: {openai: {keys: [sk-pool]}}"


def exposure(config: str) -> Exposure:
    engine = Engine()
    engine.configure(parse(config))
    return Exposure(engine)


@pytest.mark.parametrize(
    "config, proxyauth, refused",
    [
        (POOL, None, True),
        (POOL, "any", True),
        (POOL, "user:pass", False),
        (POOL + "\nclients: [{name: a, key: rk-a-long-enough-client-key}]", None, False),
        ("", None, False),  # no pool: only a warning
    ],
)
async def test_a_pool_beyond_loopback_needs_authentication(config, proxyauth, refused):
    addon = exposure(config)
    with taddons.context(addon, ProxyAuth()) as tctx:
        tctx.configure(addon, listen_host="127.0.0.1", proxyauth=proxyauth)
        addon.running()
        if refused:  # at run time the change is refused and the old address kept
            with pytest.raises(exceptions.OptionsError, match=r"--proxyauth.*clients"):
                tctx.configure(addon, listen_host="0.0.0.0")
            assert tctx.options.listen_host == "127.0.0.1"
        else:
            tctx.configure(addon, listen_host="0.0.0.0")
            assert tctx.options.listen_host == "0.0.0.0"


async def test_the_default_listen_host_becomes_loopback():
    addon = exposure(POOL)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, listen_host="0.0.0.0")
        tctx.configure(addon, listen_host="")
        assert tctx.options.listen_host == "127.0.0.1"
