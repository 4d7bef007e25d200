"""scripts/bench's measure of reading a request's conversation evidence (protocols/evidence.py, issue 30): the
CPU one request's reading costs, in this process, on agent-sized bodies (agent.py) in each protocol (the Anthropic
body translated to the others), beside `json.loads` of the same body, which a request of that size already costs
the engine. Bodies of 4 MiB and more are read in the body parser's worker (rewrite/intake/big_json.py: EvidenceAsk),
off the event loop: their figure is the worker's CPU, not the loop's.

The affinity lookup (rewrite/plugins/affinity/, rewrite/pool/affinity.py) is what a request of a pool with affinity
on costs beyond one without: the evidence read, `affinity_of` (its ids) and the pick's lookup of those ids among the
pool's bindings (`BINDINGS` live ones, as a busy pool holds). Its figure is set against `json.loads` of the same body
in the same run (the baseline: what the engine already pays for a request of that size), as a ratio, so that runs on
machines of other speeds compare; the goal is in microseconds at 1 MiB.
"""

from __future__ import annotations

import json
import os
import time
import timeit

import protocols
from bench_lib.agent import agent_body
from protocols.registry import cache_minimum
from protocols.translate import translate_request
from rewrite.plugins.affinity import affinity_of
from rewrite.pool.affinity import Affinity
from rewrite.pool.local import Bindings

NAMES = ("anthropic_messages", "openai_chat", "openai_responses", "gemini")
MODELS = {"anthropic_messages": "claude-opus-4-8", "openai_chat": "gpt-5.5", "openai_responses": "gpt-5.5",
          "gemini": "gemini-3.1-pro-preview"}
HEADERS = [("content-type", "application/json"), ("user-agent", "claude-cli/2.1.197"), ("x-app", "cli"),
           ("x-claude-code-session-id", "0b7e3c1a-5d2f-4f6e-9a31-2c8d7e6f5a40"), ("anthropic-version", "2023-06-01")]
GOAL_US = 50  # issue 30: the affinity lookup adds at most this much CPU per request at 1 MiB bodies
BIG = 4 << 20  # (rewrite/intake/big_json.py: BIG_BODY, where the worker takes over)
FAMILIES = {"anthropic_messages": "anthropic", "openai_chat": "openai", "openai_responses": "openai",
            "gemini": "gemini"}
CLIENT = "bench-client"
BINDINGS = 10_000  # live bindings in the pool looked up in (other conversations')
GOAL_SIZE_KIB = 1024


def _cpu_us(fn, budget_s: float) -> float:
    """Microseconds of CPU one call costs: the least over several runs of as many calls as fit the budget."""
    timer = timeit.Timer(fn, timer=time.process_time)
    once = max(timer.timeit(1), 1e-6)
    n = max(1, int(budget_s / 7 / once))
    return min(timer.repeat(number=n, repeat=7)) / n * 1e6


def _bindings(count: int, keys: int = 3) -> Bindings:
    """A pool's bindings (rewrite/pool/local.py `Bindings`): `count` other conversations, each bound to one of `keys`
    keys for an hour."""
    bindings, wall = Bindings(keys), time.time()
    for n in range(count):
        other = Affinity((), (f"l:{CLIENT}:{n:016x}",), f"l:{CLIENT}:{n:016x}", 3600.0, 10)
        bindings.bind(n % keys, other, other.name, (), wall)
    return bindings


def _affinity(reader, body: dict, size: int, minimum: int | None, bindings: Bindings) -> object:
    """What affinity adds to one request: the evidence read, its affinity and the pick's lookup."""
    affinity = affinity_of(reader.read(HEADERS, body, size=size), CLIENT, minimum)
    return affinity and bindings.lookup(affinity, time.time())


def measure(sizes_kib: tuple[int, ...], budget_s: float = 1.0, cpus: set[int] | None = None, rounds: int = 5
            ) -> dict:
    """{"<protocol> <size> KiB": {"evidence_us", "affinity_us", "json_loads_us", "affinity_ratio", "messages",
    "links_read_in"}} for each size and protocol (affinity_us: the evidence read, `affinity_of` and the lookup;
    affinity_ratio: affinity_us over json_loads_us, measured alike); run pinned to `cpus` when given (the CPU the
    process under test gets elsewhere). Each figure is the least of `rounds` measures, the rounds one after another
    over every body, so that each figure has its share of the machine's quieter moments (a shared machine's speed
    changes by half within seconds)."""
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        bindings = _bindings(BINDINGS)
        cases = []
        for kib in sizes_kib:
            base = agent_body(kib << 10, MODELS["anthropic_messages"], True, "bench")
            for name in NAMES:
                body = base if name == "anthropic_messages" else translate_request(
                    base, "anthropic_messages", name, model=MODELS[name])
                raw = json.dumps(body)
                reader = protocols.registered(name).evidence
                assert reader is not None
                size = len(raw)
                evidence = reader.read(HEADERS, body, size=size)
                minimum = cache_minimum(FAMILIES[name], MODELS[name])
                assert affinity_of(evidence, CLIENT, minimum) is not None  # (an agent's body: worth a binding)
                cases.append((f"{name} {kib} KiB", size, evidence.messages, {
                    "evidence_us": lambda r=reader, b=body, n=size: r.read(HEADERS, b, size=n),
                    "affinity_us": lambda r=reader, b=body, n=size, m=minimum: _affinity(r, b, n, m, bindings),
                    "json_loads_us": lambda r=raw: json.loads(r),
                }))
        best: dict[str, dict[str, float]] = {}
        for _ in range(rounds):
            for key, _size, _messages, fns in cases:
                figures = best.setdefault(key, {})
                for figure, fn in fns.items():
                    us = _cpu_us(fn, budget_s / rounds)
                    figures[figure] = min(us, figures.get(figure, us))
        out = {}
        for key, size, messages, _fns in cases:
            f = best[key]
            out[key] = {
                "evidence_us": round(f["evidence_us"], 1),
                "affinity_us": round(f["affinity_us"], 1),
                "json_loads_us": round(f["json_loads_us"], 1),
                "affinity_ratio": round(f["affinity_us"] / f["json_loads_us"], 4),
                "messages": messages,
                "links_read_in": "the worker" if size >= BIG else "the event loop",
            }
        return out
    finally:
        os.sched_setaffinity(0, before)


def worst_at_goal_size(results: dict) -> tuple[str, dict] | None:
    """The protocol whose affinity lookup costs most at 1 MiB, and its figures; None when 1 MiB was not measured."""
    at = [(key, r) for key, r in results.items() if key.endswith(f" {GOAL_SIZE_KIB} KiB")]
    return max(at, key=lambda kr: kr[1]["affinity_us"]) if at else None


def note(results: dict) -> str:
    """One line for the report's notes."""
    parts = [f"{key}: {r['evidence_us']:g} us ({r['messages']} messages; json.loads {r['json_loads_us']:g} us"
             f"{', in the worker' if r['links_read_in'] == 'the worker' else ''}), the whole affinity lookup (with "
             f"affinity_of and the bindings) {r['affinity_us']:g} us = {r['affinity_ratio']:.2%} of json.loads"
             for key, r in results.items()]
    return (f"conversation evidence read and affinity lookup per request, CPU in process, {BINDINGS} bindings in the "
            f"pool (goal: the affinity lookup at most +{GOAL_US} us at 1 MiB): " + "; ".join(parts))
