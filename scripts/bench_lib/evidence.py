"""scripts/bench's measure of reading a request's conversation evidence (protocols/conversation.py, issue 30): the
CPU one request's reading costs, in this process, on agent-sized bodies (agent.py) in each protocol (the Anthropic
body translated to the others), beside `json.loads` of the same body, which a request of that size already costs
the engine. Bodies of 4 MiB and more are read in the body parser's worker (rewrite/intake/big_json.py: EvidenceAsk),
off the event loop: their figure is the worker's CPU, not the loop's.
"""

from __future__ import annotations

import json
import os
import time
import timeit

import protocols
from bench_lib.agent import agent_body
from protocols.translate import translate_request

NAMES = ("anthropic_messages", "openai_chat", "openai_responses", "gemini")
MODELS = {"anthropic_messages": "claude-opus-4-8", "openai_chat": "gpt-5.5", "openai_responses": "gpt-5.5",
          "gemini": "gemini-3.1-pro-preview"}
HEADERS = [("content-type", "application/json"), ("user-agent", "claude-cli/2.1.197"), ("x-app", "cli"),
           ("x-claude-code-session-id", "0b7e3c1a-5d2f-4f6e-9a31-2c8d7e6f5a40"), ("anthropic-version", "2023-06-01")]
GOAL_US = 50  # issue 30: the affinity lookup adds at most this much CPU per request at 1 MiB bodies
BIG = 4 << 20  # (rewrite/intake/big_json.py: BIG_BODY, where the worker takes over)


def _cpu_us(fn, budget_s: float) -> float:
    """Microseconds of CPU one call costs: the least over several runs of as many calls as fit the budget."""
    timer = timeit.Timer(fn, timer=time.process_time)
    once = max(timer.timeit(1), 1e-6)
    n = max(1, int(budget_s / 7 / once))
    return min(timer.repeat(number=n, repeat=7)) / n * 1e6


def measure(sizes_kib: tuple[int, ...], budget_s: float = 1.0, cpus: set[int] | None = None) -> dict:
    """{"<protocol> <size> KiB": {"evidence_us", "json_loads_us", "messages", "links_read_in"}} for each size and
    protocol; run pinned to `cpus` when given (the CPU the process under test gets elsewhere)."""
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        out = {}
        for kib in sizes_kib:
            base = agent_body(kib << 10, MODELS["anthropic_messages"], True, "bench")
            for name in NAMES:
                body = base if name == "anthropic_messages" else translate_request(
                    base, "anthropic_messages", name, model=MODELS[name])
                raw = json.dumps(body)
                reader = protocols.registered(name).conversation
                assert reader is not None
                evidence = reader.read(HEADERS, body)
                out[f"{name} {kib} KiB"] = {
                    "evidence_us": round(_cpu_us(lambda r=reader, b=body: r.read(HEADERS, b), budget_s), 1),
                    "json_loads_us": round(_cpu_us(lambda r=raw: json.loads(r), budget_s), 1),
                    "messages": evidence.messages,
                    "links_read_in": "the worker" if len(raw) >= BIG else "the event loop",
                }
        return out
    finally:
        os.sched_setaffinity(0, before)


def note(results: dict) -> str:
    """One line for the report's notes."""
    parts = [f"{key}: {r['evidence_us']:g} us ({r['messages']} messages; json.loads {r['json_loads_us']:g} us"
             f"{', in the worker' if r['links_read_in'] == 'the worker' else ''})" for key, r in results.items()]
    return (f"conversation evidence read per request, CPU in process (goal: the affinity lookup at most +{GOAL_US} us "
            "at 1 MiB): " + "; ".join(parts))
