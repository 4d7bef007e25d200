"""scripts/bench's conversation evidence phase: it reads each protocol's agent-sized body (not timed here: speed is
measured by the benchmark itself)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import evidence  # noqa: E402 - bench_lib lives in scripts/, put on the path just above


def test_the_evidence_phase_reads_every_protocols_agent_body_and_says_so_in_one_note():
    results = evidence.measure((64,), budget_s=0.01)
    assert set(results) == {f"{name} 64 KiB" for name in evidence.NAMES}
    for figures in results.values():
        assert figures["messages"] >= 10 and figures["links_read_in"] == "the event loop"
        assert figures["evidence_us"] > 0 and figures["json_loads_us"] > 0
    line = evidence.note(results)
    assert line.startswith("conversation evidence read per request") and "gemini 64 KiB" in line
