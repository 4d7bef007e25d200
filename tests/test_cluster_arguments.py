"""scripts/cluster's arguments: its own options, the balancer's address taken from scripts/run's, and everything else
passed on to every worker; what it cannot run is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from cluster_lib.arguments import Plan, UsageError, exposure_problem, parse  # noqa: E402 - on the path just above


def test_the_proxy_address_is_the_balancers_and_the_rest_goes_to_every_worker():
    plan = parse(["--workers", "3", "--listen-host=0.0.0.0", "-p", "9000", "--proxyauth", "u:p", "--set",
                  "rotator_config=r.yaml", "--set", "confdir=/ca", "--set", "http2=false", "-w", "flows"])
    assert (plan.workers, plan.host, plan.port, plan.rotator_config, plan.confdir) == (3, "0.0.0.0", 9000, "r.yaml",
                                                                                     Path("/ca"))
    assert plan.worker_args == ["--proxyauth", "u:p", "--set", "http2=false", "-w", "flows"]
    assert plan.proxy_url == "http://USER:PASSWORD@THIS-HOST:9000"
    assert parse(["--set", "listen_port=7000", "--set", "listen_host=::1"]).proxy_url == "http://[::1]:7000"


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "--workers wants a whole number from 1 to 64, not '0'"),
    (["--workers"], "--workers needs a value"),
    (["--listen-port", "http"], "--listen-port wants a whole number from 1 to 65535, not 'http'"),
    (["--mode", "reverse:https://api.openai.com"], "--mode is not supported"),
    (["--set", "mode=socks5"], "mode is not supported"),
])
def test_what_it_cannot_run_is_one_line(argv, message):
    with pytest.raises(UsageError, match="^[^\n]*$") as e:
        parse(argv)
    assert message in str(e.value)


def test_pools_beyond_loopback_need_authentication():
    exposed = Plan(host="0.0.0.0")
    assert "refusing to serve key pools on 0.0.0.0" in (exposure_problem(exposed, pooled=True, clients=False) or "")
    assert exposure_problem(exposed, pooled=True, clients=True) is None
    assert exposure_problem(Plan(host="0.0.0.0", proxyauth="u:p"), pooled=True, clients=False) is None
    assert exposure_problem(exposed, pooled=False, clients=False) is None
    assert exposure_problem(Plan(), pooled=True, clients=False) is None  # loopback
    assert "every interface" in (exposure_problem(Plan(host=""), pooled=True, clients=False) or "")
