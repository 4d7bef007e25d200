"""The e2e harness itself, proven with a stand-in addon (tests/e2e/stub_addon.py) so it does not depend on the
state of addons/rotator.py: real mitmdump, TLS interception with its CA, SDKs built with no arguments."""

from __future__ import annotations

import os

import pytest
from ruamel.yaml import YAML

from tests.support.clients import PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT
from tests.support.harness import CLIENT_KEYS, POOL_KEYS, STUB_ADDON, RotatorStartError

pytestmark = pytest.mark.e2e
STUB = STUB_ADDON


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_sdks_built_with_no_arguments_go_through_the_proxy(fake_vendor, rotator, stream):
    proxy = rotator(script=STUB)

    for protocol in PROTOCOLS:
        result = call(protocol, make_client(protocol), stream=stream)
        assert result.text == TEXT, protocol

    pool = {key for keys in POOL_KEYS.values() for key in keys}
    assert set(fake_vendor.keys()) <= pool
    assert not set(fake_vendor.keys()) & set(CLIENT_KEYS.values())
    assert [r.protocol for r in fake_vendor.requests] == list(PROTOCOLS)
    assert "proxy listening" in proxy.full_log


def test_env_is_applied_for_the_test(rotator):
    proxy = rotator(script=STUB)

    assert proxy.env == {
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
        "SSL_CERT_FILE": str(proxy.ca_cert),
        "OPENAI_API_KEY": "sk-client-placeholder",
        "ANTHROPIC_API_KEY": "sk-ant-client-placeholder",
        "GEMINI_API_KEY": "client-placeholder",
    }
    assert {k: os.environ.get(k) for k in proxy.env} == proxy.env
    assert proxy.ca_cert.exists()
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_API_KEY"):
        assert name not in os.environ


def test_processes_are_shared_by_config(rotator):
    a = rotator(script=STUB)
    b = rotator(script=STUB)
    c = rotator(script=STUB, fresh=True)  # (another config gets its own process too: test_config_contract...)

    assert a.port == b.port != c.port
    assert a.proc.alive() and c.proc.alive()


def test_config_contract_and_env_keys(fake_vendor, rotator):
    proxy = rotator(
        script=STUB,
        providers={"openai": {"keys": ["${ROTATOR_TEST_KEY}"]}, "gemini": None},
        streaming={"first_token_timeout": 10},
        env={"ROTATOR_TEST_KEY": "sk-from-env"},
    )

    written = YAML(typ="safe").load(proxy.config_path.read_text())
    assert written == {
        "providers": {
            "openai": {"base_url": f"{fake_vendor.url}/v1", "keys": ["${ROTATOR_TEST_KEY}"]},
            "anthropic": {"base_url": fake_vendor.url, "keys": ["sk-ant-pool-1", "sk-ant-pool-2"]},
        },
        "streaming": {"first_token_timeout": 10, "idle_timeout": 120},
        "state": {"path": str(proxy.proc.workdir / "state.db")},  # each process's own, never the home's
    }
    call("chat", make_client("chat"), stream=False)
    assert fake_vendor.keys() == ["sk-from-env"]


def test_log_is_per_test_and_startup_failures_show_it(rotator):
    started = rotator(script=STUB, fresh=True)
    assert "Loading script" in started.log  # a process started for this handle: its start-up is the test's too
    first = rotator(script=STUB)
    again = rotator(script=STUB)  # (shared: the same process, handed again)
    assert again.proc is first.proc
    assert "Loading script" not in again.log  # only what was logged since this handle was taken
    assert "Loading script" in again.full_log

    with pytest.raises(RotatorStartError, match="No such script|not found|does not exist"):
        rotator(script="tests/e2e/no_such_addon.py", fresh=True)
