"""A plug-in from outside Rotator's tree (tests/support/counting_plugin/: answers counted per key) registered in one
line by its mitmdump script and served end to end through a real mitmdump, with no change to the engine: it is told
of every answer through the lifecycle's `served` event, and what it records reaches the saved flows, keys masked."""

from __future__ import annotations

import json

import pytest

from rewrite.providers.credentials import mask
from tests.support.counting_plugin import OWN, RECORD
from tests.support.fake_vendor import TEXT
from tests.support.flows import read_flows
from tests.support.harness import POOL_KEYS
from tests.support.raw_http import through
from tests.support.streams import parse

pytestmark = pytest.mark.e2e

SCRIPT = "tests/support/counting_plugin/rotator.py"
KEYS = POOL_KEYS["openai"][:2]


def chat(proxy) -> str:
    with through(proxy) as http:
        resp = http.post("https://api.openai.com/v1/chat/completions", headers={"authorization": "Bearer sk-client"},
                         json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Hi"}]})
    assert resp.status_code == 200, resp.text
    chunks = [json.loads(e.data) for e in parse(resp.content) if e.data not in (None, "[DONE]")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def test_a_plugin_of_the_tests_counts_the_answers_each_key_served(rotator, fake_vendor, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    proxy = rotator({"providers": {"openai": {"keys": KEYS}}}, fresh=True, script=SCRIPT,
                    args=("-w", str(flows_path)))
    assert [chat(proxy) for _ in range(4)] == [TEXT] * 4
    served_by = [r.credential for r in fake_vendor.wait_for(4)]
    assert sorted(served_by) == sorted(KEYS * 2)  # (round-robin over the two keys)

    proxy.proc.stop()  # the flow file is complete once mitmdump has exited
    flows = [f for f in read_flows(flows_path) if f.request.pretty_host == "api.openai.com"]
    counts = [f.metadata["rotator"][RECORD] for f in flows]
    assert [sum(c.values()) for c in counts] == [1, 2, 3, 4]  # the running count, one answer more each flow
    last = counts[-1]
    assert sorted(last.values()) == [2, 2] and OWN not in last
    assert sorted(last) == sorted(mask(key) for key in KEYS)  # each key masked, as the flows show it
    assert not any(key in proxy.full_log for key in KEYS)
