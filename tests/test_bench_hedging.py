"""scripts/bench's hedging row (issue 38): the vendor's long-tailed time to first token, and the goals it checks
against the figures with hedging off and on."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import report  # noqa: E402 - bench_lib lives in scripts/, put on the path just above
from bench_lib.vendor import PARAM_RE, Vendor  # noqa: E402


def test_exactly_the_tails_share_of_attempts_is_its_factor_slower():
    vendor = Vendor()
    params = {k.decode(): float(v) for k, v in PARAM_RE.findall(b"bench events=3 ttft_ms=100 tail_pct=5 tail_x=10")}
    pauses = [vendor.pause(params) for _ in range(200)]
    assert sorted(set(pauses)) == [0.1, 1.0] and pauses.count(1.0) == 10 and pauses[19] == 1.0
    assert Vendor().pause({"events": 3}) == 0  # (no ttft_ms: no pause)


def goals(off: dict, on: dict) -> dict:
    plan = {"long_reps": 1, "reps": 1, "paced_levels": [5], "paced_interval_ms": 20, "paced_events": 1,
            "paced_reps": 1, "seq_n": 1, "seq_events": 3, "anthropic_seq_n": 1, "long_events": 1, "long_batches": [1],
            "anthropic_long_events": 1, "nonstream_concurrency": 1, "nonstream_total": 1, "hedge_n": 200,
            "hedge_ttft_ms": 100, "hedge_tail_pct": 5, "hedge_delay": 0.25, "hedge_reps": 1}
    raw = {"hedging": {"rotator": [off]}, report.HEDGING_ON: {"rotator": [on]}}
    data = {"plan": plan, "raw": raw, "notes": [],
            "targets": {t: {"status": "ok", "reason": ""} for t in ("rotator", "litellm", report.TRANSLATED)}}
    report.derive(data)
    return {g["goal"]: g for g in data["goals"] if g["goal"].startswith("hedging")}


def test_the_goals_are_the_p99_cut_by_half_for_at_most_a_tenth_more_requests():
    off = {"ttft_p50_ms": 110, "ttft_p99_ms": 1010, "upstream_requests_per_request": 1.0,
           "upstream_input_tokens_per_request": 8.0, "errors": 0}
    on = dict(off, ttft_p99_ms=360, upstream_requests_per_request=1.05, upstream_input_tokens_per_request=8.4)
    checked = goals(off, on)
    p99 = checked["hedging: TTFT p99 on / off <= 0.5 (a long-tailed vendor)"]
    assert (p99["verdict"], round(p99["value"], 3)) == ("PASS", 0.356)
    extra = checked["hedging: extra vendor requests <= 10 %"]
    assert (extra["verdict"], round(extra["value"], 1), extra["why"]) == ("PASS", 5.0, "vendor input tokens on / off "
                                                                                     "1.050x")
    checked = goals(off, dict(on, ttft_p99_ms=600, upstream_requests_per_request=1.2))
    assert {g["verdict"] for g in checked.values()} == {"FAIL"}
