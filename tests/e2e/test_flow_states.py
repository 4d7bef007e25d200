"""Flows say honestly what happened: a client that received a complete (or honestly repaired) answer is never
recorded as an error, and a flow in flight shows the vendor's URL, never Rotator's loopback server.

Real `mitmdump -s addons/rotator.py`, the official SDKs, the fake vendor; flows read from a `-w` file.
"""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from tests.support.clients import MODELS, PROMPT, TRUNCATED, make_client
from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.flows import read_flows
from tests.support.reliability import UNHURRIED

pytestmark = pytest.mark.e2e

RUNS = 40  # the race lost up to half of the runs, on a busy machine more often than on a quiet one


def test_repaired_openai_streams_are_never_recorded_as_errors(fake_vendor, rotator, tmp_path):
    """The OpenAI SDK closes its connection as soon as it reads `[DONE]`. A repaired stream's ending used to reach
    the client before the end of the response reached mitmproxy, so the flow lost the race and was saved as
    "Client disconnected." with no end time, although the client got a correct, truncated answer."""
    path = tmp_path / "flows.mitm"
    proxy = rotator(streaming=UNHURRIED, fresh=True, args=("-w", str(path)))
    client = make_client("chat")
    fake_vendor.always(Fault.cut_after(deltas=2, how="reset"))

    for _ in range(RUNS):
        chunks = list(client.chat.completions.create(model=MODELS["chat"], messages=[{"role": "user", "content": PROMPT}],
                                                     stream=True))
        assert chunks[-1].choices[0].finish_reason == TRUNCATED["chat"]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(split_text(TEXT)[:2])
    fake_vendor.wait_for(RUNS)
    proxy.wait_log("repaired")
    proxy.proc.stop()  # the flow file is complete once mitmdump has exited

    flows = [f for f in read_flows(path) if f.request.pretty_host == "api.openai.com"]
    assert len(flows) == RUNS
    errors = [f.error.msg for f in flows if f.error is not None]
    assert errors == [], f"{len(errors)} of {RUNS} repaired flows saved as errors: {errors[:3]}"
    assert all(f.response.timestamp_end is not None for f in flows)
    assert all("repaired" in f.comment for f in flows)


def test_a_flow_in_flight_shows_the_vendor_url(fake_vendor, rotator, tmp_path):
    """While the vendor is still silent, mitmproxy's own record of the flow (as mitmweb shows it) holds the
    vendor's URL and no header of Rotator's own."""
    proxy = rotator(fresh=True, args=("-s", "tests/e2e/flow_probe.py"))
    fake_vendor.script(Fault.stall_before_headers(3))
    done = threading.Event()

    def call() -> None:
        try:
            make_client("chat").chat.completions.create(model=MODELS["chat"], messages=[{"role": "user", "content": "hi"}])
        finally:
            done.set()

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    fake_vendor.wait_for(1, done=False)  # the request is at the vendor: the flow is in flight
    shown = probe(proxy)
    done.wait(15)
    assert [f["url"] for f in shown] == ["https://api.openai.com/v1/chat/completions"], shown
    assert not any(name.startswith("x-rotator") for f in shown for name in f["headers"]), shown


def probe(proxy) -> list[dict]:
    """What tests/e2e/flow_probe.py reports of the flows in flight, asked through the proxy."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", "http://rotator-test.probe/flows")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()

