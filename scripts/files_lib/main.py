"""scripts/files-per-request: in how many of the project's files code runs while the real proxy serves one request.

For each scenario: a fresh `mitmdump -s scripts/files_lib/addon.py -s addons/rotator.py` whose config points the
providers' `base_url` at the benchmark's fake vendor on 127.0.0.1 (scripts/bench_lib/vendor.py); a client through
it as an HTTPS_PROXY client (CONNECT, TLS to the vendor's host name, trusting the CA mitmdump made) sends a warm-up
request, then the measured one on the same connection: the next turn of the same conversation. The addon profiles
the serving of the measured request (addon.py); the project's files among those that ran code are counted
(counting.py). See docs/architecture.md, "Files per request".
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench_lib.procs import Proc, child_env, free_port, port_open, tail, wait_ready

from files_lib.counting import by_folder, project_file, project_files

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
ADDON = SCRIPTS / "files_lib/addon.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
CHAT_MODEL = "gpt-4.1"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
# A system prompt of about 4 000 tokens (bytes / 4), well over every model's shortest cacheable prompt (1 024 tokens
# for OpenAI's): with a pool of two keys, the conversation is read and bound.
LONG_SYSTEM = " ".join(f"rule{i}: answer in plain words, cite file names, keep diffs small." for i in range(250))


@dataclass
class Scenario:
    name: str
    what: str
    keys: int = 1
    system: str = "You are terse."
    routed: bool = False  # the client's Chat model routed to the Anthropic provider (translated)
    expect_affinity: bool = False

    def config(self, vendor: str, state: Path) -> str:
        keys = ", ".join(f"sk-files-{i + 1}" for i in range(self.keys))
        text = (f"state: {{path: \"{state}\"}}\n"
                "providers:\n"
                f"  openai: {{base_url: \"{vendor}/v1\", keys: [{keys}]}}\n")
        if self.routed:
            text += (f"  anthropic: {{base_url: \"{vendor}\", keys: [sk-ant-files-1]}}\n"
                     "routes:\n"
                     f"  - {{models: [\"{ANTHROPIC_MODEL}\"], targets: [anthropic]}}\n")
        return text

    @property
    def model(self) -> str:
        return ANTHROPIC_MODEL if self.routed else CHAT_MODEL


SCENARIOS = (
    Scenario("chat-one-key", "a native Chat stream through one key"),
    Scenario("chat-pool-affinity", "a native Chat stream through a pool of two keys, affinity engaged (a prompt "
             "over the cache minimum)", keys=2, system=LONG_SYSTEM, expect_affinity=True),
    Scenario("chat-to-anthropic", "a Chat stream routed to an Anthropic target (translated)", routed=True),
)


@dataclass
class Result:
    scenario: Scenario
    files: list[str] = field(default_factory=list)
    functions: dict[str, list[str]] = field(default_factory=dict)  # each file's functions that ran
    affinity: list[str] = field(default_factory=list)  # why the measured request's keys were taken (its trail)
    problem: str = ""

    def as_json(self) -> dict:
        return {"what": self.scenario.what, "count": len(self.files), "files": self.files,
                "functions": self.functions, "affinity": self.affinity, "problem": self.problem}


def log(msg: str) -> None:
    sys.stderr.write(f"[files-per-request {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def chat_turn(client: httpx.Client, scenario: Scenario, messages: list[dict]) -> str:
    """One streamed Chat request; the text it answered (raises on a failed or malformed answer)."""
    body = {"model": scenario.model, "stream": True, "messages": messages}
    text = []
    with client.stream("POST", "https://api.openai.com/v1/chat/completions", json=body,
                       headers={"authorization": "Bearer sk-files-client"}) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"status {resp.status_code}: {resp.read()[:300]!r}")
        done = False
        for line in resp.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                for choice in json.loads(line[6:]).get("choices", []):
                    text.append(choice.get("delta", {}).get("content") or "")
    if not done:
        raise RuntimeError("the stream ended without [DONE]")
    return "".join(text)


def converse(port: int, cafile: Path, scenario: Scenario) -> None:
    """The warm-up turn, then the measured one: the same conversation's next turn, on the same connection."""
    messages = [{"role": "system", "content": scenario.system},
                {"role": "user", "content": "bench events=3 Which file holds the pump?"}]
    with httpx.Client(proxy=f"http://127.0.0.1:{port}", verify=str(cafile), trust_env=False, timeout=30) as client:
        answer = chat_turn(client, scenario, messages)
        messages += [{"role": "assistant", "content": answer},
                     {"role": "user", "content": "bench events=3 And the one that splices a continuation?"}]
        chat_turn(client, scenario, messages)


def measure(scenario: Scenario, vport: int, workdir: Path) -> Result:
    result = Result(scenario)
    confdir, out, cfg = workdir / "confdir", workdir / "files.json", workdir / "rotator.yaml"
    cfg.write_text(scenario.config(f"http://127.0.0.1:{vport}", workdir / "state.db"))
    port = free_port()
    argv = [str(MITMDUMP), "-s", str(ADDON), "-s", str(ROOT / "addons/rotator.py"), "--listen-host", "127.0.0.1",
            "--listen-port", str(port), "--set", f"confdir={confdir}", "--set", f"rotator_config={cfg}"]
    proc = Proc(scenario.name, argv, workdir / "mitmdump.log", child_env(FILES_OUT=str(out)), ROOT)
    try:
        cafile = confdir / "mitmproxy-ca-cert.pem"
        why = wait_ready(proc, lambda: cafile.exists() and port_open(port), 60)
        if why:
            result.problem = f"{why}: {tail(proc.log, 600)}"
            return result
        converse(port, cafile, scenario)
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not out.exists():
            result.problem = "the measuring addon wrote nothing: " + tail(proc.log, 600)
            return result
        record = json.loads(out.read_text())
        ran = {f: names for f, names in record["files"].items() if project_file(f, str(ROOT))}
        result.functions = {project_file(f, str(ROOT)): names for f, names in ran.items()}
        result.files = project_files(list(ran), str(ROOT))
        if record["status"] != 200 or record["error"]:
            result.problem = f"the measured request: status {record['status']}, error {record['error']}"
        result.affinity = record.get("taken") or []
        if scenario.expect_affinity and not any("bound" in a for a in result.affinity):
            result.problem = f"affinity not engaged (its trail: {result.affinity})"
    except (RuntimeError, httpx.HTTPError) as e:
        result.problem = f"{type(e).__name__}: {e}; log: {tail(proc.log, 600)}"
    finally:
        proc.stop()
    return result


def start_vendor(workdir: Path) -> tuple[Proc, int]:
    vendor = Proc("vendor", [sys.executable, "-m", "bench_lib.vendor", "--exit-with-stdin"],
                  workdir / "vendor.log", child_env(PYTHONPATH=str(SCRIPTS)), SCRIPTS, stdout_pipe=True,
                  stdin_pipe=True)
    line = vendor.p.stdout.readline().decode()
    if not line.startswith("PORT "):
        vendor.stop()
        raise SystemExit("the fake vendor did not start: " + tail(vendor.log))
    return vendor, int(line.split()[1])


def render(results: list[Result], listing: bool, functions: bool = False) -> str:
    lines = ["Project files (addons/, protocols/, rewrite/: not tests/, scripts/, .venv) in which a Python function "
             "ran while mitmdump served one request after a warm-up:", ""]
    width = max(len(r.scenario.name) for r in results)
    for r in results:
        count = "n/a" if r.problem else str(len(r.files))
        detail = r.problem or r.scenario.what
        if r.affinity and not r.problem:
            detail += f"; affinity: {r.affinity[-1]}"
        lines.append(f"  {r.scenario.name:<{width}}  {count:>4}  {detail}")
    if listing:
        for r in results:
            lines += ["", f"{r.scenario.name}: {len(r.files)} files"]
            for folder, names in by_folder(r.files).items():
                lines.append(f"  {folder}/ ({len(names)}): {', '.join(names)}")
                if functions:
                    lines += [f"    {name}: {', '.join(r.functions[f'{folder}/{name}'])}" for name in names]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/files-per-request", description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="list each scenario's files, grouped by folder")
    ap.add_argument("--functions", action="store_true", help="with --list: each file's functions that ran")
    ap.add_argument("--only", default="", help="only these scenarios (comma-separated: "
                    + ", ".join(s.name for s in SCENARIOS) + ")")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--keep-logs", action="store_true", help="keep mitmdump's logs (their folder is printed)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    if not chosen:
        raise SystemExit(f"--only names no scenario; they are: {', '.join(s.name for s in SCENARIOS)}")
    workdir = Path(tempfile.mkdtemp(prefix="files-per-request-"))
    vendor, vport = start_vendor(workdir)
    results = []
    try:
        for scenario in chosen:
            log(f"{scenario.name}: {scenario.what}")
            (workdir / scenario.name).mkdir()
            results.append(measure(scenario, vport, workdir / scenario.name))
    finally:
        vendor.stop()
    print(render(results, args.list or args.functions, args.functions))
    if args.json:
        Path(args.json).write_text(json.dumps({r.scenario.name: r.as_json() for r in results}, indent=1) + "\n")
    if args.keep_logs:
        log(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(r.problem for r in results) else 0
