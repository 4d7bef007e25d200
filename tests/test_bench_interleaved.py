"""scripts/bench's agent phases: every proxy column of a body size measured in one job a repetition, their requests
interleaved, each request's CPU read from its own proxy's clock (scripts/bench_lib/interleaved.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import interleaved, main, report  # noqa: E402 - bench_lib lives in scripts/, put on the path just above


def _bench(tmp_path, monkeypatch, compare: bool = False) -> tuple[main.Bench, list[dict]]:
    args = argparse.Namespace(quick=False, reps=None, compare_script="other/addons/rotator.py" if compare else None,
                              out=str(tmp_path), only=None)
    bench = main.Bench(args)
    bench.measure_start = bench.started
    bench.targets["litellm"].fail("not installed")
    for name in ("bare", "rotator", main.UNFORCED, main.TRANSLATED, *bench.compared):
        bench.targets[name].families = ("anthropic",)
    jobs: list[dict] = []

    def job(name: str, job: dict) -> dict:
        jobs.append(job)
        if job["kind"] != "interleaved":
            return {"requests": 1}
        return {"variants": {v["name"]: {"proxy_cpu_us_per_request": 1.0} for v in job["variants"]}}

    monkeypatch.setattr(bench, "job", job)
    return bench, jobs


def test_every_proxy_column_of_a_size_is_one_job_a_repetition_and_each_is_filed_under_its_phase(tmp_path, monkeypatch):
    bench, jobs = _bench(tmp_path, monkeypatch, compare=True)
    bench.plan.long_reps = 2
    bench.agent_size(8192, 4)
    together = [j for j in jobs if j["kind"] == "interleaved"]
    # (a repetition: the native columns in one job, the translated ones in their own: see Bench.agent_size)
    assert len(together) == 4 and [j["backwards"] for j in together] == [False, False, True, True]
    names = {v["name"] for v in together[0]["variants"]} | {v["name"] for v in together[1]["variants"]}
    assert {v["name"] for v in together[1]["variants"]} == {f"{report.agent_phase(8192, s)}_translated/rotator"
                                                            for s in (True, False)}
    stream, nonstream = report.agent_phase(8192, True), report.agent_phase(8192, False)
    last = nonstream + report.STREAM_LAST_SUFFIX
    assert names == {f"{stream}/bare", f"{stream}/rotator", f"{stream}_translated/rotator", f"{stream}_compared/rotator",
                     f"{nonstream}/bare", f"{nonstream}/rotator", f"{nonstream}_translated/rotator",
                     f"{nonstream}_unforced/rotator", f"{nonstream}_compared/rotator", f"{last}/bare",
                     f"{last}/rotator", f"{last}_compared/rotator"}
    assert all(v["stream_last"] for v in together[0]["variants"] if v["name"].startswith(last))
    for phase, column in ((stream, "bare"), (nonstream, "rotator"), (nonstream + "_unforced", "rotator"),
                          (last, "bare"), (last + "_compared", "rotator")):
        assert len(bench.raw[phase][column]) == 2
    # direct keeps its own jobs (its client on the other CPU), one a repetition and mode
    assert sorted(j["stream"] for j in jobs if j["kind"] == "seq") == [False, False, True, True]


def test_only_the_largest_size_sends_stream_after_messages_and_only_narrows_the_columns(tmp_path, monkeypatch):
    bench, jobs = _bench(tmp_path, monkeypatch)
    bench.plan.long_reps = 1
    bench.agent_size(1024, 2)
    names = {v["name"] for j in jobs if j["kind"] == "interleaved" for v in j["variants"]}
    assert not any(report.STREAM_LAST_SUFFIX in n for n in names)
    bench.args.only = "agent_8m_nonstream_stream_last"
    jobs.clear()
    bench.agent_size(8192, 2)
    assert {v["name"] for v in jobs[-1]["variants"]} == {"agent_8m_nonstream_stream_last/bare",
                                                         "agent_8m_nonstream_stream_last/rotator"}


def test_no_two_requests_in_a_row_go_to_the_same_process_where_it_can_be_helped():
    items = [("r", 1), ("r", 2), ("r", 3), ("b", 1), ("b", 2), ("u", 1)]
    order = interleaved.spread(items, lambda item: item[0])
    assert sorted(order) == sorted(items)
    assert all(a[0] != b[0] for a, b in zip(order, order[1:]))


def test_a_request_is_charged_what_its_process_spent_until_its_next_request_its_tail_included(monkeypatch):
    clock = {1: 0.0, 2: 0.0}
    monkeypatch.setattr(interleaved, "cpu_seconds", lambda pids: sum(clock[p] for p in pids))
    monkeypatch.setattr(interleaved, "minor_faults", lambda pids: 0)
    monkeypatch.setattr(interleaved, "build_request", lambda *a, **k: b"")
    spec = {"target": {"kind": "tunnel"}, "stream": True}
    a = interleaved.Variant(dict(spec, name="a", pids=[1]), "anthropic", 3, 64)
    a2 = interleaved.Variant(dict(spec, name="a2", pids=[1]), "anthropic", 3, 64)  # (another column, same process)
    b = interleaved.Variant(dict(spec, name="b", pids=[2]), "anthropic", 3, 64)
    clocks = interleaved.Clocks()
    clocks.look([a, a2, b])
    clocks.before(a, counted=True)
    clock[1] += 0.003  # a's request, and its tail while b's runs
    clocks.before(b, counted=True)
    clock[2] += 0.001
    clock[1] += 0.0005
    clocks.before(a2, counted=True)
    clock[1] += 0.002
    clocks.before(b, counted=False)  # the fences, not counted
    clocks.before(a, counted=False)
    assert a.cpu == [pytest.approx(0.0035)] and b.cpu == [pytest.approx(0.001)] and a2.cpu == [pytest.approx(0.002)]


def test_the_agent_rows_show_each_proxy_s_page_faults_a_request_beside_its_cpu():
    """What moves bare mitmdump's 8 MiB figure (fresh memory faulted in, or a heap that kept its pages) is shown in
    the same run, beside the CPU it moved."""
    plan = {"agent_sizes_kib": [8192], "agent_requests": [4], "long_reps": 2, "reps": 1, "paced_levels": [5],
            "paced_interval_ms": 20, "paced_events": 1, "paced_reps": 1, "seq_n": 1, "seq_events": 3,
            "anthropic_seq_n": 1, "long_events": 1, "long_batches": [1], "anthropic_long_events": 1,
            "nonstream_concurrency": 1, "nonstream_total": 1}
    ph = report.agent_phase(8192, True)
    raw = {ph: {"bare": [{"proxy_cpu_us_per_request": c, "minor_faults_per_request": f, "errors": 0}
                         for c, f in ((31000, 2120), (25000, 0))],
                "rotator": [{"proxy_cpu_us_per_request": 33000, "minor_faults_per_request": 0, "errors": 0}] * 2}}
    data = {"plan": plan, "raw": raw, "notes": [],
            "targets": {t: {"status": "ok", "reason": ""} for t in ("rotator", "litellm", report.TRANSLATED)},
            "git": {"commit": "0" * 40, "dirty": False}, "timestamp": "now", "quick": False, "duration_s": 1,
            "machine": {"mitmproxy": "12", "python": "3.12", "cpus": 2}}
    report.derive(data)
    text = report.render(data)
    streams = text[text.index("Agent-sized Anthropic streams"):text.index("Agent-sized Anthropic non-stream")]
    [line] = [line for line in streams.splitlines() if "8 MiB: proxy minor page faults/request" in line]
    assert "1060 (0.00..2120)" in line
