"""scripts/bench's cluster run, as its reader sees it: the Redis pick's added cost against the local one, each worker
count's row, and why a part is n/a."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib.cluster import (  # noqa: E402 - on the path just above
    LOCAL_PICK,
    REDIS_PICK,
    TRIP_PICK,
    UNIX_LOCAL_PICK,
    UNIX_PICK,
    UNIX_TCP_PICK,
    WORKER_COUNTS,
    ClusterRun,
    render,
)


def run_with(results: dict, failed: dict[str, str]) -> ClusterRun:
    targets = {name: SimpleNamespace(status="n/a" if name in failed else "ok", reason=failed.get(name, ""))
               for name in (REDIS_PICK, *WORKER_COUNTS)}
    run = ClusterRun(SimpleNamespace(targets=targets), Path("."), Path("."), "", Path("."))
    run.results = results
    return run


def test_the_redis_pick_is_shown_as_what_it_adds_to_the_local_one():
    seq = [({"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": p50}) for cpu, p50 in ((900, 2.0), (1100, 2.2))]
    redis = [({"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": p50}) for cpu, p50 in ((1000, 2.3), (1200, 2.5))]
    load = [{"requests_per_s": 200.0, "proxy_cpu_us_per_request": 5000, "latency_p50_ms": 90.0,
             "proxy_cpu_share": 1.0, "load_cpu_share": 0.4, "other_cpu_cores": 0.1}]
    run = run_with({f"{LOCAL_PICK}:seq": seq, f"{REDIS_PICK}:seq": redis, "cluster_2:nonstream": load},
                   {"cluster_1": "haproxy is not installed"})
    run.idle = {"redis": 1.25, "local": 0.5}
    text = render(run.summary())

    assert "proxy CPU/request 1,000 -> 1,100 us (added 100 us; goal <= +150)" in text
    assert "TTFB p50 2.10 -> 2.40 ms (added 0.30 ms; goal <= +0.5)" in text
    assert "Idle, CPU a second: 1.25 ms with state.redis (its background writes and reads), 0.50 ms without" in text
    assert "Unix socket" not in text  # (not measured: not shown)
    [one, two] = [line.split() for line in text.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert one[1:] == ["n/a", "(haproxy", "is", "not", "installed)"]
    assert two == ["2", "200", "5,000", "90.00", "1.00", "0.40", "0.10"]


def test_the_pick_s_line_shows_how_far_its_repetitions_spread_and_its_share_of_the_request():
    local = [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.0} for cpu in (4230, 3845, 3899, 2985, 3303)]
    redis = [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.1} for cpu in (4469, 4318, 3906, 3193, 3468)]
    text = render(run_with({f"{LOCAL_PICK}:seq": local, f"{REDIS_PICK}:seq": redis}, {}).summary())
    # (differences +239, +473, +7, +208, +165: the median +208, 5.4 % of the local request's median 3,845 us)
    assert ("proxy CPU/request 3,845 -> 3,906 us (added 208 us, each repetition +7 to +473, 5.4% of the local request;"
            " goal <= +150)") in text


def test_the_pick_is_shown_beside_a_bare_round_trip_of_the_same_blocks():
    local = [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.0} for cpu in (3000, 3100, 3200)]
    redis = [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.2} for cpu in (3180, 3300, 3390)]
    trip = [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.1} for cpu in (3120, 3230, 3310)]
    run = run_with({f"{LOCAL_PICK}:seq": local, f"{REDIS_PICK}:seq": redis, f"{TRIP_PICK}:seq": trip}, {})
    text = render(run.summary())
    # (the trip: +120, +130, +110, median +120; the pick beyond it: +60, +70, +80, median +70)
    assert ("A bare round trip to the same Redis in the same blocks (a PING sent where the pick is, the key picked "
            "locally): proxy CPU/request added 120 us; the Redis pick beyond it 70 us") in text
    assert "added 190 us" in text  # (the pick against the local one, as before: +180, +200, +190)
    without = render(run_with({f"{LOCAL_PICK}:seq": local, f"{REDIS_PICK}:seq": redis}, {}).summary())
    assert "bare round trip" not in without  # (not measured: not shown)


def test_without_a_redis_backend_the_pick_says_why_it_was_not_measured():
    text = render(run_with({}, {REDIS_PICK: "this Rotator has no Redis backend (state.redis)"}).summary())
    assert "Redis pick: n/a (this Rotator has no Redis backend (state.redis))" in text


def verdicts(pick: dict) -> list[tuple[str, str]]:
    from bench_lib.report import cluster_goals

    out: list[tuple[str, str]] = []
    cluster_goals({"cluster": {"pick": pick}}, lambda text, value, bound, unit, ok, why="": out.append(
        ("n/a" if ok is None else "PASS" if ok else "FAIL", why)))
    return out


def test_the_pick_goals_are_judged_only_when_the_picks_went_where_asked():
    measured = {"added_cpu_us": 120.0, "added_ttfb_p50_ms": 0.7}
    assert verdicts(dict(measured, local_scripts=0.0, redis_scripts=1.0)) == [("PASS", ""), ("FAIL", "")]
    # The local requests reached Redis too (the switch did nothing): the difference would measure nothing.
    [(cpu, why), _] = verdicts(dict(measured, local_scripts=1.0, redis_scripts=1.0))
    assert cpu == "n/a" and "did not go where asked" in why


def test_the_pick_over_redis_s_unix_socket_is_shown_against_the_local_and_tcp_picks_of_its_own_job():
    local = [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.0, "redis_scripts_per_request": 0.0}
             for cpu in (900, 1100)]
    unix = [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.1, "redis_scripts_per_request": 1.0}
            for cpu in (960, 1190)]
    tcp = [dict(row, proxy_cpu_us_per_request=row["proxy_cpu_us_per_request"] + 100) for row in local]
    run = run_with({f"{LOCAL_PICK}:seq": local, f"{REDIS_PICK}:seq": local, f"{UNIX_LOCAL_PICK}:seq": local,
                    f"{UNIX_TCP_PICK}:seq": tcp, f"{UNIX_PICK}:seq": unix}, {})
    text = render(run.summary())
    assert ("The same over Redis's Unix socket (state.redis: unix://..., a Redis on the same host), in a job of its "
            "own with local and TCP picks: proxy CPU/request 1,000 -> 1,075 us (added 75 us; over TCP in the same job "
            "100 us), TTFB p50 2.00 -> 2.10 ms (added 0.10 ms); Redis scripts per request 0.00 and 1.00") in text


def test_the_pick_s_instructions_are_shown_beside_its_cpu_time_and_what_they_come_to_at_the_request_s_speed():
    def rows(cpus: tuple[int, int], instructions: tuple[float, float]) -> list[dict]:
        return [{"proxy_cpu_us_per_request": cpu, "ttfb_p50_ms": 2.0, "proxy_instructions_per_request": n}
                for cpu, n in zip(cpus, instructions)]

    # The CPU time moves with the machine from one repetition to the next; the instructions do not.
    run = run_with({f"{LOCAL_PICK}:seq": rows((4000, 6000), (10e6, 10.02e6)),
                    f"{REDIS_PICK}:seq": rows((4100, 6300), (10.1e6, 10.12e6))}, {})
    text = render(run.summary())
    assert ("Proxy instructions/request: 10.01 M picked locally, the Redis pick added +100 k (+1.00%); at the local "
            "request's own CPU time per instruction: 50 us") in text
    missing = run_with({f"{LOCAL_PICK}:seq": [{"proxy_cpu_us_per_request": 4000, "ttfb_p50_ms": 2.0}],
                        f"{REDIS_PICK}:seq": [{"proxy_cpu_us_per_request": 4100, "ttfb_p50_ms": 2.0}]}, {})
    assert "Proxy instructions/request: n/a (the CPU's counters cannot be read here" in render(missing.summary())
