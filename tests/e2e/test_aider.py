"""The real aider (PyPI aider-chat, through litellm) through a real mitmdump, against the fake vendor.

aider runs as a user runs it for one turn (`aider --message ...`), in an empty directory with no git, configured
only through the environment: HTTPS_PROXY, SSL_CERT_FILE and the vendor's API key variable, with an empty HOME.
The proxy answers every host but the vendors' with 403 (mitmproxy's block_list), so aider's side calls (litellm's
price list, update checks) never leave 127.0.0.1.

aider is installed in its own venv by scripts/setup-clients (CI runs it); without PyPI these tests skip.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.harness import CLIENT_KEYS, POOL_KEYS, REPO, Rotator, agent_environ
from tests.support.reliability import RESUME_OFF

pytestmark = pytest.mark.e2e

AIDER = REPO / ".cache" / "aider-venv" / "bin" / "aider"
VENDORS_ONLY = ("--set", r'block_list=/!~d "^api\.(openai|anthropic)\.com$"/403')
FLAGS = (
    "--yes-always", "--no-git", "--no-auto-commits", "--no-check-update", "--no-show-model-warnings",
    "--analytics-disable", "--no-show-release-notes", "--no-pretty", "--no-fancy-input", "--map-tokens", "0",
)
VENDORS = ("openai", "anthropic")
MODEL = {"openai": "gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}
PROTOCOL = {"openai": "chat", "anthropic": "anthropic"}
KEY_VAR = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
FIRST_TOKEN_TIMEOUT = 2.0
STALL = 60.0
DELTAS = 2
PREFIX = "".join(split_text(TEXT)[:DELTAS])
# aider asks its OpenAI provider for this model; Rotator serves it from Anthropic.
ROUTE = {"models": ["via-anthropic"], "targets": ["anthropic/claude-haiku-4-5"]}


@pytest.fixture(scope="session")
def aider_bin() -> Path:
    if not AIDER.exists():
        setup = subprocess.run([str(REPO / "scripts" / "setup-clients")], capture_output=True, text=True, timeout=900)
        if setup.returncode != 0:
            pytest.skip(f"aider could not be installed from PyPI: {setup.stderr.strip()[-500:]}")
    return AIDER


@pytest.fixture
def proxy(rotator) -> Rotator:
    return rotator(streaming={"first_token_timeout": FIRST_TOKEN_TIMEOUT}, routes=[ROUTE], args=VENDORS_ONLY)


def run_aider(aider: Path, proxy: Rotator, tmp_path: Path, vendor: str, model: str | None = None,
              prompt: str = "Say hello") -> subprocess.CompletedProcess:
    work, env = agent_environ(tmp_path, proxy)
    env |= {
        "SSL_CERT_FILE": str(proxy.ca_cert),  # litellm's httpx
        "REQUESTS_CA_BUNDLE": str(proxy.ca_cert),  # aider's own requests
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm's bundled prices, not a fetch of the newest at start
        KEY_VAR[vendor]: CLIENT_KEYS[KEY_VAR[vendor]],
    }
    return subprocess.run(
        [str(aider), *FLAGS, "--model", model or MODEL[vendor], "--message", prompt],
        cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=240,  # aider alone takes 25-45 s to start on a loaded machine
    )


@pytest.mark.parametrize("vendor", VENDORS)
def test_aider_answers_through_rotator_from_the_pool(aider_bin, proxy, fake_vendor, tmp_path, vendor):
    done = run_aider(aider_bin, proxy, tmp_path, vendor)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [req] = fake_vendor.wait_for(1)
    assert req.protocol == PROTOCOL[vendor] and req.stream and req.outcome == "complete"
    assert req.credential in POOL_KEYS[vendor]
    assert "Say hello" in req.raw_body.decode()


def test_aider_answers_well_inside_a_minute_when_its_first_key_stalls(aider_bin, proxy, fake_vendor, tmp_path):
    fake_vendor.script(Fault.stall_before_headers(STALL), Fault.ok())

    start = time.monotonic()
    done = run_aider(aider_bin, proxy, tmp_path, "openai")
    elapsed = time.monotonic() - start

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    assert elapsed < STALL, f"aider took {elapsed:.1f}s"
    first, second = fake_vendor.wait_for(2, done=False)[:2]
    assert first.credential != second.credential
    assert second.received_at - first.received_at < FIRST_TOKEN_TIMEOUT + 5  # aider itself starts slowly
    second.done.wait(5)
    assert (first.status, second.outcome) == (None, "complete")


def test_aider_gets_the_answer_when_the_first_key_is_rate_limited(aider_bin, proxy, fake_vendor, tmp_path):
    fake_vendor.script(Fault.status(429, headers={"retry-after": "1"}), Fault.ok())

    done = run_aider(aider_bin, proxy, tmp_path, "openai")

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    assert "rate" not in done.stdout.lower()  # litellm saw no 429 to report or wait out
    first, second = fake_vendor.wait_for(2)
    assert (first.status, second.status) == (429, 200) and first.credential != second.credential
    assert len(fake_vendor.requests) == 2


def test_aider_shows_a_whole_answer_once_when_its_stream_is_cut(aider_bin, proxy, fake_vendor, tmp_path):
    """Rotator continues the cut answer: aider prints it whole, once, and says nothing of a limit."""
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"), Fault().continuing())

    done = run_aider(aider_bin, proxy, tmp_path, "openai")

    assert done.stdout.count(TEXT) == 1, done.stdout
    assert "token limit" not in done.stdout + done.stderr
    first, continuation = fake_vendor.wait_for(2)
    assert continuation.continued == "instruction"


def test_aider_shows_a_cut_answer_once_and_says_it_hit_the_limit(aider_bin, rotator, fake_vendor, tmp_path):
    proxy = rotator(streaming={"first_token_timeout": FIRST_TOKEN_TIMEOUT}, routes=[ROUTE], resume=RESUME_OFF,
                    args=VENDORS_ONLY)
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"))

    done = run_aider(aider_bin, proxy, tmp_path, "openai")

    assert done.stdout.count(PREFIX) == 1 and TEXT not in done.stdout, done.stdout
    assert "gpt-4o-mini has hit a token limit!" in done.stdout + done.stderr  # what aider says on finish "length"
    [req] = fake_vendor.wait_for(1)
    assert req.outcome == "cut-reset"


def test_aider_continues_a_cut_claude_answer_from_the_partial(aider_bin, proxy, fake_vendor, tmp_path):
    """For a model that accepts an assistant prefill, aider answers Anthropic's "max_tokens" ending by asking the
    model to go on from the text it has: one more request, carrying the partial, and the answer shown once."""
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"), Fault.ok(TEXT[len(PREFIX):]))

    done = run_aider(aider_bin, proxy, tmp_path, "anthropic")

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(PREFIX) == 1 and done.stdout.count(TEXT) == 1, done.stdout
    cut, rest = fake_vendor.wait_for(2)
    assert cut.outcome == "cut-reset" and rest.outcome == "complete"
    assert rest.body["messages"][-1]["role"] == "assistant"
    assert PREFIX in str(rest.body["messages"][-1]["content"])
    assert len(fake_vendor.requests) == 2


def test_aider_is_served_by_a_route_to_another_protocol(aider_bin, proxy, fake_vendor, tmp_path):
    done = run_aider(aider_bin, proxy, tmp_path, "openai", model="openai/via-anthropic")

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    [req] = fake_vendor.wait_for(1)
    assert (req.protocol, req.model, req.stream) == ("anthropic", "claude-haiku-4-5", True)
    assert req.credential in POOL_KEYS["anthropic"]
