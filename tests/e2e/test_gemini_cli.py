"""The real Gemini CLI (`gemini -p`) through a real mitmdump, against the fake vendor.

Gemini CLI gets only what a user would set: HTTPS_PROXY, NODE_EXTRA_CA_CERTS and GEMINI_API_KEY, with an empty home
whose settings choose API-key auth and turn telemetry and update checks off. The proxy answers every host but the
Gemini API's with 403 (mitmproxy's block_list), so nothing leaves 127.0.0.1.

The CLI is installed by scripts/setup-agents (CI runs it); without npm or its registry these tests skip.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.harness import REPO, Rotator, agent_environ

pytestmark = pytest.mark.e2e

GEMINI = REPO / ".cache" / "agents" / "gemini" / "node_modules" / ".bin" / "gemini"
LOOPBACK_ONLY = ("--set", r"block_list=|!~d ^generativelanguage\.googleapis\.com$|403")
SETTINGS = {"security": {"auth": {"selectedType": "gemini-api-key"}}, "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False}, "general": {"disableAutoUpdate": True, "disableUpdateNag": True}}


@pytest.fixture(scope="session")
def gemini_bin() -> Path:
    if not GEMINI.exists():
        setup = subprocess.run([str(REPO / "scripts" / "setup-agents"), "gemini"], capture_output=True, text=True,
                               timeout=600)
        if setup.returncode != 0:
            pytest.skip(f"Gemini CLI could not be installed with npm: {setup.stderr.strip()[-500:]}")
    return GEMINI


def run_gemini(gemini: Path, proxy: Rotator, tmp_path: Path, prompt: str = "Say hello") -> subprocess.CompletedProcess:
    work, env = agent_environ(tmp_path, proxy)
    settings = Path(env["HOME"]) / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(SETTINGS))
    env |= {"NODE_EXTRA_CA_CERTS": str(proxy.ca_cert), "GEMINI_API_KEY": "client-placeholder-key",
            "GEMINI_TELEMETRY_ENABLED": "false", "GEMINI_CLI_NO_RELAUNCH": "true", "GEMINI_CLI_TRUST_WORKSPACE": "true"}
    return subprocess.run([str(gemini), "-m", "gemini-2.5-flash", "-p", prompt], cwd=work, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_gemini_cli_answers_through_rotator(gemini_bin, rotator, fake_vendor, tmp_path):
    proxy = rotator(fresh=True, args=LOOPBACK_ONLY)

    done = run_gemini(gemini_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    calls = fake_vendor.wait_for(1)
    assert calls[0].credential.startswith("g-pool-")  # from the pool, not the client's key


def test_gemini_cli_prints_one_whole_answer_when_its_stream_is_cut(gemini_bin, rotator, fake_vendor, tmp_path):
    """A stream reset after its first words is continued by Rotator (Gemini 2.5 takes a trailing model turn): the CLI
    prints the whole answer, once, and asks nothing more itself."""
    proxy = rotator(streaming={"first_token_timeout": 5}, fresh=True, args=LOOPBACK_ONLY)
    prefix = "".join(split_text(TEXT)[:2])
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), Fault().ok(TEXT[len(prefix):]))

    done = run_gemini(gemini_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1, done.stdout
    first, continuation = fake_vendor.wait_for(2)[:2]
    assert continuation.body["contents"][-1] == {"role": "model", "parts": [{"text": prefix}]}
    time.sleep(1)  # stays: absence. A second turn still on its way through the proxy would reach the vendor by now
    assert len(fake_vendor.calls()) == 2, [c.path for c in fake_vendor.calls()]  # no second turn from the CLI
