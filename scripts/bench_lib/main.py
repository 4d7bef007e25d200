"""scripts/bench: direct vs bare mitmdump vs Rotator vs LiteLLM, in one run, on one workload.

See `scripts/bench --help` and docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_lib import bedrock, evidence, procs, report, tunnel
from bench_lib.cluster import ClusterRun
from bench_lib.cluster import render as render_cluster
from bench_lib.interleaved import spread
from bench_lib.procinfo import descendants
from bench_lib.procs import Proc, Worker, child_env, free_port, pin, port_open, tail, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
LITELLM_SPEC = "litellm[proxy]==1.100.5"
LITELLM_VENV = ROOT / ".bench-venv"
TARGETS = ("direct", "bare", "rotator", "litellm")
# A second Rotator, with `force_upstream_stream: false`: measured in the non-stream phase only, shown in the
# rotator column as the "forcing off" rows.
UNFORCED = "rotator_unforced"
# A third Rotator, with `resume: {mode: off}`: measured in the long-stream phases only, shown in the rotator column as
# the "resume off" rows (what keeping what a client is sent, for a continuation, costs an uncut stream).
RESUME_OFF = report.RESUME_OFF_TARGET
# A fourth Rotator, with hedging on: measured in the hedging phase only, against the rotator column's (hedging off, the
# default) in the same repetitions, shown in the rotator column as the "hedging on" rows.
HEDGING = report.HEDGING_TARGET
# With --compare-script: a fifth Rotator, another checkout's (the code before a change), with the rotator column's
# config: measured in the agent phases beside it, shown in the rotator column as the "compared" rows, and the rotator's
# CPU over its own in each repetition (both under the same load at the same moment: the machine's phases cancel).
COMPARED = report.COMPARED_TARGET
# A sixth Rotator whose Anthropic client is a `clients` entry with a budget, limits and models it never reaches:
# measured in the clients phase only, against the rotator column's (no clients) in the same repetitions.
CLIENTS = report.CLIENTS_TARGET
CLIENT_KEY = "sk-ant-bench-client"  # what the bench client sends as its Anthropic key (client.py)
CLIENTS_CONFIG = (f'clients:\n  - {{name: bench, key: "{CLIENT_KEY}", budget: {{dollars: 1000000, per: day}},\n'
                  "     limits: [{per: minute, requests: 100000000}, {per: minute, tokens: 1000000000000}],\n"
                  '     models: ["claude-*", "bench-*"]}\n')
POOL_KEYS = ("sk-bench-1", "sk-bench-2", "sk-bench-3", "sk-ant-bench-1", "sk-ant-bench-2")
# The translated case: the rotator column's Rotator, asked by an Anthropic client for a model that its route sends
# to a target-only OpenAI-compatible provider (the same fake vendor, Chat Completions). Measured in the Anthropic
# phases only, shown in the rotator column as the "translated" rows.
TRANSLATED = report.TRANSLATED
TRANSLATED_MODEL = "bench-translated"
TRANSLATED_KEYS = ("sk-bench-chat-1", "sk-bench-chat-2")


@dataclass
class Plan:
    """Counts for one run. Every load is bounded by its count and by a time limit."""

    reps: int = 5  # repetitions of the sequential phases
    long_reps: int = 3  # repetitions of the long-stream and non-stream phases
    paced_reps: int = 3
    seq_n: int = 300  # sequential streamed requests per repetition
    seq_warmup: int = 30
    seq_events: int = 3
    long_events: int = 20_000
    long_batches: tuple[int, ...] = (1, 10)  # events per vendor write
    anthropic_seq_n: int = 100
    anthropic_long_events: int = 5_000
    paced_levels: tuple[int, ...] = (50, 100, 200)
    paced_events: int = 100  # events per paced stream (100 x 20 ms = 2 s)
    paced_interval_ms: float = 20
    nonstream_concurrency: int = 20
    nonstream_total: int = 1_000
    agent_sizes_kib: tuple[int, ...] = (64, 1024, 8192)  # agent-sized request bodies (agent.py)
    agent_requests: tuple[int, ...] = (40, 12, 4)  # sequential requests per job, one count per size
    fold_events: int = 200  # events of each answer in the fold phase (a 64 KiB non-stream call)
    fold_requests: int = 20  # its sequential requests per job
    resume_n: int = 20  # sequential answers per job, cut halfway and resumed (and uncut, to compare)
    resume_events: int = 40
    pick_n: int = 600  # sequential streamed requests per repetition of the Redis pick's comparison, per pick
    # seconds the idle workers' CPU is read after the picks (over 3 s, three rounds, runs of one code differed by
    # about 0.6 ms a second)
    idle_s: float = 10
    hedge_n: int = 200  # sequential streams per repetition of the hedging phase, its vendor's time to first token...
    hedge_ttft_ms: float = 100  # ... this long,
    hedge_tail_pct: float = 5  # ... and this share of its attempts 10x as long
    hedge_delay: float = 0.25  # seconds: the hedging Rotator's `hedging.delay` (its max_share the default, 0.1)
    hedge_reps: int = 2
    clients_n: int = 300  # sequential Anthropic streams per repetition of the clients phase
    job_limit_s: float = 60  # time limit of one job (one repetition against one target)
    budget_s: float = 600  # no phase starts past this (LiteLLM install excluded); the longest takes ~100 s
    compared: str = ""  # --compare-script: the other Rotator measured beside the rotator column's


QUICK = Plan(reps=2, long_reps=2, paced_reps=2, seq_n=20, seq_warmup=5, long_events=10_000, anthropic_seq_n=10,
             anthropic_long_events=3_000, paced_levels=(5, 10, 20), paced_events=10, nonstream_total=60,
             agent_sizes_kib=(64, 1024), agent_requests=(3, 2), fold_requests=3, resume_n=5, pick_n=40, idle_s=3,
             hedge_n=40, hedge_reps=1, clients_n=20, job_limit_s=20, budget_s=90)


@dataclass
class Target:
    name: str
    status: str = "ok"  # ok | n/a
    reason: str = ""
    spec: dict = field(default_factory=dict)  # how the client reaches it
    proc: Proc | None = None
    families: tuple[str, ...] = ("openai", "anthropic", "vertex")
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc and self.proc.alive() else []

    def fail(self, reason: str) -> None:
        self.status, self.reason = "n/a", reason
        log(f"{self.name}: n/a: {reason}")


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------- set-up

def git_info() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def make_ca(confdir: Path) -> Path:
    from mitmproxy.certs import CertStore

    CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / "mitmproxy-ca-cert.pem"


def start_mitmdump(name: str, script: Path, extra: list[str], port: int, confdir: Path, logdir: Path,
                   env: dict[str, str], proxy_cpus) -> Proc:
    argv = [str(ROOT / ".venv/bin/mitmdump"), "-s", str(script), "--listen-host", "127.0.0.1",
            "--listen-port", str(port), "--set", f"confdir={confdir}", "--set", "connection_strategy=lazy", *extra]
    proc = Proc(name, argv, logdir / f"{name}.log", env, ROOT)
    pin(proc.pid, proxy_cpus)
    return proc


def instructions_note(results: list[dict]) -> str:
    """What the instructions/request rows counted (bench_lib/counters.py), from the jobs' results."""
    kernel = {r["instructions_with_kernel"] for r in results if "instructions_with_kernel" in r}
    if not kernel:
        return ("proxy instructions/request: n/a, this machine gives no CPU instruction counter to another process "
                "(perf_event_open(2); kernel.perf_event_paranoid, or a VM without one)")
    what = "in user space and the kernel" if kernel == {True} else "in user space only (the kernel's not allowed)"
    return (f"proxy instructions/request: the instructions the CPU counted for the process under test, {what}: the "
            "work asked of the machine, which its speed of the moment does not move (the CPU rows do); not its "
            "time: code that runs once a request runs far fewer instructions a cycle than a loop over bytes")


def litellm_installed() -> bool:
    return (LITELLM_VENV / ".installed").exists() and (LITELLM_VENV / "bin/litellm").exists()


def ensure_litellm(allow_install: bool) -> str | None:
    """Makes .bench-venv with LiteLLM; returns None when usable, else why not."""
    if litellm_installed():
        return None
    if not allow_install:
        return "not installed (a full `scripts/bench` installs it into .bench-venv/)"
    log(f"installing {LITELLM_SPEC} into {LITELLM_VENV.name}/ (once; about a minute)")
    try:
        if not (LITELLM_VENV / "bin/python").exists():
            subprocess.run([procs.python_for_venv(), "-m", "venv", str(LITELLM_VENV)], check=True, timeout=300,
                           capture_output=True)
        r = subprocess.run([str(LITELLM_VENV / "bin/python"), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", LITELLM_SPEC], capture_output=True, text=True,
                           timeout=1200)
        if r.returncode != 0:
            err = "\n".join(line for line in r.stderr.splitlines() if not line.startswith("WARNING: Location"))
            return f"pip install {LITELLM_SPEC} failed: {err[-400:]}"
    except (OSError, subprocess.SubprocessError) as e:
        return f"installing {LITELLM_SPEC} failed: {e}"
    if not (LITELLM_VENV / "bin/litellm").exists():
        return "litellm command missing after install"
    (LITELLM_VENV / ".installed").write_text(LITELLM_SPEC + "\n")
    return None


def litellm_version() -> str | None:
    for d in (LITELLM_VENV / "lib").glob("python*/site-packages/litellm-*.dist-info"):
        return d.name.removeprefix("litellm-").removesuffix(".dist-info")
    return None


def start_litellm(vport: int, port: int, logdir: Path, proxy_cpus) -> Proc:
    cfg = logdir / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: bench-model\n"
        "    litellm_params:\n"
        "      model: openai/bench-model\n"
        f"      api_base: http://127.0.0.1:{vport}/v1\n"
        "      api_key: sk-litellm-upstream\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  telemetry: false\n"
    )
    env = child_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", LITELLM_LOG="ERROR",
                    DISABLE_ADMIN_UI="True")
    argv = [str(LITELLM_VENV / "bin/litellm"), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1"]
    proc = Proc("litellm", argv, logdir / "litellm.log", env, logdir)
    pin(proc.pid, proxy_cpus)
    return proc


# ---------------------------------------------------------------------------------------------------- run

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.plan = dataclasses.replace(QUICK if args.quick else Plan())
        if args.reps:
            self.plan.reps = self.plan.long_reps = self.plan.paced_reps = args.reps
        self.plan.compared = str(Path(args.compare_script).resolve()) if args.compare_script else ""
        self.compared = (COMPARED,) if self.plan.compared else ()  # (its target, when asked for)
        # The Rotators beside the rotator column's, each measured in some phases only, filed in the rotator column.
        self.extra_rotators = (UNFORCED, RESUME_OFF, HEDGING, CLIENTS, TRANSLATED, *self.compared)
        self.started = time.monotonic()
        self.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.outdir = Path(args.out).resolve()
        self.logdir = self.outdir / f"{self.stamp}-logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.targets: dict[str, Target] = {n: Target(n) for n in (*TARGETS, *self.extra_rotators)}
        self.raw: dict[str, dict[str, list]] = {}
        self.notes: list[str] = []
        self.skipped: list[str] = []
        self.proxy_cpus, self.load_cpus = procs.cpu_sets()
        self.vendor_stats: dict = {}
        self.cluster: ClusterRun | None = None
        self.evidence: dict | None = None
        self.tunnel: dict | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def measuring(self) -> float:
        """Seconds since the first measurement began (the budget excludes install and start-up)."""
        return time.monotonic() - self.measure_start

    # -- processes

    def setup(self) -> None:
        env = child_env(PYTHONPATH=str(SCRIPTS))
        py = str(ROOT / ".venv/bin/python")
        vendor = Proc("vendor", [py, "-m", "bench_lib.vendor", "--exit-with-stdin"], self.logdir / "vendor.log",
                      env, SCRIPTS, stdout_pipe=True, stdin_pipe=True)
        self.procs.append(vendor)
        pin(vendor.pid, self.load_cpus)
        line = vendor.p.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise SystemExit("fake vendor did not start: " + tail(vendor.log))
        self.vport = int(line.split()[1])
        self.vendor = vendor
        self.start_client()
        log(f"fake vendor on 127.0.0.1:{self.vport}; proxy CPUs {self.proxy_cpus}, load CPUs {self.load_cpus}")

        t = self.targets
        for name in ("direct", "bare", "rotator"):  # (Bedrock's streams: through Rotator against bare mitmdump)
            t[name].families = (*t[name].families, *bedrock.FAMILIES)
        t["direct"].spec = {"kind": "plain", "port": self.vport}
        confdir = self.logdir / "mitmproxy-conf"
        confdir.mkdir(exist_ok=True)
        cafile = str(make_ca(confdir))

        # bare mitmdump
        port = free_port()
        t["bare"].proc = start_mitmdump("bare", SCRIPTS / "bench_lib/bare_addon.py", [], port, confdir, self.logdir,
                                        child_env(BENCH_VENDOR_PORT=str(self.vport)), self.proxy_cpus)
        self.procs.append(t["bare"].proc)
        t["bare"].spec = {"kind": "tunnel", "port": port, "cafile": cafile}

        # rotator
        rot = t["rotator"]
        if self.compared and not Path(self.plan.compared).exists():
            t[COMPARED].fail(f"{self.plan.compared} does not exist")
        if self.args.no_rotator:
            for name in ("rotator", *self.extra_rotators):
                t[name].fail("skipped (--no-rotator)")
        elif not Path(self.args.rotator_script).exists():
            for name in ("rotator", *self.extra_rotators):
                t[name].fail(f"{self.args.rotator_script} does not exist")
        else:
            # The second Rotator answers only the non-stream phase, with forced upstream streaming turned off.
            hedging = f"hedging: {{mode: \"on\", delay: {self.plan.hedge_delay:g}}}\n"
            for tg, extra, more in ((rot, "", ""), (t[UNFORCED], ", force_upstream_stream: false", ""),
                                    (t[RESUME_OFF], "", "resume: {mode: \"off\"}\n"), (t[HEDGING], "", hedging),
                                    (t[CLIENTS], "", CLIENTS_CONFIG),
                                    *((t[n], "", "") for n in self.compared)):
                if not tg.ok:  # (a compared script that does not exist)
                    continue
                cfg = self.logdir / f"{tg.name}.yaml"
                cfg.write_text(
                    "providers:\n"
                    f'  openai:    {{base_url: "http://127.0.0.1:{self.vport}/v1", '
                    f'keys: [{", ".join(POOL_KEYS[:3])}]{extra}}}\n'
                    f'  anthropic: {{base_url: "http://127.0.0.1:{self.vport}", '
                    f'keys: [{", ".join(POOL_KEYS[3:])}]{extra}}}\n'
                    # the translated case's target: no hosts, so only the route reaches it
                    # Claude on Vertex: the client's own token, sent where base_url says (the fake vendor)
                    f'  vertex:    {{base_url: "http://127.0.0.1:{self.vport}"{extra}}}\n'
                    f'  bench_chat: {{kind: openai, base_url: "http://127.0.0.1:{self.vport}/v1", '
                    f'keys: [{", ".join(TRANSLATED_KEYS)}]{extra}}}\n'
                    # Bedrock, no keys: each request signed by its client, sent as it came
                    f'  bedrock: {{base_url: "http://127.0.0.1:{self.vport}"}}\n'
                    "routes:\n"
                    f'  - {{models: ["{TRANSLATED_MODEL}*"], targets: [bench_chat]}}\n'
                    + more
                )
                port = free_port()
                script = self.plan.compared if tg.name == COMPARED else self.args.rotator_script
                tg.proc = start_mitmdump(tg.name, Path(script).resolve(),
                                         ["--set", f"rotator_config={cfg}"],
                                         port, confdir, self.logdir, child_env(), self.proxy_cpus)
                self.procs.append(tg.proc)
                tg.spec = {"kind": "tunnel", "port": port, "cafile": cafile}
            t[CLIENTS].families = ("anthropic",)  # (its client key is the Anthropic client's)
            tr = t[TRANSLATED]
            tr.proc, tr.families = rot.proc, ("anthropic",)
            tr.spec = dict(rot.spec, model=TRANSLATED_MODEL, translated=True)

        # LiteLLM
        llm = t["litellm"]
        llm.families = ("openai",)
        llm.note = "reached directly over plain HTTP at its base URL (no proxy, no TLS), as its users do"
        if self.args.no_litellm:
            llm.fail("skipped (--no-litellm)")
        else:
            why = ensure_litellm(allow_install=not self.args.quick)
            if why:
                llm.fail(why)
            else:
                port = free_port()
                llm.proc = start_litellm(self.vport, port, self.logdir, self.proxy_cpus)
                self.procs.append(llm.proc)
                llm.spec = {"kind": "plain", "port": port}

        # readiness, then a probe: a target that cannot stream correctly is n/a, with the reason
        for name in ("bare", "rotator", UNFORCED, RESUME_OFF, HEDGING, CLIENTS, *self.compared, "litellm"):
            tg = t[name]
            if not tg.ok:
                continue
            if name == "litellm":
                why = wait_ready(tg.proc, lambda p=tg.spec["port"]: procs.http_get(p, "/health/liveliness")[0] == 200,
                                 180)
            else:
                why = wait_ready(tg.proc, lambda p=tg.spec["port"]: port_open(p), 30)
            if why:
                tg.fail(f"{why}; log: {tail(tg.proc.log, 600)}")
                continue
            for p in tg.pids():
                pin(p, self.proxy_cpus)
        if not t["rotator"].ok and t[TRANSLATED].ok:
            t[TRANSLATED].fail("rotator n/a")
        for name in (*TARGETS, *self.extra_rotators):
            tg = t[name]
            if not tg.ok:
                continue
            fams = [f for f in tg.families]
            for fam in fams:
                res = self.job(name, {"kind": "probe", "family": fam, "time_limit": 20})
                if not res.get("ok"):
                    why = res.get("why") or res.get("failed") or "probe failed"
                    if fam == "openai" or len(tg.families) == 1:
                        tg.fail(f"probe ({fam}): {why}; log: ...{tail(tg.proc.log, 400) if tg.proc else ''}")
                        break
                    tg.families = tuple(f for f in tg.families if f != fam)
                    self.notes.append(f"{name}: {fam} probe failed: {why}")
            if tg.ok:
                log(f"{name}: ready")
        if not t["bare"].ok:
            raise SystemExit("bare mitmdump does not work; the benchmark itself is broken: " + t["bare"].reason)
        if rot.ok and not self.args.no_cluster and (not self.args.only or "cluster" in self.args.only.split(",")):
            self.cluster = ClusterRun(self, ROOT, confdir, cafile, self.logdir / "rotator.yaml")
            self.cluster.setup()

    def start_client(self) -> None:
        client = Proc("client", [str(ROOT / ".venv/bin/python"), "-m", "bench_lib.client"],
                      self.logdir / "client.log", child_env(PYTHONPATH=str(SCRIPTS)), SCRIPTS, stdout_pipe=True,
                      stdin_pipe=True)
        self.procs.append(client)
        self.worker = Worker(client)

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - stopping is best-effort, one failure must not leak the rest
                pass

    # -- jobs

    def job(self, name: str, job: dict) -> dict:
        tg = self.targets[name]
        bench_pids = [os.getpid(), self.vendor.pid, self.worker.proc.pid]
        for other in self.targets.values():
            bench_pids += other.pids()
        job = dict(job, target=tg.spec, pids=tg.pids(), load_pids=[self.vendor.pid], bench_pids=bench_pids,
                   root_pid=tg.proc.pid if tg.proc and tg.proc.alive() else None)
        # The client shares the load CPUs with the vendor, except for "direct" where no proxy needs the other core.
        cpus = self.proxy_cpus if name == "direct" else self.load_cpus
        try:
            return self.worker.run(job, cpus)
        except RuntimeError as e:
            # The client is stuck or gone: a fresh one, so that no late answer is taken for the next job's.
            log(f"  {name}: {e}; restarting the load client")
            self.worker.proc.stop()
            self.start_client()
            return {"failed": str(e)}

    def phase(self, key: str, job: dict, reps: int, family: str = "openai",
              extra: dict[str, str] | None = None, targets: tuple[str, ...] = TARGETS,
              extra_job: dict | None = None) -> None:
        """Runs `job` against every working target (of `targets`), `reps` times, interleaving targets within each
        repetition: in order, then in reverse order the next time (A B C, C B A, ...), so that a machine that speeds
        up or slows down over a phase favours no target (each one's jobs sit, on average, at the same times).

        `extra` maps further phases to the one target each measures, run in the same repetitions (its results
        are filed under that phase, in the rotator column; `extra_job`: what their job changes)."""
        if self.args.only and not any(key.startswith(o) for o in self.args.only.split(",")):
            return
        if self.measuring() > self.plan.budget_s:
            self.skipped.append(key)
            log(f"{key}: skipped, time budget of {self.plan.budget_s:.0f} s used up")
            return
        log(f"{key} ({reps} x)")
        runs = [(key, name, name, job) for name in targets]
        runs += [(phase, name, "rotator", dict(job, **(extra_job or {}))) for phase, name in (extra or {}).items()]
        for rep in range(reps):
            for phase, name, column, job in runs if rep % 2 == 0 else runs[::-1]:
                tg = self.targets[name]
                if not tg.ok or family not in tg.families:
                    continue
                if tg.proc and not tg.proc.alive():
                    tg.fail(f"process exited (code {tg.proc.p.returncode}); log: {tail(tg.proc.log, 600)}")
                    continue
                res = self.job(name, dict(job, family=family))
                self.raw.setdefault(phase, {}).setdefault(column, []).append(res)
                if res.get("failed"):
                    log(f"  {name}: job failed: {res['failed']}")
                    tg.fail(f"{phase}: {res['failed']} (not measured further)")
                elif res.get("errors"):
                    log(f"  {name}: {res['errors']} errors: {list(res.get('error_reasons', {}))[:2]}")

    def agent_size(self, kib: int, n: int) -> None:
        """One agent body size's phases: direct's own jobs, then every proxy column's streams and non-stream
        requests (forcing off, compared; the largest size's `stream` after `messages` too) in one job a
        repetition, a block of each column's requests after another's (or, `--one-by-one`, interleaved request by
        request: bench_lib/interleaved.py), the translated ones in a job of their own; filed by phase and column."""
        p = self.plan
        job = {"warmup": 1, "events": p.seq_events, "body_kib": kib, "request_timeout": 30}
        for stream in (True, False):  # (direct: the client on the other CPU, as in every phase)
            self.phase(report.agent_phase(kib, stream), dict(job, kind="seq", n=n, stream=stream,
                                                             time_limit=p.job_limit_s),
                       p.long_reps, family="anthropic", targets=("direct",))
        variants: list[tuple[str, str, str, dict]] = []  # (phase, target, column, what its request changes)
        for stream in (True, False):
            key = report.agent_phase(kib, stream)
            ask = {"stream": stream}
            variants += [(key, "bare", "bare", ask), (key, "rotator", "rotator", ask),
                         (key + report.TRANSLATED_SUFFIX, TRANSLATED, "rotator", ask)]
            variants += [(key + report.UNFORCED_SUFFIX, UNFORCED, "rotator", ask)] if not stream else []
            variants += [(key + report.COMPARED_SUFFIX, name, "rotator", ask) for name in self.compared]
        if kib == p.agent_sizes_kib[-1]:  # the largest non-stream body again, its `stream` after `messages`
            key = report.agent_phase(kib, False) + report.STREAM_LAST_SUFFIX
            ask = {"stream": False, "stream_last": True}
            variants += [(key, "bare", "bare", ask), (key, "rotator", "rotator", ask)]
            variants += [(key + report.COMPARED_SUFFIX, name, "rotator", ask) for name in self.compared]
        only = [o for o in (self.args.only or "").split(",") if o]
        variants = [v for v in variants if not only or any(v[0].startswith(o) for o in only)]
        if not variants:
            return
        if self.measuring() > self.plan.budget_s:
            self.skipped += sorted({v[0] for v in variants})
            log(f"agent {report.size_label(kib)}: skipped, time budget of {self.plan.budget_s:.0f} s used up")
            return
        log(f"agent {report.size_label(kib)}: {len(variants)} columns in one job ({p.long_reps} x)")
        for rep in range(p.long_reps):
            working = [v for v in variants if self.targets[v[1]].ok and "anthropic" in self.targets[v[1]].families]
            # The translated requests in a job of their own: in the rotator's process between its native ones, the
            # memory they free (tens of MB) left the next native request to fault in fresh pages (bench_lib/
            # interleaved.py), a cost of the order, not of the request.
            for together in ([v for v in working if v[1] != TRANSLATED], [v for v in working if v[1] == TRANSLATED]):
                if together:
                    self.interleaved(kib, n, rep, job, together)

    def interleaved(self, kib: int, n: int, rep: int, job: dict, variants: list[tuple[str, str, str, dict]]) -> None:
        """One interleaved job of `variants` (phase, target, column, what its request changes), filed by phase."""
        p = self.plan
        specs = [dict(ask, name=f"{phase}/{column}", target=self.targets[name].spec, pids=self.targets[name].pids(),
                      root_pid=self.targets[name].proc.pid if self.targets[name].proc else None)
                 for phase, name, column, ask in spread(variants, lambda v: self.targets[v[1]].proc)]
        res = self.job("rotator", dict(job, kind="interleaved", family="anthropic", n=n, variants=specs,
                                       backwards=rep % 2 == 1, one_by_one=bool(getattr(self.args, "one_by_one", False)),
                                       time_limit=p.job_limit_s * len(specs) / 2))
        if res.get("failed"):  # (the load client's own failure: no column is blamed, the next repetition runs)
            log(f"  agent {report.size_label(kib)}: job failed: {res['failed']}")
        for phase, name, column, _ in variants:
            got = res.get("variants", {}).get(f"{phase}/{column}") or {"failed": res.get("failed", "no result")}
            self.raw.setdefault(phase, {}).setdefault(column, []).append(got)
            if got.get("failed") and not res.get("failed"):
                log(f"  {name}: job failed: {got['failed']}")
                self.targets[name].fail(f"{phase}: {got['failed']} (not measured further)")
            elif got.get("errors"):
                log(f"  {phase} {name}: {got['errors']} errors: {list(got.get('error_reasons', {}))[:2]}")

    def run(self) -> dict:
        p = self.plan
        self.setup()
        self.measure_start = time.monotonic()
        if not self.args.only or any("evidence".startswith(o) for o in self.args.only.split(",")):
            log("evidence: conversation evidence read in process")
            self.evidence = evidence.measure(p.agent_sizes_kib, 0.2 if self.args.quick else 1.0, self.proxy_cpus)
        self.phase("seq_openai", {"kind": "seq", "n": p.seq_n, "warmup": p.seq_warmup, "events": p.seq_events,
                                  "time_limit": p.job_limit_s}, p.reps)
        self.phase("seq_anthropic", {"kind": "seq", "n": p.anthropic_seq_n, "warmup": 5, "events": p.seq_events,
                                     "time_limit": p.job_limit_s}, p.reps, family="anthropic",
                   extra={report.SEQ_TRANSLATED: TRANSLATED})
        for family in bedrock.FAMILIES:  # an InvokeModel stream and a ConverseStream, in AWS frames
            self.phase(f"seq_{family}", {"kind": "seq", "n": p.anthropic_seq_n, "warmup": 5, "events": p.seq_events,
                                         "time_limit": p.job_limit_s}, p.reps, family=family,
                       targets=("direct", "bare", "rotator"))
        for b in p.long_batches:
            self.phase(f"long_b{b}", {"kind": "long", "events": p.long_events, "batch": b,
                                      "time_limit": p.job_limit_s},
                       p.long_reps, extra={f"long_b{b}{report.RESUME_OFF_SUFFIX}": RESUME_OFF})
        self.phase("long_anthropic", {"kind": "long", "events": p.anthropic_long_events, "batch": 1,
                                      "time_limit": p.job_limit_s}, p.long_reps, family="anthropic",
                   extra={report.LONG_TRANSLATED: TRANSLATED,
                          "long_anthropic" + report.RESUME_OFF_SUFFIX: RESUME_OFF})
        self.phase("long_vertex", {"kind": "long", "events": p.anthropic_long_events, "batch": 1,
                                   "time_limit": p.job_limit_s}, p.long_reps, family="vertex",
                   targets=("direct", "bare", "rotator"))
        for family in ("openai", "anthropic"):  # an answer cut halfway and resumed, against the same answer uncut
            seq = {"kind": "seq", "n": p.resume_n, "warmup": 1, "events": p.resume_events, "time_limit": p.job_limit_s}
            self.phase(f"resume_{family}", seq, p.long_reps, family=family, targets=("rotator",),
                       extra={f"resume_{family}{report.CUT_SUFFIX}": "rotator"},
                       extra_job={"cut": p.resume_events // 2})
        # A vendor whose time to first token has a long tail, through the rotator (hedging off) and the hedging one.
        words = f"ttft_ms={p.hedge_ttft_ms:g} tail_pct={p.hedge_tail_pct:g} tail_x=10"
        self.phase("hedging", {"kind": "seq", "n": p.hedge_n, "warmup": 2, "events": p.seq_events, "words": words,
                               "vendor_port": self.vport, "time_limit": p.job_limit_s}, p.hedge_reps,
                   targets=("rotator",), extra={report.HEDGING_ON: HEDGING})
        self.phase("clients", {"kind": "seq", "n": p.clients_n, "warmup": 5, "events": p.seq_events,
                               "time_limit": p.job_limit_s}, p.reps, family="anthropic", targets=("rotator",),
                   extra={report.CLIENTS_ON: CLIENTS})
        self.phase("nonstream", {"kind": "nonstream", "concurrency": p.nonstream_concurrency,
                                 "total": p.nonstream_total, "time_limit": p.job_limit_s}, p.long_reps,
                   extra={report.NONSTREAM_OFF: UNFORCED})
        nominal = p.paced_events * p.paced_interval_ms / 1000
        for n in p.paced_levels:  # ascending, so that each level's peak RSS is the process's peak so far
            self.phase(f"paced_{n}", {"kind": "paced", "streams": n, "events": p.paced_events,
                                      "interval_ms": p.paced_interval_ms, "time_limit": 4 * nominal + 15},
                       p.paced_reps)
        for kib, n in zip(p.agent_sizes_kib, p.agent_requests):
            self.agent_size(kib, n)
        # A non-stream call answered in many events: forced upstream streaming folds each one back.
        self.phase(report.FOLD, {"kind": "seq", "n": p.fold_requests, "warmup": 1, "events": p.fold_events,
                                 "stream": False, "body_kib": 64, "request_timeout": 30, "time_limit": p.job_limit_s},
                   p.long_reps, family="anthropic", extra={report.FOLD + report.UNFORCED_SUFFIX: UNFORCED})
        if not self.args.only or any("tunnel".startswith(o) for o in self.args.only.split(",")):
            self.tunnel = self.measure_tunnel()
        if self.cluster is not None:
            self.cluster.measure()
        status, body = procs.http_get(self.vport, "/_stats")
        if status == 200:
            self.vendor_stats = json.loads(body)
        return self.result()

    def measure_tunnel(self) -> dict:
        """A 100 MiB download: direct, through bare mitmdump intercepting it, through the rotator tunnelling it."""
        log(f"tunnel: a {tunnel.SIZE >> 20} MiB download, direct / bare mitmdump intercepting / rotator tunnelling "
            f"({self.plan.long_reps} x)")
        confdir = self.logdir / "mitmproxy-conf"
        run = tunnel.TunnelRun(self.logdir, confdir, confdir / "mitmproxy-ca-cert.pem", ROOT / ".venv/bin/mitmdump",
                               ROOT, self.load_cpus, self.proxy_cpus)
        self.procs += [run.server, run.bare]
        rot = self.targets["rotator"]
        alive = rot.ok and rot.proc is not None and rot.proc.alive()
        return run.measure(self.plan.long_reps, (rot.spec["port"], rot.proc.pid) if alive and rot.proc else None)

    def result(self) -> dict:
        p = self.plan
        info = git_info()
        targets = {}
        for name, tg in self.targets.items():
            targets[name] = {"status": tg.status, "reason": tg.reason, "families": list(tg.families),
                             "note": tg.note}
        notes = list(self.notes)
        notes.append("direct: client -> fake vendor over plain HTTP/1.1 keep-alive (the physical floor)")
        notes.append("bare, rotator: client -> HTTP CONNECT -> mitmdump with TLS interception (trusting its CA) "
                     "-> fake vendor over plain HTTP on 127.0.0.1; both with --set connection_strategy=lazy")
        notes.append("bare = mitmdump -s scripts/bench_lib/bare_addon.py: only redirects to the vendor and sets "
                     "flow.response.stream = True (the least any mitmproxy-based design must do)")
        if self.targets[RESUME_OFF].ok:
            notes.append(f"{RESUME_OFF}: a third rotator with resume: {{mode: off}}, measured in the long-stream "
                         "phases only (the 'resume off' rows, in the rotator column)")
        if self.targets[HEDGING].ok:
            notes.append(f"{HEDGING}: a fourth rotator with hedging: {{mode: on, delay: {p.hedge_delay:g}}} (max_share "
                         "0.1), measured in the hedging phase only (the 'hedging on' rows, in the rotator column)")
        if self.targets[CLIENTS].ok:
            notes.append(f"{CLIENTS}: a sixth rotator whose Anthropic client is a `clients` entry with a budget, two "
                         "limits and models (never reached), measured in the clients phase only (the 'clients on' "
                         "rows, in the rotator column)")
        if self.targets[UNFORCED].ok:
            notes.append(f"{UNFORCED}: a second rotator whose providers set force_upstream_stream: false, measured "
                         "in the non-stream phases only (the 'forcing off' rows, in the rotator column)")
        if self.compared and self.targets[COMPARED].ok:
            notes.append(f"{COMPARED}: a fifth rotator running {p.compared} with the rotator's config, measured in the "
                         "agent phases beside it (the 'compared' rows, in the rotator column; 'this / compared': the "
                         "rotator's figure over its own in the same repetition, median)")
        if self.targets[TRANSLATED].ok:
            notes.append(f"{TRANSLATED}: the rotator above, asked by the Anthropic client for model "
                         f"{TRANSLATED_MODEL}, which a route sends to a target-only OpenAI-compatible provider (the "
                         "same fake vendor's Chat Completions): the request is translated to Chat, the stream back to "
                         "Anthropic SSE; measured in the Anthropic and agent phases only (the 'translated' rows)")
        if self.targets["litellm"].ok:
            notes.append("litellm: " + self.targets["litellm"].note)
        if self.proxy_cpus:
            notes.append(f"the process under test is pinned to CPU {sorted(self.proxy_cpus)}; vendor and client "
                         f"share CPU {sorted(self.load_cpus)} (for direct the client runs on the other CPU)")
        results = [r for per in self.raw.values() for rs in per.values() for r in rs]
        if self.cluster is not None:
            results += [v for rs in self.cluster.results.values() for r in rs for v in (r, *r.get("variants", ()))]
        notes.append(instructions_note(results))
        if self.evidence:
            notes.append(evidence.note(self.evidence))
        if self.skipped:
            notes.append("skipped for time: " + ", ".join(self.skipped))
        if self.vendor_stats:
            keys = self.vendor_stats.get("keys", {})
            pool = {k: v for k, v in keys.items() if k in POOL_KEYS + TRANSLATED_KEYS}
            if pool:
                notes.append("keys the vendor saw from the rotator's pool: "
                             + ", ".join(f"{k} x{v}" for k, v in sorted(pool.items())))
        return {
            "schema": 1,
            "timestamp": dt.datetime.now().isoformat(timespec="seconds"),
            "git": info,
            "quick": bool(self.args.quick),
            "duration_s": round(self.elapsed(), 1),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "mitmproxy": mitmproxy_version(), "litellm": litellm_version() if self.targets["litellm"].ok
                        else None, "kernel": platform.release()},
            "plan": dataclasses.asdict(p),
            "targets": targets,
            "notes": notes,
            "vendor_stats": self.vendor_stats,
            "raw": self.raw,
            "cluster": self.cluster.summary() if self.cluster is not None else None,
            "evidence": self.evidence,
            "tunnel": self.tunnel,
        }


def mitmproxy_version() -> str:
    try:
        from mitmproxy.version import VERSION
        return VERSION
    except ImportError:
        return "?"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measures direct vs bare mitmdump vs Rotator vs LiteLLM on one loopback workload and prints "
                    "one table; writes it as JSON to bench-results/.")
    ap.add_argument("--quick", action="store_true",
                    help="a very small run (well under a minute): checks that everything works, figures are noisy; "
                         "uses LiteLLM only if already installed")
    ap.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM column (and its install)")
    ap.add_argument("--no-rotator", action="store_true", help="skip the rotator column")
    ap.add_argument("--no-cluster", action="store_true",
                    help="skip the cluster run (the Redis pick against the local one; 1 and 2 workers behind HAProxy)")
    ap.add_argument("--rotator-script", default=str(ROOT / "addons/rotator.py"),
                    help="the addon measured in the rotator column (default addons/rotator.py)")
    ap.add_argument("--compare-script", default="",
                    help="another checkout's addons/rotator.py (the code before a change), run beside the rotator "
                         "column with the same config in the agent phases: its CPU per request, and the rotator's "
                         "over it in each repetition")
    ap.add_argument("--reps", type=int, default=0,
                    help="repetitions of every measurement (default: 5 sequential, 3 for the others)")
    ap.add_argument("--out", default=str(ROOT / "bench-results"), help="where the JSON goes (default bench-results/)")
    ap.add_argument("--one-by-one", action="store_true",
                    help="in the agent phases, the columns' requests interleaved one by one, each proxy's caches "
                         "then cold at every request (bench_lib/interleaved.py), instead of a block of each's")
    ap.add_argument("--keep-logs", action="store_true", help="keep the processes' logs even when all went well")
    ap.add_argument("--only", default="",
                    help="run only the phases whose names start with one of these (comma-separated, e.g. "
                         "paced_200,seq_openai or agent_8m); for profiling one workload")
    ap.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                    help="compare two earlier results instead of running")
    ap.add_argument("--status-page", action="store_true",
                    help="instead: what the status page costs the proxy, for 50 keys and 20 clients "
                         "(bench_lib/status_page.py)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.status_page:
        from bench_lib import status_page

        return status_page.main([])
    if args.compare:
        old, new = (json.loads(Path(p).read_text()) for p in args.compare)
        print(report.compare(old, new))
        return 0
    bench = Bench(args)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    try:
        data = bench.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        bench.stop()
    report.derive(data)
    text = report.render(data)
    if data["cluster"] is not None:
        text += "\n" + render_cluster(data["cluster"])
    print(text)
    bench.outdir.mkdir(parents=True, exist_ok=True)
    path = bench.outdir / f"{bench.stamp}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    shutil.copyfile(path, bench.outdir / "latest.json")
    problems = [n for n, t in data["targets"].items() if t["status"] != "ok"]
    if args.keep_logs or problems:
        log(f"process logs kept in {bench.logdir}")
    else:
        shutil.rmtree(bench.logdir, ignore_errors=True)
    log(f"wrote {path} and {bench.outdir / 'latest.json'} ({data['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
