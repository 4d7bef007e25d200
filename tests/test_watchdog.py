"""The watchdog's clocks, to the second: the first-token deadline, the idle one that replaces it at the first token,
the heartbeats every interval of silence, the waits a retry asks, and the resume deadline. The engine runs on
virtual time (tests/support/virtual_time.py) against a scripted upstream, with the timeouts users configure (a
first-token timeout of 40 s fires at exactly 40 s of loop time), in milliseconds of real time."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import protocols
from tests.support import samples
from tests.support.engine_harness import FakeResponder, Stream, Upstream, events_of, run, sse, stall_before_headers
from tests.support.engine_streams import TEXT, assert_truncated, content_prefix, first_token_index, kinds

pytestmark = pytest.mark.virtual_time

HEARTBEATING = ["openai_chat", "openai_responses", "anthropic_messages"]  # (Gemini's streams have no heartbeat)
NEVER = 3600.0  # seconds: a stall no deadline under test waits out


def paced(events: list[bytes], every: float, then: str = "end") -> httpx.Response:
    """A stream whose events come `every` seconds apart."""
    stream = Stream(events, then=then, stall=NEVER, pause=every)
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)


def timeline(out: FakeResponder, t0: float, protocol: str) -> list[tuple[float, str]]:
    """What the client was sent and when (seconds since t0): "beat", or "answer" for anything else."""
    beat = protocols.get(protocol).heartbeat
    return [(at - t0, "beat" if data == beat else "answer") for at, data in zip(out.at, out.record)]


def now() -> float:
    return asyncio.get_running_loop().time()


# ------------------------------------------------------------------------------------------------------------------
# Before the first token: the first-token deadline and the heartbeats


@pytest.mark.parametrize("protocol", HEARTBEATING)
async def test_a_first_token_that_never_comes_is_given_up_at_first_token_timeout_and_retried_at_once(protocol):
    preamble = events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]
    up = Upstream([lambda r: sse(preamble, then="stall", stall=NEVER), lambda r: sse(events_of(TEXT[protocol]))])
    t0 = now()
    out, job = await run(protocol, up, first_token_timeout=40, heartbeat_interval=15)
    assert [at - t0 for at in up.at] == [0, 40]  # the next key asked at the deadline, not a moment later
    assert timeline(out, t0, protocol)[:3] == [(15, "beat"), (30, "beat"), (40, "answer")]
    assert out.started_at == t0 + 15  # the status went with the first heartbeat
    assert job.ttft == 40
    assert kinds(job) == ["committed", "retry"] and job.notes[1]["seconds"] == 40


@pytest.mark.parametrize("protocol", ["openai_chat", "anthropic_messages"])
async def test_heartbeats_go_every_interval_of_silence_until_the_last_attempt_fails(protocol):
    up = Upstream([stall_before_headers(NEVER)])
    t0 = now()
    out, _ = await run(protocol, up, first_token_timeout=60, first_token_retries=1, heartbeat_interval=15)
    assert [at - t0 for at in up.at] == [0, 60]
    # 15, 30, 45; the deadline at 60 comes before the beat due then, and the next attempt's silence starts over
    assert timeline(out, t0, protocol) == [(15, "beat"), (30, "beat"), (45, "beat"), (60, "beat"), (75, "beat"),
                                           (90, "beat"), (105, "beat"), (120, "answer")]
    assert b"error" in out.record[-1] and out.finished  # the failure, in the stream the heartbeats committed


async def test_gemini_waits_for_its_first_token_in_silence():
    up = Upstream([lambda r: sse([], then="stall", stall=NEVER), lambda r: sse(events_of(samples.GEMINI_TEXT))])
    t0 = now()
    out, job = await run("gemini", up, first_token_timeout=40, heartbeat_interval=15)
    assert [at - t0 for at in up.at] == [0, 40]
    assert out.started_at == t0 + 40 and out.body == samples.GEMINI_TEXT


# ------------------------------------------------------------------------------------------------------------------
# After the first token: the idle deadline


@pytest.mark.parametrize("protocol", HEARTBEATING + ["gemini"])
async def test_after_the_first_token_only_the_idle_deadline_counts(protocol):
    """An answer longer than the first-token timeout, its events closer together than the idle one, is whole."""
    events = events_of(TEXT[protocol])
    every = 16 if protocol == "gemini" else 7  # (Gemini's answer is 3 events, the first one its first token)
    up = Upstream([lambda r: paced(events, every)])
    t0 = now()
    out, job = await run(protocol, up, first_token_timeout=30, idle_timeout=20, heartbeat_interval=15)
    first, last = every * first_token_index(protocol, TEXT[protocol]), every * (len(events) - 1)
    assert first < 30 < last
    sent = timeline(out, t0, protocol)
    assert [at for at, what in sent if what == "beat" and at < first] == list(range(15, first, 15) if
                                                                             protocol != "gemini" else [])
    answer = [at for at, what in sent if what == "answer"]
    assert answer[0] == first and answer[-1] == last
    assert out.body.endswith(events[-1]) and not {"retry", "repaired"} & set(kinds(job)) and len(up.seen) == 1


@pytest.mark.parametrize("idle, heartbeats", [(5, []), (40, [15, 30])])  # (heartbeats: seconds after the last byte)
@pytest.mark.parametrize("protocol", HEARTBEATING)
async def test_a_stall_after_the_first_token_ends_idle_timeout_after_the_last_byte(protocol, idle, heartbeats):
    prefix = content_prefix(protocol, TEXT[protocol], extra=2)
    up = Upstream([lambda r: paced(prefix, every=2, then="stall")])
    last = 2 * (len(prefix) - 1)  # when the last event came
    t0 = now()
    out, job = await run(protocol, up, first_token_timeout=30, idle_timeout=idle, heartbeat_interval=15)
    sent = timeline(out, t0, protocol)
    first = 2 * first_token_index(protocol, TEXT[protocol])
    assert [at - last for at, what in sent if what == "beat" and at > first] == heartbeats
    assert sent[-1] == (last + idle, "answer")  # the honest ending: idle_timeout after the last byte
    assert_truncated(protocol, out.record[-1])
    assert job.notes[-1]["cause"] == "idle timeout" and len(up.seen) == 1


# ------------------------------------------------------------------------------------------------------------------
# The waits a retry asks


@pytest.mark.parametrize("headers, wait", [({"retry-after": "7"}, 7), ({"retry-after-ms": "250"}, 0.25)])
async def test_a_single_key_is_asked_again_exactly_when_the_vendor_said(headers, wait):
    up = Upstream([lambda r: httpx.Response(429, json={}, headers=headers), lambda r: sse(events_of(samples.CHAT_TEXT))])
    t0 = now()
    out, _ = await run("openai_chat", up, keys=("only",), first_token_timeout=30)
    assert [at - t0 for at in up.at] == [0, wait] and out.status == 200


async def test_a_wait_longer_than_first_token_timeout_is_not_waited():
    up = Upstream([lambda r: httpx.Response(429, json={}, headers={"retry-after": "31"})])
    t0 = now()
    out, _ = await run("openai_chat", up, keys=("only",), first_token_timeout=30)
    assert out.status == 429 and now() == t0 and dict(out.headers)["retry-after"] == "31"


# ------------------------------------------------------------------------------------------------------------------
# The resume deadline


async def test_continuations_that_never_answer_end_the_answer_honestly_at_the_resume_deadline():
    """Cut at 0 s: the first continuation's first token is given up at 30 s, the next one's at the resume deadline
    (45 s), while it is still under way; the answer ends then, as it was cut."""
    prefix = content_prefix("openai_chat", TEXT["openai_chat"], extra=2)
    up = Upstream([lambda r: sse(prefix, then="reset"), stall_before_headers(NEVER)])
    t0 = now()
    out, job = await run("openai_chat", up, first_token_timeout=30, heartbeat_interval=20,
                         resume="{deadline: 45, max_attempts: 3}")
    assert [at - t0 for at in up.at] == [0, 0, 30]
    assert timeline(out, t0, "openai_chat")[-3:] == [(20, "beat"), (40, "beat"), (45, "answer")]
    assert_truncated("openai_chat", out.record[-1])
    assert [n["outcome"] for n in job.notes if n["kind"] == "resumed"] == [
        "failed (no first token by the resume deadline)"]
