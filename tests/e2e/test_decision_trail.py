"""The decision trail (issue 35) through a real `mitmdump -s addons/rotator.py` and the openai SDK: which pooled key
served each attempt of a conversation's turns and why, and why each other key was passed over, in the saved flows
(`rotator.trail`) and in the LLM view mitmweb shows, no key in full anywhere (flows file, view, log).

The pool has three keys: one the vendor refuses (401, out of the pool), and the conversation's turns go to the one
its first turn was placed on, until that one answers 429 and the turn moves to the third."""

from __future__ import annotations

import pytest

from rewrite.pool import mask
from tests.support.clients import make_client
from tests.support.fake_vendor import Fault
from tests.support.flows import read_vendor_flows
from tests.support.harness import POOL_KEYS
from tests.support.multi_turn import SYSTEM, Conversation
from tests.support.raw_http import through
from tests.support.views import shown

pytestmark = pytest.mark.e2e

KEYS = POOL_KEYS["openai"]
REFUSED = KEYS[2]
MARK = "Conversation trail:"


def warm_up(proxy) -> None:
    """Plain one-shot calls (no conversation to keep) until the refused key has been tried once."""
    with through(proxy) as http:
        for _ in range(len(KEYS)):
            resp = http.post("https://api.openai.com/v1/chat/completions", headers={"authorization": "Bearer x"},
                             json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
            assert resp.status_code == 200, resp.text


def test_each_turns_flow_says_which_key_served_it_and_why_the_others_were_passed_over(
        rotator, fake_vendor, tmp_path, llm_view):
    flows_path = tmp_path / "flows"
    proxy = rotator({"providers": {"openai": {"keys": KEYS}}}, fresh=True, args=("-w", str(flows_path)))
    fake_vendor.always(Fault.status(401), key=REFUSED)
    warm_up(proxy)
    assert REFUSED in [r.credential for r in fake_vendor.requests]

    convo = Conversation("chat", make_client("chat"), system=f"{MARK} " + SYSTEM * 6)
    convo.ask("What does the first module do?")
    convo.ask("And the second?")
    bound = [c.credential for c in fake_vendor.calls() if MARK in str(c.body)][-1]
    fake_vendor.script(Fault.status(429, headers={"retry-after": "60"}), key=bound)
    convo.ask("And the third?")
    assert all(t.text for t in convo.turns)
    served = [c.credential for c in fake_vendor.calls() if MARK in str(c.body)]
    assert served[:3] == [bound] * 3 and len(served) == 4
    moved_to = served[3]
    assert moved_to not in (bound, REFUSED)

    proxy.proc.stop()  # (the flows file is whole once mitmdump has exited)
    flows = [f for f in read_vendor_flows(flows_path) if MARK in f.request.get_text(strict=False)]
    trails = [f.metadata["rotator"]["trail"] for f in flows]
    assert [len(t) for t in trails] == [1, 1, 2]

    [second] = trails[1]
    assert second["candidates"] == [mask(k) for k in KEYS]
    assert second["taken"] == mask(bound) and second["outcome"] == "served"
    assert second["why"].startswith("the conversation is bound to it")
    passed = {p["key"]: p["why"] for p in second["passed"]}
    assert passed[mask(REFUSED)].startswith("out: ")
    assert passed[mask(moved_to)] == "ready, but the conversation is bound to another key"

    limited, moved = trails[2]
    assert limited["taken"] == mask(bound) and limited["outcome"].startswith("failed: ")
    assert moved["taken"] == mask(moved_to) and moved["outcome"] == "served"
    assert moved["why"].startswith("the conversation moved here")
    passed = {p["key"]: p["why"] for p in moved["passed"]}
    assert passed[mask(bound)].startswith("resting until ") and "429" in passed[mask(bound)]
    assert passed[mask(REFUSED)].startswith("out: ")

    view = shown(flows[2], flows[2].request)
    assert f"took {mask(moved_to)}: the conversation moved here" in view
    assert f"passed over {mask(bound)}: resting until " in view

    saved = flows_path.read_bytes()
    assert not any(key.encode() in saved or key in view for key in KEYS)
    assert not any(key in proxy.full_log for key in KEYS)
