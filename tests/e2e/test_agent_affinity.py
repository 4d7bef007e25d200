"""Conversation affinity (issue 30) with the real agent CLIs: Claude Code (`claude -p`, then `--continue`) and Codex
(`codex exec`, then `codex exec resume --last`), several turns each through a pool of three keys from three
organizations. Each turn after the first goes to the key that served the first, and the fake vendor, which caches
prompts per organization (tests/support/vendor_accounts.py), reads the turn before from its cache; Codex's
`encrypted_content` (its reasoning, sent back with `store: false`) is accepted because the same organization gets it.
A bound key that answers 429 is left: the turn is served by another key and the turns after stay there.

The CLIs are installed by scripts/setup-agents and scripts/setup-codex (CI runs them); without npm they skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import claude_code, codex
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import chosen, read_vendor_flows
from tests.support.harness import POOL_KEYS, Rotator

pytestmark = pytest.mark.e2e

KEYS = {"anthropic": [f"sk-ant-pool-{i}" for i in (1, 2, 3)], "openai": POOL_KEYS["openai"]}
ORGANIZATIONS = {key: f"{family}-org-{i}" for family, keys in KEYS.items() for i, key in enumerate(keys, 1)}
TURNS = 3
PROMPTS = ["Say hello", "Say it once more", "And a last time"]
RATE_LIMITED = Fault.status(429, headers={"retry-after": "60"})


def proxy_for(rotator, fake_vendor, tmp_path: Path, loopback: tuple[str, ...]) -> Rotator:
    proxy = rotator(fresh=True, args=(*loopback, "-w", str(tmp_path / "flows")),
                    providers={"anthropic": {"keys": KEYS["anthropic"]}})
    fake_vendor.organizations(ORGANIZATIONS)
    return proxy


def claude_turns(claude_bin: Path, proxy: Rotator, tmp_path: Path, fake_vendor, before_turn=None) -> list:
    """Three turns of one Claude Code session; the agent's own requests (with its tools: not a side call)."""
    for turn, prompt in enumerate(PROMPTS):
        if before_turn is not None:
            before_turn(turn)
        done = claude_code.run_claude(claude_bin, proxy, tmp_path, prompt, *(("--continue",) if turn else ()))
        assert done.returncode == 0, done.stderr[-3000:]
        assert TEXT in done.stdout
    return [c for c in fake_vendor.calls("anthropic") if c.body.get("tools")]


def codex_turns(codex_bin: Path, proxy: Rotator, tmp_path: Path, fake_vendor, before_turn=None) -> list:
    """Three turns of one Codex session."""
    for turn, prompt in enumerate(PROMPTS):
        if before_turn is not None:
            before_turn(turn)
        done = codex.run_codex(codex_bin, proxy, tmp_path, prompt, resume=bool(turn))
        assert done.returncode == 0, done.stderr[-3000:]
        assert TEXT in done.stdout
    return fake_vendor.calls("responses")


def agent_flows(proxy: Rotator, tmp_path: Path, path: str) -> list:
    proxy.proc.stop()
    return [f for f in read_vendor_flows(tmp_path / "flows") if f.request.path.startswith(path)
            and f.request.method == "POST"]


def one_key_reading_its_cache(calls: list, cold: int = 1) -> None:
    """Every turn on one key, and each after the first `cold` ones reads the turn before from its organization's
    cache."""
    assert [c.status for c in calls] == [200] * TURNS
    assert len({c.credential for c in calls}) == 1, [c.credential for c in calls]
    assert [c.cache[0] > 0 for c in calls] == [False] * cold + [True] * (TURNS - cold), [c.cache for c in calls]


def moved_once_and_stayed(calls: list, foreign: bool = False) -> None:
    """The bound key's 429, then every turn on one other key. `foreign`: the move's first request carried reasoning
    the other organization encrypted: refused once (400), sent again without it, and never sent there again."""
    first, refused, *after = calls
    assert (refused.credential, refused.status) == (first.credential, 429)
    if foreign:
        moved, *after = after
        assert (moved.status, after[0].credential) == (400, moved.credential)
        assert "encrypted_content" in json.dumps(moved.body["input"])
        assert all(json.dumps(r["encrypted_content"]) not in json.dumps(c.body["input"]) for c in after
                   for r in moved.body["input"] if r.get("type") == "reasoning")
    assert len(after) == TURNS - 1 and {c.status for c in after} == {200}
    assert len({c.credential for c in after}) == 1 and after[0].credential != first.credential
    assert after[-1].cache[0] > 0  # (the turn after the move reads what the move's turn wrote)


def test_claude_code_keeps_its_session_on_one_key(claude_bin, rotator, fake_vendor, tmp_path):
    proxy = proxy_for(rotator, fake_vendor, tmp_path, claude_code.LOOPBACK_ONLY)

    calls = claude_turns(claude_bin, proxy, tmp_path, fake_vendor)

    # (Since Claude Code 2.1.332 a `claude --continue` process sends the tools the process that began the session
    # sent, so every turn after the first reads the one before from the key's cache; before, the first continued
    # turn shared no prefix with it.)
    one_key_reading_its_cache(calls, cold=1)
    flows = [f for f in agent_flows(proxy, tmp_path, "/v1/messages") if b'"tools"' in f.request.content]
    assert [chosen(f) for f in flows] == [["new"]] + [["bound"]] * (TURNS - 1)


def test_claude_code_leaves_its_bound_key_when_it_answers_429_and_stays_on_the_next(claude_bin, rotator,
                                                                                    fake_vendor, tmp_path):
    proxy = proxy_for(rotator, fake_vendor, tmp_path, claude_code.LOOPBACK_ONLY)

    def rate_limit_the_bound_key(turn: int) -> None:
        if turn == 1:
            [first] = [c for c in fake_vendor.calls("anthropic") if c.body.get("tools")]
            fake_vendor.always(RATE_LIMITED, key=first.credential)

    moved_once_and_stayed(claude_turns(claude_bin, proxy, tmp_path, fake_vendor, rate_limit_the_bound_key))


def test_codex_keeps_its_session_on_one_key_and_its_encrypted_reasoning_is_accepted(codex_bin, rotator,
                                                                                    fake_vendor, tmp_path):
    proxy = proxy_for(rotator, fake_vendor, tmp_path, codex.LOOPBACK_ONLY)

    calls = codex_turns(codex_bin, proxy, tmp_path, fake_vendor)

    one_key_reading_its_cache(calls)
    assert all("encrypted_content" in json.dumps(c.body.get("input")) for c in calls[1:])
    flows = agent_flows(proxy, tmp_path, "/v1/responses")
    assert [chosen(f) for f in flows] == [["new"]] + [["bound"]] * (TURNS - 1)


def test_codex_leaves_its_bound_key_when_it_answers_429_and_stays_on_the_next(codex_bin, rotator, fake_vendor,
                                                                              tmp_path):
    proxy = proxy_for(rotator, fake_vendor, tmp_path, codex.LOOPBACK_ONLY)

    def rate_limit_the_bound_key(turn: int) -> None:
        if turn == 1:
            [first] = fake_vendor.calls("responses")
            fake_vendor.always(RATE_LIMITED, key=first.credential)

    moved_once_and_stayed(codex_turns(codex_bin, proxy, tmp_path, fake_vendor, rate_limit_the_bound_key),
                          foreign=True)
