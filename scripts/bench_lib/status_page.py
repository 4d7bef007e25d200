"""What the status page costs the proxy: a real mitmdump with Rotator, a pool of 50 keys each with its quota windows
under way and 20 clients with budgets and limits, traffic from the benchmark's fake vendor on every key; then the page
(HTML, and its JSON) asked for again and again: the proxy's CPU per page (median, and the most) and the page's size.

Run as `scripts/bench --status-page`, or `python -m bench_lib.status_page [--keys 50] [--clients 20] [--pages 30]`
(PYTHONPATH=scripts); docs/benchmark.md shows its row. Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from bench_lib.procinfo import cpu_seconds
from bench_lib.procs import Proc, child_env, free_port, port_open, tail, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
BUDGET_MS, BUDGET_KB = 200, 150  # what the page may cost (issue 70)


def config(vendor: str, keys: int, clients: int) -> dict:
    return {
        "providers": {"openai": {"base_url": f"{vendor}/v1",
                                 "keys": [f"sk-bench-status-{i:03d}" for i in range(keys)],
                                 "windows": [{"per": "day", "dollars": 50}, {"per": "minute", "requests": 1000}]}},
        "prices": {"*": {"input": 1, "output": 2}},
        "clients": [{"name": f"team-{i:02d}", "key": f"rk-bench-status-{i:02d}",
                     "budget": {"dollars": 100, "per": "day"},
                     "limits": [{"per": "hour", "requests": 10_000}, {"per": "minute", "tokens": 10_000_000}]}
                    for i in range(clients)],
    }


def traffic(client: httpx.Client, requests: int, clients: int) -> None:
    """`requests` chat calls, round the clients: every key of the pool serves some."""
    for n in range(requests):
        body = {"model": "gpt-4.1", "stream": False, "messages": [{"role": "user", "content": "bench events=3 hi"}]}
        answer = client.post("https://api.openai.com/v1/chat/completions", json=body,
                             headers={"authorization": f"Bearer rk-bench-status-{n % clients:02d}"})
        answer.raise_for_status()


def measure(keys: int, clients: int, pages: int, workdir: Path) -> dict:
    vendor = Proc("vendor", [sys.executable, "-m", "bench_lib.vendor", "--exit-with-stdin"], workdir / "vendor.log",
                  child_env(PYTHONPATH=str(SCRIPTS)), SCRIPTS, stdout_pipe=True, stdin_pipe=True)
    line = vendor.p.stdout.readline().decode()
    if not line.startswith("PORT "):
        vendor.stop()
        raise SystemExit("the fake vendor did not start: " + tail(vendor.log))
    cfg, confdir, port = workdir / "rotator.json", workdir / "confdir", free_port()
    cfg.write_text(json.dumps(config(f"http://127.0.0.1:{line.split()[1]}", keys, clients)))
    argv = [str(MITMDUMP), "-q", "-s", str(ROOT / "addons/rotator.py"), "--listen-host", "127.0.0.1", "--listen-port",
            str(port), "--set", f"confdir={confdir}", "--set", f"rotator_config={cfg}"]
    proxy = Proc("rotator", argv, workdir / "mitmdump.log", child_env(), ROOT)
    try:
        cafile = confdir / "mitmproxy-ca-cert.pem"
        why = wait_ready(proxy, lambda: cafile.exists() and port_open(port), 60)
        if why:
            raise SystemExit(f"{why}: {tail(proxy.log, 600)}")
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", verify=str(cafile), trust_env=False, timeout=30) as c:
            traffic(c, 2 * keys, clients)
            out = {}
            for fmt in ("html", "json"):
                costs, size = [], 0
                for _ in range(pages):
                    before = cpu_seconds([proxy.p.pid])
                    page = c.get("http://rotator.status/", params={"format": fmt, "key": "rk-bench-status-00"})
                    costs.append((cpu_seconds([proxy.p.pid]) - before) * 1000)
                    page.raise_for_status()
                    size = len(page.content)
                if fmt == "json":
                    shown = page.json()
                    pool = next(p for p in shown["providers"] if p["name"] == "openai")["pool"]
                    out["windows"] = sum(len(k["windows"]) for k in pool["keys"])
                    out["clients"] = len(shown["client_budgets"])
                out[fmt] = {"cpu_ms_median": round(statistics.median(costs), 1), "cpu_ms_max": round(max(costs), 1),
                            "kb": round(size / 1024, 1)}
        return out
    finally:
        proxy.stop()
        vendor.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_lib.status_page", description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=50)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--pages", type=int, default=30)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rotator-status-bench-") as tmp:
        figures = measure(args.keys, args.clients, args.pages, Path(tmp))
    page = figures["html"]
    print(f"status page, {args.keys} keys ({figures['windows']} quota windows under way) and {figures['clients']} "
          f"clients: the proxy's CPU per page {page['cpu_ms_median']} ms "
          f"(median of {args.pages}; most {page['cpu_ms_max']} ms), {page['kb']} KB; its JSON "
          f"{figures['json']['cpu_ms_median']} ms, {figures['json']['kb']} KB (budget: {BUDGET_MS} ms, {BUDGET_KB} KB)")
    return 0 if page["cpu_ms_max"] < BUDGET_MS and page["kb"] < BUDGET_KB else 1


if __name__ == "__main__":
    sys.exit(main())
