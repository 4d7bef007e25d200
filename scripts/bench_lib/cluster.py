"""The cluster run of scripts/bench: what the shared state and several workers cost and give.

- The Redis pick: one Rotator with the rotator column's config and a Redis (`state.redis`), sequential streamed
  requests on one connection, alternating in blocks between requests whose keys are picked by the pools alone
  (`x-bench-pick: local`, pick_switch.py) and requests picked through Redis: proxy CPU per request and TTFB p50 of
  each, and what the Redis pick adds (the median over the repetitions of each one's difference). A third variant in
  the same blocks picks locally and makes one bare round trip to the same Redis where the pick would be sent
  (`x-bench-pick: trip`): what any round trip costs the process on this machine, the floor under what the pick's own
  work adds. Within one process and one job: two processes of the same Rotator differ by a few % of CPU for their
  whole life (measured: up to 150 us a request with the same config), and two jobs one after the other by as much,
  as much as the goal.
- An idle worker's CPU a second, with the Redis and without (the rotator column's process, the same config): what
  the shared state's background work costs (the once-a-second writes and reads of what the other workers did).
- Throughput per worker count: `scripts/cluster` with 1 and 2 workers behind HAProxy (its processes not pinned: two
  workers need both cores), concurrent non-stream requests: requests/s, the cluster's CPU per request (workers,
  HAProxy and its Redis) and the load generator's own CPU (client and fake vendor), so the reader can tell which of
  them ran out of cores.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from cluster_lib.main import SOCKET_PATH_MAX

from bench_lib.pick_switch import HEADER
from bench_lib.procinfo import cpu_seconds
from bench_lib.procs import Proc, child_env, free_port, pin, port_open, tail, wait_ready
from bench_lib.stats import median

REDIS_PICK = "rotator_redis"
LOCAL_PICK = "rotator_redis_local"  # (the same Rotator's requests with x-bench-pick: local; results only)
TRIP_PICK = "rotator_redis_trip"  # (x-bench-pick: trip, a local pick and a bare round trip to Redis; results only)
# (a job of three: its requests with x-bench-pick: unix, the same Redis through its Unix socket, beside local ones
# and TCP ones of the same job; results only)
UNIX_PICK, UNIX_LOCAL_PICK, UNIX_TCP_PICK = "rotator_redis_unix", "rotator_redis_unix_local", "rotator_redis_unix_tcp"
WORKER_COUNTS = {"cluster_1": 1, "cluster_2": 2}
SBIN = "/usr/sbin:/sbin"


def redis_backend() -> bool:
    from rewrite.config_settings import StateConfig

    return "redis" in StateConfig.model_fields


def which(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN}")


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class ClusterRun:
    def __init__(self, bench, root: Path, confdir: Path, cafile: str, config: Path) -> None:
        self.bench, self.root, self.confdir, self.cafile, self.config = bench, root, confdir, cafile, config
        self.results: dict[str, list[dict]] = {}
        self.redis_port = 0
        self.redis_socket: Path | None = None  # (the same Redis's Unix socket, when its path fits one)
        self.idle: dict[str, float | None] = {}  # CPU ms a second idle: "redis", "local" (idle_cpu)

    def setup(self) -> None:
        from bench_lib.main import Target

        b = self.bench
        for name in (REDIS_PICK, *WORKER_COUNTS):
            b.targets[name] = Target(name)
        if not redis_backend():
            b.targets[REDIS_PICK].fail("this Rotator has no Redis backend (state.redis)")
        elif (redis := which("redis-server")) is None:
            b.targets[REDIS_PICK].fail("redis-server is not installed (scripts/setup --test installs it)")
        else:
            port = free_port()
            sock = b.logdir / "redis.sock"
            self.redis_socket = sock if len(os.fsencode(sock)) <= SOCKET_PATH_MAX else None
            unix = ["--unixsocket", str(sock), "--unixsocketperm", "700"] if self.redis_socket else []
            proc = Proc("redis", [redis, "--port", str(port), "--bind", "127.0.0.1", *unix, "--save", "",
                                  "--appendonly", "no"], b.logdir / "redis.log", child_env(), b.logdir)
            b.procs.append(proc)
            # Beside the load, as on another machine: on the proxy's core, each pick would wake it there and
            # evict the proxy's caches (measured: the whole request then costs more, not the pick alone).
            pin(proc.pid, b.load_cpus)
            why = wait_ready(proc, lambda: redis_answers(port), 10)
            if why:
                b.targets[REDIS_PICK].fail(why)
            else:
                self.redis_port = port
                self._start_pick()
        for name, workers in WORKER_COUNTS.items():
            if which("haproxy") is None:
                b.targets[name].fail("haproxy is not installed (scripts/setup --test installs it as root)")
                continue
            self._start_cluster(name, workers)

    def _start_pick(self) -> None:
        from bench_lib.main import start_mitmdump

        b, tg = self.bench, self.bench.targets[REDIS_PICK]
        cfg = b.logdir / f"{REDIS_PICK}.yaml"
        cfg.write_text(self.config.read_text() + f"state: {{redis: redis://127.0.0.1:{self.redis_port}/0}}\n")
        port = free_port()
        unix = {"ROTATOR_BENCH_UNIX_REDIS": f"unix://{self.redis_socket}?db=0"} if self.redis_socket else {}
        tg.proc = start_mitmdump(REDIS_PICK, self.root / "scripts/bench_lib/pick_switch.py",
                                 ["-s", str(self.root / "addons/rotator.py"), "--set", f"rotator_config={cfg}"],
                                 port, self.confdir, b.logdir, child_env(**unix), b.proxy_cpus)
        b.procs.append(tg.proc)
        tg.spec = {"kind": "tunnel", "port": port, "cafile": self.cafile}
        why = wait_ready(tg.proc, lambda: port_open(port), 30)
        if why:
            tg.fail(f"{why}; log: {tail(tg.proc.log, 600)}")

    def _start_cluster(self, name: str, workers: int) -> None:
        b, tg = self.bench, self.bench.targets[name]
        port = free_port()
        argv = [str(self.root / ".venv/bin/python"), "-m", "cluster_lib", "--workers", str(workers),
                "--state-dir", str(b.logdir / name), "--listen-port", str(port),
                "--set", f"confdir={self.confdir}", "--set", f"rotator_config={self.config}",
                "--set", "connection_strategy=lazy"]
        tg.proc = Proc(name, argv, b.logdir / f"{name}.log", child_env(PYTHONPATH=str(self.root / "scripts")),
                       self.root)
        b.procs.append(tg.proc)
        tg.spec = {"kind": "tunnel", "port": port, "cafile": self.cafile}
        why = wait_ready(tg.proc, lambda: "rotator cluster: ready." in tail(tg.proc.log, 100_000), 120)
        if why:
            tg.fail(f"{why}; log: {tail(tg.proc.log, 600)}")

    def measure(self) -> None:
        b, p = self.bench, self.bench.plan
        picks = {"kind": "seq_ab", "n": p.pick_n, "block": 10, "warmup": max(p.seq_warmup, 20),
                 "events": p.seq_events, "time_limit": p.job_limit_s, "family": "openai",
                 "variants": [[f"{HEADER}: local"], [f"{HEADER}: redis"], [f"{HEADER}: trip"]],
                 "redis_port": self.redis_port}
        load = {"kind": "nonstream", "concurrency": p.nonstream_concurrency, "total": p.nonstream_total,
                "time_limit": p.job_limit_s, "family": "openai"}
        from bench_lib.main import log

        if b.targets[REDIS_PICK].ok:
            log(f"cluster: the Redis pick against the local one ({p.reps} x)")
            self._picks((LOCAL_PICK, REDIS_PICK, TRIP_PICK), picks)
            self.idle = self.idle_cpu(p.idle_s)  # (after the picks: every pool then has its shared state)
            if self.redis_socket:  # (after the idle one: the Unix socket's link is a second one in the process)
                log(f"cluster: local, TCP and Redis's Unix socket in one job ({p.reps} x)")
                self._picks((UNIX_LOCAL_PICK, UNIX_TCP_PICK, UNIX_PICK),
                            dict(picks, variants=[[f"{HEADER}: local"], [f"{HEADER}: redis"], [f"{HEADER}: unix"]]))
        log(f"cluster: workers behind HAProxy ({p.reps} x)")
        for _ in range(p.reps):
            for name in WORKER_COUNTS:
                if b.targets[name].ok:
                    self.results.setdefault(f"{name}:nonstream", []).append(b.job(name, load))

    def _picks(self, names: tuple[str, ...], job: dict) -> None:
        for _ in range(self.bench.plan.reps):
            result = self.bench.job(REDIS_PICK, job)
            for name, variant in zip(names, result.get("variants") or [{} for _ in names]):
                self.results.setdefault(f"{name}:seq", []).append(
                    dict(variant, failed=result["failed"]) if "failed" in result else variant)

    def idle_cpu(self, seconds: float) -> dict[str, float | None]:
        """CPU ms a second of the Redis pick's Rotator and of the rotator column's (no Redis), both idle."""
        targets = {"redis": self.bench.targets[REDIS_PICK], "local": self.bench.targets.get("rotator")}
        pids = {name: t.pids() if t is not None and t.ok else [] for name, t in targets.items()}
        before = {name: cpu_seconds(p) for name, p in pids.items()}
        time.sleep(seconds)
        return {name: (cpu_seconds(p) - before[name]) * 1000 / seconds if p else None for name, p in pids.items()}

    def _med(self, key: str, field: str) -> float | None:
        return median([r.get(field) for r in self.results.get(key, []) if not r.get("failed")])

    def _pick(self, local: str, shared: str) -> dict:
        """One comparison's figures: each variant's medians, and what the shared pick added (the median of each
        repetition's difference)."""
        def differences(field: str) -> list[float]:
            pairs = zip(self.results.get(f"{local}:seq", []), self.results.get(f"{shared}:seq", []))
            return [s[field] - lo[field] for lo, s in pairs
                    if None not in (lo.get(field), s.get(field)) and not lo.get("failed") and not s.get("failed")]

        def added(field: str) -> float | None:
            return median(differences(field))

        cpu = differences("proxy_cpu_us_per_request")

        med = self._med
        return {"local_cpu_us": med(f"{local}:seq", "proxy_cpu_us_per_request"),
                "redis_cpu_us": med(f"{shared}:seq", "proxy_cpu_us_per_request"),
                "local_ttfb_p50_ms": med(f"{local}:seq", "ttfb_p50_ms"),
                "redis_ttfb_p50_ms": med(f"{shared}:seq", "ttfb_p50_ms"),
                "added_cpu_us": median(cpu), "added_ttfb_p50_ms": added("ttfb_p50_ms"),
                "added_cpu_us_range": (min(cpu), max(cpu)) if cpu else None,
                "local_instructions": med(f"{local}:seq", "proxy_instructions_per_request"),
                "added_instructions": added("proxy_instructions_per_request"),
                "local_scripts": med(f"{local}:seq", "redis_scripts_per_request"),
                "redis_scripts": med(f"{shared}:seq", "redis_scripts_per_request")}

    def summary(self) -> dict:
        med = self._med
        out: dict = {"targets": {n: {"status": self.bench.targets[n].status, "reason": self.bench.targets[n].reason}
                                 for n in (REDIS_PICK, *WORKER_COUNTS)},
                     "pick": dict(self._pick(LOCAL_PICK, REDIS_PICK),
                                  trip_added_cpu_us=self._pick(LOCAL_PICK, TRIP_PICK)["added_cpu_us"],
                                  beyond_trip_cpu_us=self._pick(TRIP_PICK, REDIS_PICK)["added_cpu_us"]),
                     "pick_unix": (dict(self._pick(UNIX_LOCAL_PICK, UNIX_PICK),
                                        tcp_added_cpu_us=self._pick(UNIX_LOCAL_PICK, UNIX_TCP_PICK)["added_cpu_us"])
                                   if f"{UNIX_PICK}:seq" in self.results else None),
                     "idle_cpu_ms_per_s": self.idle,
                     "workers": {}, "raw": self.results}
        for name, workers in WORKER_COUNTS.items():
            key = f"{name}:nonstream"
            out["workers"][workers] = {"requests_per_s": med(key, "requests_per_s"),
                                       "cluster_cpu_us_per_request": med(key, "proxy_cpu_us_per_request"),
                                       "latency_p50_ms": med(key, "latency_p50_ms"),
                                       "cluster_cpu_cores": med(key, "proxy_cpu_share"),
                                       "load_cpu_cores": med(key, "load_cpu_share"),
                                       "other_cpu_cores": med(key, "other_cpu_cores")}
        return out


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def instructions_line(pick: dict) -> str:
    """The pick's work as the CPU counted it (bench_lib/counters.py), which the machine's speed of the moment does not
    move, and what it comes to at the local request's own CPU time per instruction."""
    local, added, cpu = pick.get("local_instructions"), pick.get("added_instructions"), pick.get("local_cpu_us")
    if local is None or added is None:
        return "Proxy instructions/request: n/a (the CPU's counters cannot be read here: perf_event_open(2))"
    at_speed = f"{added / local * cpu:,.0f}" if cpu is not None and local else "n/a"
    return (f"Proxy instructions/request: {local / 1e6:,.2f} M picked locally, the Redis pick added "
            f"{added / 1e3:+,.0f} k ({added / local:+.2%}); at the local request's own CPU time per instruction: "
            f"{at_speed} us")


def _spread(pick: dict) -> str:
    """The repetitions' differences, lowest to highest, and the median's share of the local request: how far one
    run's figure can be read (on a VM, a repetition's difference moves by more than the goal's margin)."""
    spread, added, local = pick.get("added_cpu_us_range"), pick.get("added_cpu_us"), pick.get("local_cpu_us")
    if not spread or spread[0] == spread[1]:
        return ""
    share = f", {added / local:.1%} of the local request" if added is not None and local else ""
    return f", each repetition {spread[0]:+,.0f} to {spread[1]:+,.0f}{share}"


def render(summary: dict) -> str:
    pick = summary["pick"]
    lines = ["", "Cluster (scripts/cluster: HAProxy in TCP mode in front of the workers; not pinned)"]
    redis = summary["targets"][REDIS_PICK]
    if redis["status"] == "ok":
        cpu = [pick["local_cpu_us"], pick["redis_cpu_us"]]
        p50 = [pick["local_ttfb_p50_ms"], pick["redis_ttfb_p50_ms"]]
        added_cpu, added_p50 = pick["added_cpu_us"], pick["added_ttfb_p50_ms"]
        lines.append(f"  Redis pick vs local, one Rotator, sequential streams: proxy CPU/request {fmt(cpu[0])} -> "
                     f"{fmt(cpu[1])} us (added {fmt(added_cpu)} us{_spread(pick)}; goal <= +150), TTFB p50 "
                     f"{fmt(p50[0], 2)} -> {fmt(p50[1], 2)} ms (added {fmt(added_p50, 2)} ms; goal <= +0.5); added: "
                     "the median of each repetition's difference; redis-server's own CPU not counted")
        if pick.get("trip_added_cpu_us") is not None:
            trip, beyond = fmt(pick["trip_added_cpu_us"]), fmt(pick.get("beyond_trip_cpu_us"))
            lines.append(f"  A bare round trip to the same Redis in the same blocks (a PING sent where the pick is, "
                         f"the key picked locally): proxy CPU/request added {trip} us; the Redis pick beyond it "
                         f"{beyond} us (what any per-request round trip costs on this machine, and the pick's own "
                         "work; each the median of the repetitions' differences)")
        lines.append(f"  Redis scripts per request (picks, renewals, releases): {fmt(pick['local_scripts'], 2)} picked "
                     f"locally, {fmt(pick['redis_scripts'], 2)} through Redis")
        lines.append(f"  {instructions_line(pick)}")
        unix = summary.get("pick_unix")
        if unix:
            lines.append(f"  The same over Redis's Unix socket (state.redis: unix://..., a Redis on the same host), "
                         f"in a job of its own with local and TCP picks: proxy CPU/request {fmt(unix['local_cpu_us'])}"
                         f" -> {fmt(unix['redis_cpu_us'])} us (added {fmt(unix['added_cpu_us'])} us; over TCP in the "
                         f"same job {fmt(unix['tcp_added_cpu_us'])} us), TTFB p50 "
                         f"{fmt(unix['local_ttfb_p50_ms'], 2)} -> {fmt(unix['redis_ttfb_p50_ms'], 2)} ms (added "
                         f"{fmt(unix['added_ttfb_p50_ms'], 2)} ms); "
                         f"Redis scripts per request {fmt(unix['local_scripts'], 2)} and "
                         f"{fmt(unix['redis_scripts'], 2)}")
            lines.append(f"    {instructions_line(unix)}")
        idle = summary.get("idle_cpu_ms_per_s") or {}
        lines.append(f"  Idle, CPU a second: {fmt(idle.get('redis'), 2)} ms with state.redis (its background writes"
                     f" and reads), {fmt(idle.get('local'), 2)} ms without (the rotator column's process)")
    else:
        lines.append(f"  Redis pick: n/a ({redis['reason']})")
    lines.append(f"  {'workers':<8} {'req/s':>8} {'cluster CPU us/req':>19} {'p50 ms':>7} {'cluster CPU (cores)':>20}"
                 f" {'load gen CPU (cores)':>21} {'other CPU (cores)':>18}")
    for name, workers in WORKER_COUNTS.items():
        row, target = summary["workers"][workers], summary["targets"][name]
        if target["status"] != "ok":
            lines.append(f"  {workers:<8} n/a ({target['reason']})")
            continue
        lines.append(f"  {workers:<8} {fmt(row['requests_per_s']):>8} {fmt(row['cluster_cpu_us_per_request']):>19} "
                     f"{fmt(row['latency_p50_ms'], 2):>7} {fmt(row['cluster_cpu_cores'], 2):>20} "
                     f"{fmt(row['load_cpu_cores'], 2):>21} "
                     f"{fmt(row['other_cpu_cores'], 2):>18}")
    lines.append("  (load gen: the load client and the fake vendor; on 2 cores, load gen + cluster near 2.0 means "
                 "the machine, not Rotator, set the ceiling)")
    return "\n".join(lines)

