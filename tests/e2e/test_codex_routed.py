"""The real Codex CLI routed to another vendor: it calls a tool through an Anthropic-kind and a Gemini-kind target.

Codex sends its tools inside its input (an `additional_tools` item of `namespace` tools; its `exec` tool, which
runs JavaScript in an isolate, is a custom freeform one). The target sees plain functions (`functions__exec` of
one string `input`); the call it answers with reaches Codex as the custom call in its namespace, Codex runs it,
and the follow-up request carries what the script said.
"""

from __future__ import annotations

import json

import pytest

from tests.support.codex import LOOPBACK_ONLY, run_codex
from tests.support.fake_vendor import Fault

pytestmark = pytest.mark.e2e

MARK = "rotator-tool-ran"
SCRIPT = f'text("{MARK}")'  # JavaScript for Codex's exec tool: no file system, no network, no shell
TARGETS = {"anthropic": "anthropic/claude-haiku-4-5", "gemini": "gemini/gemini-2.5-flash"}


def offered_tools(vendor: str, body: dict) -> dict:
    if vendor == "anthropic":
        return {t["name"]: t["input_schema"] for t in body["tools"]}
    return {d["name"]: d["parametersJsonSchema"] for d in body["tools"][0]["functionDeclarations"]}


def tool_outputs(vendor: str, body: dict) -> str:
    """Everything the follow-up request says a tool returned."""
    if vendor == "anthropic":
        return json.dumps([b["content"] for m in body["messages"] if isinstance(m["content"], list)
                           for b in m["content"] if b["type"] == "tool_result"])
    return json.dumps([p["functionResponse"] for c in body["contents"] for p in c["parts"] if "functionResponse" in p])


@pytest.mark.parametrize("vendor", sorted(TARGETS))
def test_routed_codex_runs_its_tool_through_another_vendor(codex_bin, rotator, fake_vendor, tmp_path,
                                                           vendor):
    proxy = rotator(routes=[{"models": ["*"], "targets": [TARGETS[vendor]]}], args=LOOPBACK_ONLY)
    fake_vendor.script(Fault().tool_call("functions__exec", {"input": SCRIPT}))

    done = run_codex(codex_bin, proxy, tmp_path, prompt="Print the marker")

    assert done.returncode == 0, done.stderr[-3000:]
    first, follow_up = fake_vendor.wait_for(2)
    assert first.protocol == follow_up.protocol == vendor
    assert offered_tools(vendor, first.body)["functions__exec"]["required"] == ["input"]
    assert MARK in tool_outputs(vendor, follow_up.body)
    assert "SyntaxError" not in tool_outputs(vendor, follow_up.body)  # Codex ran the input itself, unwrapped
