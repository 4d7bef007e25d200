"""A client whose key slot holds its own subscription login, known by its proxy credentials: the real Claude Code on
a Pro/Max login (the fake vendor's `claude_login` dialect, as tests/e2e/test_logins_claude.py drives it) through a
real mitmdump, attributed to its client while its signed body goes to the vendor byte for byte."""

from __future__ import annotations

import pytest

from tests.support import logins
from tests.support.fake_vendor import TEXT
from tests.support.flows import read_flows
from tests.support.raw_http import through
from tests.support.witness_addon import witnessed

pytestmark = pytest.mark.e2e

CLIENT = {"name": "laptop", "key": "rk-laptop-Login-0001-aaaa"}


@pytest.fixture(scope="session")
def claude():
    return logins.need("claude")


def test_claude_code_on_its_login_is_attributed_by_its_proxy_credentials(claude, rotator, fake_vendor, tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, {"clients": [CLIENT]}, witness=True)
    login = logins.claude_login(tmp_path, proxy)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        login.env[name] = f"http://{CLIENT['name']}:{CLIENT['key']}@127.0.0.1:{proxy.port}"

    done = logins.run(login)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [call] = fake_vendor.calls()
    assert (call.dialect, call.credential) == ("claude_login", logins.CLAUDE_TOKEN)
    [signed] = [body for line, body in witnessed(tmp_path / "witness") if line["host"] == "api.anthropic.com"]
    assert call.raw_body == signed  # byte for byte
    assert "proxy-authorization" not in call.headers
    page = through(proxy).get("http://rotator.status/?format=json", headers={"x-api-key": CLIENT["key"]}).json()
    [row] = [r for r in page["clients"] if r["provider"] == "claude_login"]
    assert row["client"] == "laptop" and row["total"]["requests"] == 1
    assert row["total"]["covered"] == 1 and row["total"]["cost"] == 0  # covered by the login's plan
    assert row["total"]["output_tokens"] > 0
    proxy.proc.stop()
    [flow] = [f for f in read_flows(tmp_path / "flows") if f.request.path.startswith("/v1/messages")]
    assert flow.metadata["rotator"]["client"] == "laptop"
    assert CLIENT["key"] not in proxy.full_log and CLIENT["key"].encode() not in (tmp_path / "flows").read_bytes()
