"""Who spent what, end to end through real mitmweb/mitmdump processes: each client's figures in `rotator.clients json`
(mitmweb's command bar), on the status page and in `/metrics`, equal to what the fake vendor billed, going on after a
restart (the state file); and a refused request's flow naming the client and the figure that refused it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.clients import MODELS, call, make_client
from tests.support.harness import default_config, merge
from tests.support.mitmweb import MitmwebProcess

pytestmark = pytest.mark.e2e

CLIENTS = [{"name": "team-a", "key": "rk-team-a-Spent-0001-aaaa", "budget": {"dollars": 100, "per": "month"}},
           {"name": "team-b", "key": "rk-team-b-Spent-0002-bbbb"}]
PRICES = {"*": {"input": 1_000_000 / 12, "output": 1}}  # each answer: $1 for its 12 input tokens, $1e-6/out


def clients_command(proc: MitmwebProcess) -> list[dict]:
    return json.loads(proc.call("POST", "/commands/rotator.clients", {"arguments": ["json"]}).json()["value"])


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # (as prometheus_client writes them)
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    assert found, (name, labels)
    return float(found.group(1))


def status(proc: MitmwebProcess, key: str, path: str = "/?format=json") -> httpx.Response:
    return httpx.get(f"http://rotator.status{path}", headers={"x-api-key": key}, timeout=10,
                     proxy=f"http://127.0.0.1:{proc.port}", trust_env=False)


def test_each_clients_figures_equal_the_vendors_and_go_on_after_a_restart(fake_vendor, tmp_path, monkeypatch):
    config = merge(default_config(fake_vendor.url), {"state": {"path": str(tmp_path / "state.db")},
                                                     "clients": CLIENTS, "prices": PRICES})
    billed: list = []

    def run(name: str, count: int) -> list[dict]:
        proc = MitmwebProcess(config, tmp_path / name)
        proc.start()
        try:
            monkeypatch.setenv("HTTPS_PROXY", f"http://team-a:{CLIENTS[0]['key']}@127.0.0.1:{proc.port}")
            monkeypatch.setenv("SSL_CERT_FILE", str(proc.ca_cert))
            monkeypatch.setenv("OPENAI_API_KEY", "sk-the-tools-own-key")
            for n in range(count):
                billed.append(call("chat", make_client("chat", max_retries=0), stream=n % 2 == 0))
            fake_vendor.wait_for(len(billed))
            rows = clients_command(proc)
            page = status(proc, CLIENTS[1]["key"]).json()
            metrics = status(proc, CLIENTS[1]["key"], "/metrics").text
            text = status(proc, CLIENTS[1]["key"], "/").text
        finally:
            proc.stop()
        assert page["clients"] == rows
        labels = {"client": "team-a", "provider": "openai", "model": MODELS["chat"]}
        assert metric(metrics, "rotator_client_requests_total", **labels) == len(billed)
        assert metric(metrics, "rotator_client_tokens_total", **labels, kind="input_tokens") == 12 * len(billed)
        assert metric(metrics, "rotator_client_cost_dollars_total", **labels) == pytest.approx(rows[0]["total"]["cost"])
        assert "team-a  openai    gpt-4o-mini" in text and "in all" in text
        return rows

    first = run("first", 2)
    [row] = first
    assert (row["client"], row["provider"], row["model"]) == ("team-a", "openai", MODELS["chat"])
    out = sum(r.output_tokens or 0 for r in billed)
    assert row["total"]["requests"] == row["month"]["requests"] == 2
    assert (row["total"]["input_tokens"], row["total"]["output_tokens"]) == (24, out)
    assert row["total"]["cost"] == pytest.approx(2 + out / 1e6)

    [row] = run("second", 1)  # counting on from what the state file kept
    out = sum(r.output_tokens or 0 for r in billed)
    assert (row["total"]["requests"], row["day"]["requests"]) == (3, 3)
    assert (row["total"]["input_tokens"], row["total"]["output_tokens"]) == (36, out)
    assert row["total"]["cost"] == pytest.approx(3 + out / 1e6)


def test_a_refused_requests_flow_names_its_client_and_the_figure(fake_vendor, rotator, monkeypatch, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    held = [{"name": "ci", "key": "rk-ci-Held-0001-aaaaaaaa", "limits": [{"per": "month", "requests": 1}]}]
    proxy = rotator(fresh=True, args=("-w", str(flows_path)), clients=held)
    monkeypatch.setenv("HTTPS_PROXY", f"http://ci:{held[0]['key']}@127.0.0.1:{proxy.port}")

    assert call("chat", make_client("chat", max_retries=0), stream=True).text
    with pytest.raises(openai.RateLimitError):
        call("chat", make_client("chat", max_retries=0), stream=True)
    fake_vendor.wait_for(1)
    proxy.wait_log("giving up: client ci is over its limit of 1 requests per month")
    proxy.proc.stop()

    from mitmproxy import io as mitm_io

    with Path(flows_path).open("rb") as f:
        flows = [f for f in mitm_io.FlowReader(f).stream() if f.request.method != "CONNECT"]
    assert [(f.response.status_code, f.metadata["rotator"].get("client")) for f in flows] == [(200, "ci"), (429, "ci")]
    assert flows[1].metadata["rotator"]["client_check"] == {"client": "ci", "refused": "limit of 1 requests per month",
                                                            "status": 429}
    assert flows[1].comment.startswith("failed (client ci is over its limit")
    assert held[0]["key"].encode() not in flows_path.read_bytes()
