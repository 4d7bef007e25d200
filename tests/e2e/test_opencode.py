"""The real opencode CLI (`opencode run`) through a real mitmdump, against the fake vendor.

opencode's OpenAI provider (the AI SDK's) speaks the Responses API to api.openai.com; it gets only what a user
would set: HTTPS_PROXY, NODE_EXTRA_CA_CERTS and OPENAI_API_KEY, its config in OPENCODE_CONFIG_CONTENT, and the
variables that stop its update check, its model-list download and its default plugins. The proxy answers every host
but api.openai.com with 403 (mitmproxy's block_list), so nothing else leaves 127.0.0.1.

The CLI is installed by scripts/setup-opencode (CI runs it); without npm or its registry these tests skip.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.harness import REPO, Rotator, agent_environ
from tests.support.reliability import RESUME_OFF

pytestmark = pytest.mark.e2e

OPENCODE = REPO / ".cache" / "opencode" / "node_modules" / ".bin" / "opencode"
LOOPBACK_ONLY = ("--set", r"block_list=|!~d ^api\.openai\.com$|403")
MODEL = "gpt-4.1"
QUIET = {  # what stops opencode calling home: its update check, models.dev, plugin installs, LSP downloads
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
}


@pytest.fixture(scope="session")
def opencode_bin() -> Path:
    if not OPENCODE.exists():
        setup = subprocess.run([str(REPO / "scripts" / "setup-opencode")], capture_output=True, text=True, timeout=600)
        if setup.returncode != 0:
            pytest.skip(f"opencode could not be installed with npm: {setup.stderr.strip()[-500:]}")
    return OPENCODE


def opencode_config(model: str = MODEL) -> dict:
    return {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "model": f"openai/{model}",
        "provider": {"openai": {"models": {model: {"name": model}}}},
    }


def run_opencode(opencode: Path, proxy: Rotator, tmp_path: Path, prompt: str = "Say hello",
                 model: str = MODEL) -> subprocess.CompletedProcess:
    work, env = agent_environ(tmp_path, proxy)
    home = Path(env["HOME"])
    env |= {
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "NODE_EXTRA_CA_CERTS": str(proxy.ca_cert),
        "OPENAI_API_KEY": "sk-client-placeholder",
        "OPENCODE_CONFIG_CONTENT": json.dumps(opencode_config(model)),
        **QUIET,
    }
    return subprocess.run(
        [str(opencode), "run", "--format", "json", "--title", "rotator test", prompt],
        cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90,
    )


def shown(done: subprocess.CompletedProcess) -> list[dict]:
    """The parts opencode printed (`--format json`: one event a line)."""
    return [json.loads(line)["part"] for line in done.stdout.splitlines() if line.startswith("{")]


def texts(done: subprocess.CompletedProcess) -> list[str]:
    return [part["text"] for part in shown(done) if part["type"] == "text"]


def finishes(done: subprocess.CompletedProcess) -> list[str]:
    return [part["reason"] for part in shown(done) if part["type"] == "step-finish"]


def turns(fake_vendor, protocol: str = "responses", model: str = MODEL) -> list:
    return [call for call in fake_vendor.calls(protocol) if call.model == model]


def test_opencode_answers_through_rotator(opencode_bin, rotator, fake_vendor, tmp_path):
    proxy = rotator(fresh=True, args=LOOPBACK_ONLY)

    done = run_opencode(opencode_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert texts(done) == [TEXT] and finishes(done) == ["stop"]
    [call] = turns(fake_vendor)
    assert call.stream is True and call.credential == "sk-pool-1"  # from the pool, not the client's key
    assert "Say hello" in call.raw_body.decode()
    assert "sk-pool-" not in done.stdout + done.stderr


def test_opencode_answers_when_its_first_key_stalls(opencode_bin, rotator, fake_vendor, tmp_path):
    proxy = rotator(streaming={"first_token_timeout": 3}, fresh=True, args=LOOPBACK_ONLY)
    fake_vendor.always(Fault.stall_before_headers(120), key="sk-pool-1")

    start = time.monotonic()
    done = run_opencode(opencode_bin, proxy, tmp_path)
    elapsed = time.monotonic() - start

    assert done.returncode == 0, done.stderr[-3000:]
    assert texts(done) == [TEXT]
    assert elapsed < 45, f"opencode took {elapsed:.1f}s"
    assert [c.credential for c in turns(fake_vendor)] == ["sk-pool-1", "sk-pool-2"]


def test_opencode_answers_when_its_first_key_is_rate_limited(opencode_bin, rotator, fake_vendor, tmp_path):
    proxy = rotator(fresh=True, args=LOOPBACK_ONLY)
    fake_vendor.script(Fault.status(429, headers={"retry-after": "30"}), key="sk-pool-1")

    done = run_opencode(opencode_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert texts(done) == [TEXT]
    assert [(c.credential, c.status) for c in turns(fake_vendor)] == [("sk-pool-1", 429), ("sk-pool-2", 200)]


CUTS = {
    "clean": Fault.cut_after(deltas=2),
    "reset": Fault.cut_after(deltas=2, how="reset"),
    "stall": Fault.stall_after(deltas=2, seconds=60),  # ended by the idle watchdog
}


@pytest.mark.parametrize("cut", sorted(CUTS))
def test_a_cut_stream_ends_once_as_truncated_and_is_not_asked_again(opencode_bin, rotator, fake_vendor, tmp_path, cut):
    """opencode's AI SDK reads an ending without a usage as an unknown finish and asks the same turn again, over
    and over: the ending Rotator writes carries a usage, so opencode shows the partial answer once and stops."""
    proxy = rotator(streaming={"idle_timeout": 2}, resume=RESUME_OFF, fresh=True, args=LOOPBACK_ONLY)
    fake_vendor.script(CUTS[cut])  # a second request would get the whole answer

    done = run_opencode(opencode_bin, proxy, tmp_path)

    assert len(turns(fake_vendor)) == 1, [c.summary() for c in fake_vendor.requests]
    assert texts(done) == ["".join(split_text(TEXT)[:2])], done.stdout[-3000:]
    assert finishes(done) == ["length"]
    assert proxy.wait_log("ended as length")


def test_a_route_to_anthropic_runs_opencodes_tool_and_answers(opencode_bin, rotator, fake_vendor, tmp_path):
    route = {"models": [MODEL], "targets": ["anthropic/claude-haiku-4-5"]}
    proxy = rotator({"routes": [route]}, fresh=True, args=LOOPBACK_ONLY)
    note = tmp_path / "work" / "note.txt"
    note.parent.mkdir(parents=True)
    note.write_text("the tide turns at noon\n")
    fake_vendor.script(Fault.tool_call("read", {"filePath": str(note)}), Fault.ok())

    done = run_opencode(opencode_bin, proxy, tmp_path, prompt="Read note.txt")

    assert done.returncode == 0, done.stderr[-3000:]
    tools = [part for part in shown(done) if part["type"] == "tool"]
    assert [(t["tool"], t["state"]["status"]) for t in tools] == [("read", "completed")], done.stdout[-3000:]
    assert texts(done)[-1] == TEXT
    first, second = fake_vendor.calls("anthropic")
    assert first.model == second.model == "claude-haiku-4-5" and not fake_vendor.calls("responses")
    assert "the tide turns at noon" in second.raw_body.decode()  # the tool's result went back, translated
