"""scripts/bench's conversation evidence phase: it reads each protocol's agent-sized body (not timed here: speed is
measured by the benchmark itself)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import evidence, report  # noqa: E402 - bench_lib lives in scripts/, put on the path just above


def test_the_evidence_phase_reads_every_protocols_agent_body_and_says_so_in_one_note():
    results = evidence.measure((64,), budget_s=0.01)
    assert set(results) == {f"{name} 64 KiB" for name in evidence.NAMES}
    for figures in results.values():
        assert figures["messages"] >= 10 and figures["links_read_in"] == "the event loop"
        assert figures["evidence_us"] > 0 and figures["json_loads_us"] > 0
    line = evidence.note(results)
    assert line.startswith("conversation evidence read and affinity lookup per request") and "gemini 64 KiB" in line


def test_the_evidence_phase_measures_the_affinity_lookup_against_json_loads_and_checks_its_goal_at_1_mib():
    results = evidence.measure((64, 1024), budget_s=0.01)
    for figures in results.values():
        assert figures["affinity_us"] >= figures["evidence_us"] * 0.5 > 0  # (the read is most of it)
        assert figures["affinity_ratio"] == pytest.approx(figures["affinity_us"] / figures["json_loads_us"], rel=0.01)
    assert "% of json.loads" in evidence.note(results)
    key, worst = evidence.worst_at_goal_size(results)
    assert key.endswith(" 1024 KiB") and worst["affinity_us"] == max(
        r["affinity_us"] for k, r in results.items() if k.endswith(" 1024 KiB"))
    data = {"plan": {"paced_levels": [100, 200], "long_batches": []}, "evidence": results, "metrics": {}, "raw": {},
            "targets": {"rotator": {"status": "ok"}, "litellm": {"status": "n/a"}}}
    [goal] = [g for g in report.goals(data) if g["goal"].startswith("affinity lookup at 1 MiB")]
    assert goal["value"] == worst["affinity_us"] and goal["bound"] == evidence.GOAL_US
    assert goal["verdict"] == ("PASS" if worst["affinity_us"] <= evidence.GOAL_US else "FAIL")
    assert "of json.loads" in goal["why"]


def test_the_affinity_goal_is_not_applicable_without_the_evidence_phase():
    data = {"plan": {"paced_levels": [100, 200], "long_batches": []}, "metrics": {}, "raw": {},
            "targets": {"rotator": {"status": "ok"}, "litellm": {"status": "n/a"}}}
    [goal] = [g for g in report.goals(data) if g["goal"].startswith("affinity lookup")]
    assert goal["verdict"] == "n/a" and "not run" in goal["why"]
