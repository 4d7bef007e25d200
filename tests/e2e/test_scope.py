"""Which connections Rotator opens, through a real `mitmdump -s addons/rotator.py` (addons/scope.py): a server no
provider claims is tunnelled (its own certificate, no flow), a configured provider's custom host is intercepted, a host
added by a config change is intercepted without a restart, a user's ignore_hosts and allow_hosts are respected, and
rotator_intercept=all opens everything again. tests/e2e/test_scope_tools.py has git, pip, npm and curl."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
from ruamel.yaml import YAML

from tests.support.cloud_certs import CloudCA
from tests.support.fake_vendor import Fault
from tests.support.flows import read_flows
from tests.support.harness import Rotator, default_config, merge
from tests.support.mitmweb import MitmwebProcess
from tests.support.tool_sites import StaticSite

INTERNAL = "llm.internal.example"
PAGE = b"the server's own answer\n"
PASSWORD = "rotator-test-scope-password"


@pytest.fixture
def own_ca_site(tmp_path):
    """An HTTPS server on localhost whose certificate is signed by a CA of its own (`.ca_file`)."""
    ca = CloudCA(tmp_path / "own-ca")
    sock = socket.create_server(("127.0.0.1", 0))
    site = StaticSite({("localhost", "/"): ("text/plain", PAGE)}, ca.server_context(("localhost",)), sock)
    site.ca_file = ca.ca_file  # type: ignore[attr-defined]
    yield site
    site.stop()


def fetch(proxy: Rotator, site: StaticSite, trust: Path) -> httpx.Response:
    with httpx.Client(proxy=proxy.url, verify=ssl.create_default_context(cafile=str(trust)), timeout=15,
                      trust_env=False) as http:
        return http.get(f"https://localhost:{site.port}/")


def hosts_of(flows_path: Path) -> set[str]:
    return {flow.request.pretty_host for flow in read_flows(flows_path)}


def internal_provider(fake_vendor, key: str = "sk-internal-1") -> dict:
    return {"internal": {"kind": "openai", "hosts": [INTERNAL], "base_url": f"{fake_vendor.url}/v1", "keys": [key]}}


def ask_internal() -> str:
    """A chat call to https://llm.internal.example/v1 through the proxy of the environment (trusting its CA)."""
    client = openai.OpenAI(base_url=f"https://{INTERNAL}/v1", api_key="sk-client-own", max_retries=0, timeout=15)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content or ""


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_a_server_with_its_own_ca_is_reached_trusting_only_that_ca(rotator, own_ca_site, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("-w", str(flows_path)))
    done = subprocess.run(["curl", "-sS", "--fail", "--proxy", proxy.url, "--cacert", str(own_ca_site.ca_file),
                           f"https://localhost:{own_ca_site.port}/"], capture_output=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, PAGE), done.stderr.decode()
    status = httpx.get("http://rotator.status/?format=json", proxy=proxy.url, trust_env=False, timeout=15).json()
    proxy.proc.stop()
    assert "localhost" not in hosts_of(flows_path) and "localhost" not in json.dumps(status)


def test_a_configured_providers_custom_host_is_intercepted(rotator, fake_vendor):
    rotator(fresh=True, providers=internal_provider(fake_vendor))
    fake_vendor.script(Fault.ok("served for the internal host"))
    assert ask_internal() == "served for the internal host"
    assert [r.credential for r in fake_vendor.calls()] == ["sk-internal-1"]


def test_a_host_added_by_a_config_change_is_intercepted_without_a_restart(fake_vendor, tmp_path, monkeypatch):
    proc = MitmwebProcess(default_config(fake_vendor.url), tmp_path / "web", password=PASSWORD)
    proc.start()
    try:
        Rotator(proc, monkeypatch).apply_env()
        with pytest.raises(openai.APIConnectionError):  # tunnelled to a name that resolves nowhere
            ask_internal()
        changed = tmp_path / "changed.yaml"
        YAML(typ="safe").dump(merge(default_config(fake_vendor.url), {"providers": internal_provider(fake_vendor)}),
                              changed)
        proc.call("PUT", "/options", {"rotator_config": str(changed)})  # (mitmweb's options editor)
        fake_vendor.script(Fault.ok("served after the change"))
        assert ask_internal() == "served after the change"
    finally:
        proc.stop()


def localhost_provider(fake_vendor) -> dict:
    return {"providers": {"local": {"kind": "openai", "hosts": ["localhost"], "base_url": f"{fake_vendor.url}/v1",
                                    "keys": ["sk-local-1"]}}}


def test_a_users_ignore_hosts_tunnels_even_a_claimed_host(rotator, fake_vendor, own_ca_site):
    claimed = rotator(localhost_provider(fake_vendor), fresh=True)
    with pytest.raises(httpx.ConnectError):  # intercepted: mitmproxy's certificate, not the site's
        fetch(claimed, own_ca_site, own_ca_site.ca_file)
    ignored = rotator(localhost_provider(fake_vendor), fresh=True, args=("--set", "ignore_hosts=^localhost:"))
    assert fetch(ignored, own_ca_site, own_ca_site.ca_file).content == PAGE


@pytest.mark.parametrize("option", ["allow_hosts=^localhost:", "rotator_intercept=all"])
def test_allow_hosts_or_the_debug_option_intercept_a_host_no_provider_claims(rotator, own_ca_site, tmp_path, option):
    flows_path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("--set", option, "--set", f"ssl_verify_upstream_trusted_ca={own_ca_site.ca_file}",
                                      "-w", str(flows_path)))
    assert fetch(proxy, own_ca_site, proxy.ca_cert).content == PAGE  # mitmproxy's certificate, trusted alone
    proxy.proc.stop()
    assert hosts_of(flows_path) == {"localhost"}
