"""Upstreams that break in ways other than a stall or a reset, seen through the official SDKs and a real mitmdump:
a body that does not decode under its content-encoding, an SSE line that never ends, and a stream longer than
what a flow keeps.
"""

from __future__ import annotations

import re
import time

import pytest

from rewrite.intake.loopback import FLOW_BODY_HEAD, FLOW_BODY_TAIL
from tests.support.clients import FINISH, PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.reliability import (
    DELTAS,
    FAMILY,
    FAST,
    MARGIN,
    PREFIX,
    PROVIDER_HOST,
    RESUME_OFF,
    assert_one_clean_answer,
    assert_rotator_retried,
    assert_truncated,
    flow_line,
    stream,
    two_keys,
    warmed,
)

pytestmark = pytest.mark.e2e
# An environment of their own: shared proxies are keyed on config and environment (tests/support/harness.py).
NO_STALLED_KEYS = {"ROTATOR_TEST_GROUP": "no-stalled-keys"}

NOT_FORCED = {name: {"force_upstream_stream": False} for name in ("openai", "anthropic", "gemini")}
ENDLESS = 64 << 20  # bytes of the line that never ends: far past the 8 MiB cap on one SSE event
SLOW_WATCHDOGS = {"first_token_timeout": 30, "idle_timeout": 30}  # the cap, not a watchdog, must end these


def sent_bytes(req) -> int:
    return sum(len(data) for _, data in req.events)


# ------------------------------------------------------------------------------------------------------------------
# A body that does not decode: a cut like any other.


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_corrupt_gzip_after_the_first_token_ends_truncated(fake_vendor, rotator, protocol):
    proxy = warmed(rotator, fake_vendor, protocol, streaming=FAST, resume=RESUME_OFF)
    fake_vendor.script(Fault.corrupt_after(deltas=DELTAS))

    seen = stream(protocol)

    assert seen.text == PREFIX
    assert_truncated(protocol, seen)
    [req] = fake_vendor.wait_for(1)
    assert req.outcome == "corrupt"
    assert req.headers["accept-encoding"] == "identity"  # Rotator asked for no encoding; this vendor sent one anyway
    assert re.search(rf"rotator: {FAMILY[protocol]} \w+: repaired: .*DecodingError", proxy.wait_log("repaired"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_corrupt_gzip_before_the_first_token_is_retried_on_the_next_key(fake_vendor, rotator, protocol):
    # (A proxy shared only with tests whose keys never rest after a stall: a corrupt answer does not rest its key,
    # so with the other keys resting after a stall, the retry would rightly go to the same key.)
    proxy = warmed(rotator, fake_vendor, protocol, streaming=FAST, env=NO_STALLED_KEYS)
    fake_vendor.script(Fault.corrupt_after(deltas=0), Fault.ok())

    seen = stream(protocol)

    assert_one_clean_answer(protocol, seen, served_by=1)
    first, _ = two_keys(fake_vendor, protocol)
    assert first.outcome == "corrupt"
    assert_rotator_retried(proxy, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_corrupt_non_stream_answer_is_retried_on_the_next_key(fake_vendor, rotator, protocol):
    proxy = warmed(rotator, fake_vendor, protocol, streamed=False, streaming=FAST, providers=NOT_FORCED,
                   env=NO_STALLED_KEYS)  # (see above)
    fake_vendor.script(Fault.corrupt_after(deltas=0), Fault.gzip())

    result = call(protocol, make_client(protocol), stream=False)

    assert result.text == TEXT and result.finish == FINISH[protocol]["text"]
    first, second = two_keys(fake_vendor, protocol)
    assert not first.stream and first.outcome == "corrupt" and second.outcome == "complete"
    assert_rotator_retried(proxy, protocol)


# ------------------------------------------------------------------------------------------------------------------
# A line that never ends: cut once one event passes the cap.


@pytest.mark.parametrize("protocol", ["chat", "anthropic", "gemini"])
def test_a_line_that_never_ends_after_the_first_token_ends_truncated(fake_vendor, rotator, protocol):
    proxy = warmed(rotator, fake_vendor, protocol, streaming=SLOW_WATCHDOGS, resume=RESUME_OFF)
    fake_vendor.script(Fault.endless_line(deltas=DELTAS, size=ENDLESS))

    t0 = time.monotonic()
    seen = stream(protocol)
    elapsed = time.monotonic() - t0

    assert seen.text == PREFIX
    assert_truncated(protocol, seen)
    assert elapsed < MARGIN
    [req] = fake_vendor.wait_for(1)
    assert req.outcome == "client-gone" and sent_bytes(req) < ENDLESS // 2  # Rotator hung up, mid-line
    assert "grew past 8388608 bytes" in proxy.wait_log("repaired")


def test_a_line_that_never_ends_before_the_first_token_is_retried_on_the_next_key(fake_vendor, rotator):
    proxy = warmed(rotator, fake_vendor, "chat", streaming=SLOW_WATCHDOGS)
    fake_vendor.script(Fault.endless_line(deltas=0, size=ENDLESS), Fault.ok())

    t0 = time.monotonic()
    seen = stream("chat")
    elapsed = time.monotonic() - t0

    assert_one_clean_answer("chat", seen, served_by=1)
    assert elapsed < MARGIN
    first, _ = two_keys(fake_vendor, "chat")
    first.done.wait(5)
    assert first.outcome == "client-gone" and sent_bytes(first) < ENDLESS // 2
    assert_rotator_retried(proxy, "chat")


# ------------------------------------------------------------------------------------------------------------------
# A long stream: the client gets all of it; the saved flow keeps its head and tail and says what it left out.

LONG_TEXT = " ".join(f"w{i:05d}" + "x" * 1000 for i in range(4600))  # ~4.6 MB of text, ~5.8 MB of SSE


def test_a_long_stream_is_saved_with_its_head_and_tail_and_says_what_it_left_out(fake_vendor, rotator, tmp_path):
    path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("-w", str(path)))
    fake_vendor.script(Fault.ok(LONG_TEXT))

    seen = call("chat", make_client("chat"), stream=True)  # (with include_usage: the vendor's bytes as they are)

    assert seen.text == LONG_TEXT and seen.finish == "stop"  # the client got every byte
    [req] = fake_vendor.wait_for(1)
    sent = req.sent
    assert len(sent) > FLOW_BODY_HEAD + FLOW_BODY_TAIL
    proxy.wait_log(flow_line("chat"))
    proxy.proc.stop()

    [flow] = [f for f in read_flows(path) if f.request.pretty_host == PROVIDER_HOST["openai"]]
    saved = flow.response.content
    left_out = len(sent) - FLOW_BODY_HEAD - FLOW_BODY_TAIL
    assert saved.startswith(sent[:FLOW_BODY_HEAD]) and saved.endswith(sent[-FLOW_BODY_TAIL:])
    assert f"[rotator: {left_out} bytes left out here]".encode() in saved
    assert len(saved) < FLOW_BODY_HEAD + FLOW_BODY_TAIL + 100
    assert saved.endswith(b"data: [DONE]\n\n")  # the ending stays visible
    assert f"the first {FLOW_BODY_HEAD} and the last {FLOW_BODY_TAIL} of {len(sent)} bytes" in flow.comment
    assert flow.metadata["rotator"]["body"] == {"sent": len(sent), "left_out": left_out}
    assert not flow.marked  # nothing went wrong


# ------------------------------------------------------------------------------------------------------------------
# A kept-alive connection the vendor closes as it is reused costs no retry and no key.


@pytest.mark.parametrize("protocol", ["chat", "anthropic"])
def test_a_connection_the_vendor_closes_as_it_is_reused_costs_no_retry(fake_vendor, rotator, protocol):
    proxy = warmed(rotator, fake_vendor, protocol)
    fake_vendor.script(Fault.ok(), Fault.hang_up(), Fault.ok())

    assert_one_clean_answer(protocol, stream(protocol), served_by=0)
    proxy.wait_log(flow_line(protocol))
    proxy = rotator()  # this test's log from here on
    seen = stream(protocol)

    assert_one_clean_answer(protocol, seen, served_by=2)
    first, hung_up, answered = fake_vendor.wait_for(3)
    assert hung_up.outcome == "hung-up" and hung_up.peer == first.peer  # the kept-alive connection, reused
    assert answered.peer != first.peer and answered.credential == hung_up.credential  # a new one, the same key
    assert_rotator_retried(proxy, protocol, retries=0)
