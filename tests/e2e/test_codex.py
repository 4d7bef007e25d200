"""The real Codex CLI (`codex exec`) through a real mitmdump, against the fake vendor.

Codex opens the Responses API as a WebSocket first; Rotator answers that upgrade 426 (`websocket: downgrade`,
the default), which makes Codex use HTTPS POST for the whole session at once, so a stalled key is retried like
any other HTTP request. Codex gets only what a user would set: HTTPS_PROXY, SSL_CERT_FILE and OPENAI_API_KEY,
with an empty CODEX_HOME. The proxy answers every host but api.openai.com with 403 (mitmproxy's block_list), so
Codex's side calls (plugin lists, telemetry) never leave 127.0.0.1.

The CLI is installed by scripts/setup-codex (CI runs it); without npm or its registry these tests skip.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mitmproxy import io as flow_io

from tests.support.codex import LOOPBACK_ONLY, run_codex
from tests.support.fake_vendor import TEXT, Fault, split_text

pytestmark = pytest.mark.e2e


def responses_flows(path: Path) -> list:
    with path.open("rb") as f:
        flows = [fl for fl in flow_io.FlowReader(f).stream() if fl.request.pretty_host == "api.openai.com"]
    return [fl for fl in flows if fl.request.path.partition("?")[0] == "/v1/responses"]


def assert_one_426_then_posts(flows: list) -> None:
    shown = [(fl.request.method, fl.response.status_code if fl.response else None) for fl in flows]
    assert shown[0] == ("GET", 426), shown
    assert shown[1:] and all(s == ("POST", 200) for s in shown[1:]), shown
    assert "426" in flows[0].comment


def test_codex_answers_through_rotator_over_https(codex_bin, rotator, fake_vendor, tmp_path):
    flows = tmp_path / "flows"
    proxy = rotator(fresh=True, args=(*LOOPBACK_ONLY, "-w", str(flows)))

    done = run_codex(codex_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    fake_vendor.wait_for(1)
    [call] = fake_vendor.calls("responses")
    assert call.method == "POST" and call.stream is True  # what Codex sends after the 426: a streamed POST
    assert call.credential == "sk-pool-1"  # from the pool, not the client's key
    assert "Say hello" in call.raw_body.decode()
    assert [r.method for r in fake_vendor.requests] == ["POST"]  # the WebSocket never reached the vendor
    proxy.proc.stop()
    assert_one_426_then_posts(responses_flows(flows))
    assert b"sk-pool-" not in flows.read_bytes()


@pytest.mark.parametrize("through_wrapper", [False, True], ids=["its-environment", "scripts-with-rotator"])
def test_codex_answers_well_inside_a_minute_when_its_first_key_stalls(codex_bin, rotator, fake_vendor, tmp_path,
                                                                      through_wrapper):
    """Pointed at Rotator by its environment, or run by scripts/with-rotator (nothing of the proxy in its own)."""
    flows = tmp_path / "flows"
    proxy = rotator(streaming={"first_token_timeout": 3}, fresh=True, args=(*LOOPBACK_ONLY, "-w", str(flows)))
    fake_vendor.always(Fault.stall_before_headers(120), key="sk-pool-1")

    start = time.monotonic()
    done = run_codex(codex_bin, proxy, tmp_path, through_wrapper=through_wrapper)
    elapsed = time.monotonic() - start

    assert done.returncode == 0, done.stderr[-3000:]
    assert TEXT in done.stdout
    assert elapsed < 30, f"Codex took {elapsed:.1f}s"
    calls = fake_vendor.wait_for(2)
    assert [(r.method, r.credential) for r in calls[:2]] == [("POST", "sk-pool-1"), ("POST", "sk-pool-2")]
    assert calls[1].outcome == "complete"
    proxy.proc.stop()
    assert_one_426_then_posts(responses_flows(flows))


def test_codex_prints_one_whole_answer_when_its_stream_is_cut(codex_bin, rotator, fake_vendor, tmp_path):
    """A stream reset after its first words is continued by Rotator: Codex prints the whole answer, once, and
    asks nothing more itself (the second request is Rotator's continuation, carrying the partial answer)."""
    proxy = rotator(streaming={"first_token_timeout": 3}, fresh=True, args=LOOPBACK_ONLY)
    prefix = "".join(split_text(TEXT)[:2])
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"), Fault().ok(TEXT[len(prefix):]))

    done = run_codex(codex_bin, proxy, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(TEXT) == 1, done.stdout
    first, continuation = fake_vendor.wait_for(2)
    assert prefix in json.dumps(continuation.body["input"][-2:])  # the partial answer, then the ask to go on
    time.sleep(1)  # stays: absence. A second turn still on its way through the proxy would reach the vendor by now
    assert len(fake_vendor.calls("responses")) == 2  # no second turn from Codex
