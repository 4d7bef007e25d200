"""scripts/bench's memory goals: the idle RSS before the first paced run (what the earlier phases left behind) and the
peak RSS of the last, each at most 1.5x bare mitmdump's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import report  # noqa: E402 - bench_lib lives in scripts/, put on the path just above

MiB_IN_KIB = 1024


def memory_goals(idle_mib: dict[str, float], peak_mib: dict[str, float]) -> dict[str, dict]:
    plan = {"long_reps": 1, "reps": 1, "paced_levels": [5, 20], "paced_interval_ms": 20, "paced_events": 1,
            "paced_reps": 1, "seq_n": 1, "seq_events": 3, "anthropic_seq_n": 1, "long_events": 1, "long_batches": [1],
            "anthropic_long_events": 1, "nonstream_concurrency": 1, "nonstream_total": 1}
    raw = {f"paced_{n}": {t: [{"streams": n, "errors": 0, "rss_idle_kib": idle_mib[t] * MiB_IN_KIB,
                               "rss_peak_kib": peak_mib[t] * MiB_IN_KIB}] for t in ("bare", "rotator")}
           for n in plan["paced_levels"]}
    data = {"plan": plan, "raw": raw, "notes": [],
            "targets": {t: {"status": "ok", "reason": ""} for t in ("rotator", "litellm", report.TRANSLATED)}}
    report.derive(data)
    return {g["goal"]: g for g in data["goals"] if "RSS" in g["goal"]}


def test_idle_rss_before_the_first_paced_run_is_a_goal_beside_the_peak():
    checked = memory_goals({"bare": 83, "rotator": 157}, {"bare": 108, "rotator": 152})
    idle = checked["idle RSS before each 5-stream run: rotator / bare <= 1.5"]
    assert (idle["verdict"], round(idle["value"], 2)) == ("FAIL", 1.89)
    assert checked["peak RSS at 20 streams: rotator / bare <= 1.5"]["verdict"] == "PASS"
    idle = memory_goals({"bare": 84, "rotator": 124}, {"bare": 108, "rotator": 152})[
        "idle RSS before each 5-stream run: rotator / bare <= 1.5"]
    assert idle["verdict"] == "PASS"
