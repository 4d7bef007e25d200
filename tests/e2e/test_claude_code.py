"""The real Claude Code (`claude -p`) through a real mitmdump, routed to a Chat Completions target.

Claude Code gets only what a user would set: HTTPS_PROXY, NODE_EXTRA_CA_CERTS and ANTHROPIC_API_KEY, with an
empty home and its telemetry and update checks off. The proxy answers every host but api.anthropic.com with 403
(mitmproxy's block_list), so nothing leaves 127.0.0.1. A route sends Claude's models to an openai-kind provider
that speaks Chat: the fake vendor sees Chat requests and answers them as Chat.

The CLI is installed by scripts/setup-agents (CI runs it); without npm or its registry these tests skip.
"""

from __future__ import annotations

import time

import pytest

from tests.support.claude_code import LOOPBACK_ONLY, run_claude
from tests.support.fake_vendor import TEXT, Fault, split_text

pytestmark = pytest.mark.e2e

ROLE_SYSTEM_TEXT = "Available agent types for the Agent tool"  # Claude Code's role:"system" message


def chat_target(vendor_url: str) -> dict:
    """A route of every Claude model to an openai-kind provider (no hosts of its own), which speaks Chat."""
    return {"providers": {"chatty": {"kind": "openai", "base_url": f"{vendor_url}/v1", "keys": ["sk-chat-1"]}},
            "routes": [{"models": ["claude-*"], "targets": ["chatty/gpt-chat-model"]}]}


def chat_request(fake_vendor) -> dict:
    fake_vendor.wait_for(1)
    [call] = fake_vendor.calls()
    assert (call.protocol, call.credential, call.body["model"]) == ("chat", "sk-chat-1", "gpt-chat-model")
    return call.body


def test_claude_code_answers_through_a_chat_target(claude_bin, rotator, fake_vendor, tmp_path):
    proxy = rotator(chat_target(fake_vendor.url), args=LOOPBACK_ONLY)

    done = run_claude(claude_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    body = chat_request(fake_vendor)
    assert body["messages"][0]["role"] in ("system", "developer")
    assert "You are a Claude agent" in body["messages"][0]["content"]
    assert {"Bash", "Read", "Edit"} <= {t["function"]["name"] for t in body["tools"]}
    assert "Say hello" in str([m["content"] for m in body["messages"] if m["role"] == "user"])


def test_claude_code_keeps_its_system_messages_and_effort_through_a_chat_target(claude_bin, rotator, fake_vendor,
                                                                               tmp_path):
    proxy = rotator(chat_target(fake_vendor.url), args=LOOPBACK_ONLY)

    done = run_claude(claude_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    body = chat_request(fake_vendor)
    placed = [m["role"] for m in body["messages"] if ROLE_SYSTEM_TEXT in str(m["content"])]
    assert placed and set(placed) <= {"system", "developer"}, placed
    assert body.get("reasoning_effort") == "medium"  # Claude Code sends output_config.effort "medium"


@pytest.mark.parametrize("through_wrapper", [False, True], ids=["its-environment", "scripts-with-rotator"])
def test_claude_code_prints_one_whole_answer_when_its_stream_is_cut(claude_bin, rotator, fake_vendor, tmp_path,
                                                                    through_wrapper):
    """A stream reset after its first words is continued by Rotator: Claude Code prints the whole answer, once,
    without asking again itself (handed an honest max_tokens ending it would start a new turn). Claude Code is
    pointed at Rotator by its environment, or run by scripts/with-rotator (nothing of the proxy in its own)."""
    proxy = rotator(chat_target(fake_vendor.url), streaming={"first_token_timeout": 5}, args=LOOPBACK_ONLY)
    prefix = "".join(split_text(TEXT)[:2])
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), Fault().ok(TEXT[len(prefix):]), key="sk-chat-1")

    done = run_claude(claude_bin, proxy, tmp_path, through_wrapper=through_wrapper)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1, done.stdout
    fake_vendor.wait_for(2)
    time.sleep(1)  # stays: absence. A second turn still on its way through the proxy would reach the vendor by now
    first, continuation = fake_vendor.calls("chat")  # and no second turn from Claude Code
    assert prefix in str(continuation.body["messages"][-2:])  # the partial answer, then the ask to go on
