"""scripts/files-per-request, run as a newcomer runs it: the real mitmdump with Rotator and the measuring addon, the
benchmark's fake vendor, a client through HTTPS_PROXY; each scenario measures one request and names its files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.harness import REPO, clean_environ

pytestmark = pytest.mark.e2e

# Issue 67's goal: the most files each scenario's request may run code in (docs/architecture.md, "Files per request").
GOALS = {"chat-one-key": 48, "chat-pool-affinity": 53, "chat-to-anthropic": 58}
SCENARIOS = tuple(GOALS)


def test_each_scenario_counts_the_files_that_served_its_request(tmp_path):
    out = tmp_path / "files.json"
    env = clean_environ({"PYTHONPATH": f"{REPO / 'scripts'}:{REPO}", "XDG_STATE_HOME": str(tmp_path)})
    done = subprocess.run([sys.executable, "-m", "files_lib", "--list", "--json", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert sorted(results) == sorted(SCENARIOS)
    for name, result in results.items():
        assert result["problem"] == "", (name, result["problem"])
        assert result["count"] == len(result["files"]) > 0, name
        assert any(f.startswith("rewrite/exchange/") for f in result["files"]), (name, result["files"])
        assert not any(f.startswith(("tests/", "scripts/", ".venv/")) for f in result["files"]), name
        assert f"  {name} " in done.stdout and "rewrite/exchange/ (" in done.stdout
    assert any("bound" in note for note in results["chat-pool-affinity"]["affinity"])
    over = {name: (r["count"], GOALS[name]) for name, r in results.items() if r["count"] > GOALS[name]}
    assert not over, f"files per request over the goal (count, goal): {over}\n{done.stdout}"
