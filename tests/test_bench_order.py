"""scripts/bench's repetitions: every target's jobs, in an order that turns round each time, so a machine whose
speed drifts over a phase weighs on no target more than another."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import main  # noqa: E402 - bench_lib lives in scripts/, put on the path just above


def test_each_repetition_runs_the_targets_in_the_order_the_last_one_reversed(tmp_path, monkeypatch):
    args = argparse.Namespace(quick=False, reps=None, compare_script=None, out=str(tmp_path), only=None)
    bench = main.Bench(args)
    bench.measure_start = bench.started
    bench.targets["litellm"].fail("not installed")  # (a target that is n/a is left out, wherever it stands)
    ran: list[tuple[str, str]] = []
    monkeypatch.setattr(bench, "job", lambda name, job: ran.append((name, job["family"])) or {"requests": 1})
    bench.phase("agent_64k_nonstream", {"kind": "seq", "n": 1}, 4, family="anthropic",
                extra={"agent_64k_nonstream_unforced": main.UNFORCED})
    forward = [("direct", "anthropic"), ("bare", "anthropic"), ("rotator", "anthropic"),
               (main.UNFORCED, "anthropic")]
    assert ran == forward + forward[::-1] + forward + forward[::-1]
    assert len(bench.raw["agent_64k_nonstream"]["bare"]) == 4  # (filed as before: by phase, then column)
    assert len(bench.raw["agent_64k_nonstream_unforced"]["rotator"]) == 4
