"""scripts/bench's agent-sized requests: the bodies it sends, and the goals it checks against their figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import report  # noqa: E402 - bench_lib lives in scripts/, put on the path just above
from bench_lib.agent import agent_body  # noqa: E402
from bench_lib.vendor import PARAM_RE, STREAM_RE  # noqa: E402

WORDS = "bench events=3 interval_ms=0 batch=1"


def parts(body: dict, kind: str) -> list[dict]:
    return [p for m in body["messages"] if isinstance(m["content"], list) for p in m["content"]
            if p.get("type") == kind]


def test_an_agent_body_is_its_size_the_same_every_time_and_an_agents_shape():
    for kib in (64, 1024):
        body = agent_body(kib << 10, "claude-x", True, WORDS)
        raw = json.dumps(body, separators=(",", ":")).encode()
        assert kib << 10 <= len(raw) <= (kib << 10) * 1.15
        assert raw == json.dumps(agent_body(kib << 10, "claude-x", True, WORDS), separators=(",", ":")).encode()
        assert len(body["tools"]) == 20
        calls = {p["id"] for p in parts(body, "tool_use")}
        assert calls and calls == {p["tool_use_id"] for p in parts(body, "tool_result")}
        roles = [m["role"] for m in body["messages"]]
        assert all(a != b for a, b in zip(roles, roles[1:]))  # turns alternate, as the API requires
        images = [c for r in parts(body, "tool_result") for c in r["content"] if c["type"] == "image"]
        assert bool(images) == (kib >= 1024)


def test_only_the_last_message_carries_the_vendors_words():
    body = agent_body(1 << 20, "claude-x", False, WORDS)
    last = body["messages"][-1]
    history = dict(body, messages=body["messages"][:-1])
    raw = json.dumps(history).encode()
    assert PARAM_RE.findall(raw) == [] and STREAM_RE.search(raw) is None
    assert last["role"] == "user" and last["content"][-1] == {"type": "text", "text": WORDS}


def run(cpu: dict[str, dict[str, float]], request_bytes: dict[int, int]) -> dict:
    """A run's data with only agent rows: `cpu[phase][column]` is proxy CPU µs per request."""
    plan = {"agent_sizes_kib": [64, 1024, 8192], "agent_requests": [1, 1, 1], "long_reps": 1, "reps": 1,
            "paced_levels": [5], "paced_interval_ms": 20, "paced_events": 1, "paced_reps": 1, "seq_n": 1,
            "seq_events": 3, "anthropic_seq_n": 1, "long_events": 1, "long_batches": [1],
            "anthropic_long_events": 1, "nonstream_concurrency": 1, "nonstream_total": 1}
    raw: dict = {}
    for phase, columns in cpu.items():
        kib = next(k for k in request_bytes if f"_{report.size_name(k)}_" in phase)
        for column, us in columns.items():
            raw.setdefault(phase, {})[column] = [{"proxy_cpu_us_per_request": us, "ttfb_p50_ms": 1.0,
                                                  "request_bytes": request_bytes[kib], "errors": 0}]
    data = {"plan": plan, "raw": raw, "notes": [],
            "targets": {t: {"status": "ok", "reason": ""} for t in ("rotator", "litellm", report.TRANSLATED)}}
    report.derive(data)
    return {g["goal"]: g for g in data["goals"] if g["goal"].startswith("agent")}


def test_the_agent_goals_take_the_worst_size_and_the_growth_with_the_body():
    cpu, sizes = {}, {64: 70_000, 1024: 1_100_000, 8192: 8_800_000}
    for stream in (True, False):
        for kib, bare, rot, tr in ((64, 4000, 4400, 6000), (1024, 8000, 9000, 9000), (8192, 30000, 90000, 99000)):
            ph = report.agent_phase(kib, stream)
            cpu[ph] = {"bare": bare, "rotator": rot}
            cpu[ph + report.TRANSLATED_SUFFIX] = {"rotator": tr}
    goals = run(cpu, sizes)
    streams = goals["agent streams: proxy CPU/request rotator / bare <= 1.2, every size"]
    assert (streams["verdict"], round(streams["value"], 2)) == ("FAIL", 3.0)
    assert streams["why"] == "64 KiB 1.10x, 1 MiB 1.12x, 8 MiB 3.00x"
    at_most = goals["agent streams: proxy CPU/request rotator / bare <= 1.5 at 64 KiB and 1 MiB"]
    assert (at_most["verdict"], round(at_most["value"], 2), at_most["why"]) == ("PASS", 1.12, "64 KiB 1.10x, 1 MiB 1.12x")
    translated = goals["agent non-stream: proxy CPU/request translated / native <= 1.5, every size"]
    assert (translated["verdict"], round(translated["value"], 2)) == ("PASS", 1.36)
    linear = goals["agent streams: rotator CPU/request 8 MiB / 1 MiB <= their size ratio"]
    assert (linear["verdict"], linear["value"], linear["bound"]) == ("FAIL", 10.0, 8.0)


def test_a_compared_rotator_is_shown_beside_the_rotator_as_its_cpu_over_the_other_in_each_repetition():
    """--compare-script: the rotator's CPU per request over the compared Rotator's, repetition by repetition (the
    machine's phases, which move both alike, cancel), shown only when a script was compared."""
    ph = report.agent_phase(64, True)
    plan = {"agent_sizes_kib": [64], "agent_requests": [1], "long_reps": 3, "reps": 3, "paced_levels": [5],
            "paced_interval_ms": 20, "paced_events": 1, "paced_reps": 1, "seq_n": 1, "seq_events": 3,
            "anthropic_seq_n": 1, "long_events": 1, "long_batches": [1], "anthropic_long_events": 1,
            "nonstream_concurrency": 1, "nonstream_total": 1}
    cpu = {"rotator": [8000, 12000, 9000], "compared": [10000, 10000, 10000], "bare": [5000, 7000, 6000]}
    raw = {ph: {t: [{"proxy_cpu_us_per_request": us} for us in cpu[t]] for t in ("rotator", "bare")},
           ph + report.COMPARED_SUFFIX: {"rotator": [{"proxy_cpu_us_per_request": us} for us in cpu["compared"]]}}
    targets = {t: {"status": "ok", "reason": ""} for t in ("rotator", "litellm", report.COMPARED_TARGET)}
    data = {"plan": {**plan, "compared": "/old/addons/rotator.py"}, "raw": raw, "notes": [], "targets": targets}
    report.derive(data)
    ratio = data["metrics"]["agent_64k_stream_cmp_ratio"]
    assert ratio["values"]["rotator"]["reps"] == [0.8, 1.2, 0.9] and ratio["values"]["rotator"]["median"] == 0.9
    assert ratio["ratios"] == {} and ratio["only"] == "rotator"
    assert data["metrics"]["agent_64k_stream_cmp_cpu"]["values"]["rotator"]["median"] == 10000
    assert "  this / compared: CPU/request [x]" in report.render({**data, **RUN_INFO})
    data = {"plan": plan, "raw": raw, "notes": [], "targets": targets}
    report.derive(data)
    assert not [key for key in data["metrics"] if "_cmp_" in key]


RUN_INFO = {"git": {"commit": "0" * 40, "dirty": False}, "timestamp": "t", "quick": False, "duration_s": 1,
            "machine": {"mitmproxy": "12", "python": "3.12", "cpus": 2}}


def test_the_fold_phase_shows_what_each_event_folded_back_costs_against_forcing_off():
    """The long non-stream answer: the rotator's CPU per request minus the same call's with forcing off, in the same
    repetition, over the answer's events; a run from before the phase existed has no such section."""
    plan = {"agent_sizes_kib": [], "agent_requests": [], "long_reps": 3, "reps": 3, "paced_levels": [5],
            "paced_interval_ms": 20, "paced_events": 1, "paced_reps": 1, "seq_n": 1, "seq_events": 3,
            "anthropic_seq_n": 1, "long_events": 1, "long_batches": [1], "anthropic_long_events": 1,
            "nonstream_concurrency": 1, "nonstream_total": 1, "fold_events": 200, "fold_requests": 20}
    cpu = {"rotator": [15000, 16000, 14000], "off": [9000, 9000, 10000], "bare": [6000, 6500, 7000]}
    raw = {report.FOLD: {t: [{"proxy_cpu_us_per_request": us, "errors": 0} for us in cpu[t]]
                         for t in ("rotator", "bare")},
           report.FOLD + report.UNFORCED_SUFFIX: {"rotator": [{"proxy_cpu_us_per_request": us, "errors": 0}
                                                              for us in cpu["off"]]}}
    targets = {t: {"status": "ok", "reason": ""} for t in ("rotator", "litellm")}
    data = {"plan": plan, "raw": raw, "notes": [], "targets": targets}
    report.derive(data)
    per_event = data["metrics"]["fold_per_event"]["values"]["rotator"]
    assert per_event["reps"] == [30.0, 35.0, 20.0] and per_event["median"] == 30.0
    assert data["metrics"]["fold_cpu"]["ratios"]["rotator/bare"] == 15000 / 6500
    assert "  forced minus forcing off, per event of the answer [us]" in report.render({**data, **RUN_INFO})
    data = {"plan": {k: v for k, v in plan.items() if not k.startswith("fold_")}, "raw": raw, "notes": [],
            "targets": targets}
    report.derive(data)
    assert not [key for key in data["metrics"] if key.startswith("fold_")]


def test_the_agent_rows_show_the_proxy_s_instructions_a_request_against_bare_mitmdump_s():
    plan = {"agent_sizes_kib": [64], "agent_requests": [1], "long_reps": 2, "reps": 1, "paced_levels": [5],
            "paced_interval_ms": 20, "paced_events": 1, "paced_reps": 1, "seq_n": 1, "seq_events": 3,
            "anthropic_seq_n": 1, "long_events": 1, "long_batches": [1], "anthropic_long_events": 1,
            "nonstream_concurrency": 1, "nonstream_total": 1}
    ph = report.agent_phase(64, True)
    raw = {ph: {column: [{"proxy_cpu_us_per_request": 5000, "proxy_instructions_per_request": n, "errors": 0}
                         for n in counts]
                for column, counts in (("bare", (10e6, 10.2e6)), ("rotator", (13e6, 13.4e6)))}}
    data = {"plan": plan, "raw": raw, "notes": [],
            "targets": {t: {"status": "ok", "reason": ""} for t in ("rotator", "litellm", report.TRANSLATED)},
            "git": {"commit": "0" * 40, "dirty": False}, "timestamp": "now", "quick": False, "duration_s": 1,
            "machine": {"mitmproxy": "12", "python": "3.12", "cpus": 2}}
    report.derive(data)
    row = data["metrics"]["agent_64k_stream_instructions"]
    assert (row["unit"], row["values"]["rotator"]["median"]) == ("M", 13.2)
    assert round(row["ratios"]["rotator/bare"], 3) == round(13.2 / 10.1, 3)
    text = report.render(data)
    streams = text[text.index("Agent-sized Anthropic streams"):text.index("Agent-sized Anthropic non-stream")]
    [line] = [line for line in streams.splitlines() if "64 KiB: proxy instructions/request [M]" in line]
    assert "10.1 (10.0..10.2)" in line and "13.2 (13.0..13.4)" in line  # (bare mitmdump's, the rotator's)
