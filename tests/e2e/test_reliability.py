"""Rotator's reliability behaviour as a user sees it: the official SDKs (built with no arguments, configured only by
the environment the `rotator` fixture applies) through a real `mitmdump -s addons/rotator.py` to the fault-injecting
fake vendor, for each protocol.

Timeouts are configured small (about a second) and timing bounds are loose: the machine may be busy. Tests that
share a streaming config share one proxy process per xdist worker.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import warnings

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors

from tests.support.clients import FINISH, MODELS, PROMPT, PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.harness import CLIENT_KEYS, HANDOFF_ARGS
from tests.support.reliability import (
    ANSWER_ID,
    DELTAS,
    FAMILY,
    FAST,
    FIRST_TOKEN_TIMEOUT,
    IDLE_TIMEOUT,
    MARGIN,
    PREFIX,
    PROVIDER_HOST,
    RESUME_OFF,
    STALL,
    UNHURRIED,
    Seen,
    assert_one_clean_answer,
    assert_rotator_retried,
    assert_truncated,
    flow_line,
    pool,
    stream,
    two_keys,
    warmed,
)
from tests.support.timing import QUIET

pytestmark = pytest.mark.e2e

# The truncation signal on the wire (what a saved flow's body holds).
WIRE_TRUNCATED = {
    "chat": rb'"finish_reason": ?"length"',
    "responses": rb'event: response\.incomplete\n.*"reason": ?"max_output_tokens"',
    "anthropic": rb'"stop_reason": ?"max_tokens"',
    "gemini": rb'"finishReason": ?"MAX_TOKENS"',
}
BAD_REQUEST = {
    "chat": openai.BadRequestError,
    "responses": openai.BadRequestError,
    "anthropic": anthropic.BadRequestError,
    "gemini": genai_errors.ClientError,
}
STREAM_ERROR = {
    "chat": openai.APIError,
    "responses": openai.APIError,
    "anthropic": anthropic.APIStatusError,
    "gemini": genai_errors.APIError,
}


# ------------------------------------------------------------------------------------------------------------------
# 1. A first-token stall on one key is retried on another; the client sees one clean answer.

FIRST_TOKEN_STALLS = {
    "before-headers": Fault.stall_before_headers(STALL),
    "after-headers": Fault.stall_after_headers(STALL),
    # 200, the headers and everything the vendor sends before the first text fragment, then silence (the fake
    # vendor's `deltas=0`, "before the first token"): chat's role chunk with empty content; Responses' created,
    # in_progress, output_item.added (a message with no content) and content_part.added (empty text); Anthropic's
    # message_start, content_block_start (empty text) and ping; nothing for Gemini.
    "after-preamble": Fault.stall_after(deltas=0, seconds=STALL),
}


@pytest.mark.parametrize("stall", list(FIRST_TOKEN_STALLS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_first_token_stall_is_retried_on_another_key(fake_vendor, rotator, protocol, stall):
    proxy = warmed(rotator, fake_vendor, protocol, streaming=FAST)
    fake_vendor.script(FIRST_TOKEN_STALLS[stall], Fault.ok())

    client = make_client(protocol)
    t0 = time.monotonic()
    seen = stream(protocol, client)
    elapsed = time.monotonic() - t0

    assert_one_clean_answer(protocol, seen, served_by=1)
    first, second = two_keys(fake_vendor, protocol)
    assert_rotator_retried(proxy, protocol)
    assert FIRST_TOKEN_TIMEOUT * 0.9 <= elapsed < FIRST_TOKEN_TIMEOUT + MARGIN
    # The stalled attempt was abandoned (its connection closed), not left running.
    first.done.wait(5)
    assert first.outcome == "client-gone"


# ------------------------------------------------------------------------------------------------------------------
# 2. 429 (with retry-after) and 500 are retried on another key; 400 is the client's own problem, returned at once.

RETRYABLE = {
    "429-retry-after": Fault.status(429, headers={"retry-after": "1"}),
    "500": Fault.status(500),
}


@pytest.mark.parametrize("status", list(RETRYABLE))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_transient_status_is_retried_on_another_key(fake_vendor, rotator, protocol, status):
    # A proxy of its own: on a shared one, earlier tests leave keys resting after a stall, which are passed over for
    # a ready key, even the one that just failed (so the retry would rightly wait for it instead).
    proxy = rotator(streaming=FAST, fresh=True)
    fake_vendor.script(RETRYABLE[status], Fault.ok())

    seen = stream(protocol)

    assert_one_clean_answer(protocol, seen, served_by=1)
    first, second = two_keys(fake_vendor, protocol)
    assert first.status == int(status[:3]) and second.status == 200
    assert_rotator_retried(proxy, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_request_is_returned_at_once(fake_vendor, rotator, protocol):
    rotator(streaming=UNHURRIED)
    fake_vendor.script(Fault.status(400), Fault.ok())

    with pytest.raises(BAD_REQUEST[protocol]) as raised:
        stream(protocol)

    assert "fake vendor: HTTP 400" in str(raised.value)
    time.sleep(QUIET)  # stays: absence. Room for a (wrong) retry to arrive
    [req] = fake_vendor.calls()
    assert req.status == 400 and req.credential in pool(protocol)


# ------------------------------------------------------------------------------------------------------------------
# 3. A stream cut or stalled mid-answer ends with the protocol's truncation signal, after the text sent so far.

MID_ANSWER = {
    "cut-clean": Fault.cut_after(deltas=DELTAS, how="clean"),
    "cut-reset": Fault.cut_after(deltas=DELTAS, how="reset"),
    "stall": Fault.stall_after(deltas=DELTAS, seconds=STALL),
}


@pytest.mark.parametrize("fault", list(MID_ANSWER))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cut_or_stalled_stream_ends_truncated(fake_vendor, rotator, protocol, fault):
    warmed(rotator, fake_vendor, protocol, streaming=FAST, resume=RESUME_OFF)
    fake_vendor.script(MID_ANSWER[fault])

    client = make_client(protocol)
    t0 = time.monotonic()
    seen = stream(protocol, client)
    elapsed = time.monotonic() - t0

    assert seen.text == PREFIX
    assert_truncated(protocol, seen)
    assert seen.ids == {ANSWER_ID[protocol].format(0)}
    [req] = fake_vendor.calls()  # after the first token there is nothing to retry
    if fault == "stall":
        assert IDLE_TIMEOUT * 0.9 <= elapsed < IDLE_TIMEOUT + MARGIN
        req.done.wait(5)
        assert req.outcome == "client-gone"  # the stalled upstream was closed
    else:
        req.done.wait(5)
        assert req.outcome == fault


TCP_HANDOFF = ("--set", "rotator_in_memory=false")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_loopback_tcp_hand_off_serves_and_repairs_the_same(fake_vendor, rotator, protocol):
    """`--set rotator_in_memory=false` (also what Rotator falls back to if mitmproxy stops opening server
    connections the way addons/handoff.py expects): engine and mitmproxy talk over loopback TCP, same behaviour."""
    warmed(rotator, fake_vendor, protocol, streaming=UNHURRIED, args=TCP_HANDOFF)
    assert stream(protocol, make_client(protocol)).text == TEXT
    fake_vendor.script(MID_ANSWER["cut-clean"])
    seen = stream(protocol, make_client(protocol))
    assert seen.text == PREFIX
    assert_truncated(protocol, seen)


@pytest.mark.skipif(bool(HANDOFF_ARGS), reason="this run hands off over TCP already: nothing to fall back from")
def test_a_mitmproxy_whose_internals_differ_gets_the_tcp_hand_off_and_one_warning(fake_vendor, rotator):
    proxy = rotator(streaming=UNHURRIED, fresh=True, script="tests/e2e/differing_mitmproxy.py")
    assert stream("chat", make_client("chat")).text == TEXT
    log = proxy.proc.log_text()  # (from the start: the warning comes before the proxy listens)
    assert log.count("rotator: in-memory hand-off off: mitmproxy ") == 1
    assert "(ConnectionHandler.server_event(self, event) holds _server_event_lock); using loopback TCP" in log
    fake_vendor.script(MID_ANSWER["cut-clean"])
    seen = stream("chat", make_client("chat"))
    assert seen.text == PREFIX
    assert_truncated("chat", seen)


def test_chat_stream_helper_raises_length_finish_reason_error_on_a_cut(fake_vendor, rotator):
    rotator(streaming=UNHURRIED)
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"))

    with pytest.raises(openai.LengthFinishReasonError) as raised:
        with make_client("chat").chat.completions.stream(
            model=MODELS["chat"], messages=[{"role": "user", "content": PROMPT}]
        ) as st:
            for _ in st:
                pass
            st.get_final_completion()
    assert raised.value.completion.choices[0].message.content == PREFIX


# ------------------------------------------------------------------------------------------------------------------
# 4. A cut in the middle of a tool call never reports a tool call. (Gemini sends a function call whole, in one
#    chunk: there is no middle to cut.)


@pytest.mark.parametrize("protocol", ["chat", "responses", "anthropic"])
def test_cut_mid_tool_call_never_reports_a_tool_call(fake_vendor, rotator, protocol):
    rotator(streaming=UNHURRIED, resume=RESUME_OFF)  # (with resume, the call is held until whole: tests/e2e/test_resume.py)
    fake_vendor.script(Fault.tool_call().cut_after(deltas=DELTAS, how="clean"))

    seen = stream(protocol, tools=True)

    assert seen.tool_fragments == DELTAS  # the vendor did cut in the middle of the arguments
    assert_truncated(protocol, seen)
    if protocol == "chat":
        assert seen.finishes == ["length"]  # never "tool_calls"
    elif protocol == "responses":
        assert seen.finish == "incomplete" and "response.completed" not in seen.types
        assert "response.function_call_arguments.done" not in seen.types
        assert [item.status for item in seen.final.output if item.type == "function_call"] == ["incomplete"]
    else:
        assert seen.finish == "max_tokens"  # not "tool_use"


# ------------------------------------------------------------------------------------------------------------------
# 5. A client that goes away stops the upstream.


def read_one_chunk_and_close(protocol: str) -> float:
    """Start a stream, read until the first text arrives, close; return when it was closed (time.time())."""
    client = make_client(protocol)
    messages = [{"role": "user", "content": PROMPT}]
    if protocol == "chat":
        st = client.chat.completions.create(model=MODELS["chat"], messages=messages, stream=True)
        for chunk in st:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        st.close()
    elif protocol == "responses":
        st = client.responses.create(model=MODELS["responses"], input=PROMPT, stream=True)
        for event in st:
            if event.type == "response.output_text.delta":
                break
        st.close()
    elif protocol == "anthropic":
        with client.messages.stream(model=MODELS["anthropic"], max_tokens=256, messages=messages) as st:
            for event in st:
                if event.type == "content_block_delta":
                    break
    else:
        chunks = client.models.generate_content_stream(model=MODELS["gemini"], contents=PROMPT)
        next(chunks)
        chunks.close()
        client.close()  # google-genai's generator does not close its HTTP response; closing the client does
    return time.time()


@pytest.mark.parametrize("handoff", [(), TCP_HANDOFF], ids=["in-memory", "tcp"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_closed_client_stops_the_upstream(fake_vendor, rotator, protocol, handoff):
    # After its first delta the vendor waits a minute, within every timeout of the proxy's: only the client's close
    # can end the upstream before then.
    rotator(streaming={**FAST, "idle_timeout": 120}, args=handoff)
    fake_vendor.script(Fault.stall_after(deltas=1, seconds=60))

    closed_at = read_one_chunk_and_close(protocol)

    [req] = fake_vendor.wait_for(1, timeout=MARGIN + 10)  # done: the vendor's answer ended
    assert req.outcome == "client-gone"
    assert req.ended_at - closed_at < MARGIN  # (not the minute)


# ------------------------------------------------------------------------------------------------------------------
# 6. Forced upstream streaming: a non-stream request survives a first-token stall.

FORCED = {name: {"force_upstream_stream": True} for name in ("openai", "anthropic", "gemini")}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_forced_upstream_stream_survives_a_first_token_stall(fake_vendor, rotator, protocol):
    proxy = warmed(rotator, fake_vendor, protocol, streamed=False, streaming=FAST, providers=FORCED)
    fake_vendor.script(Fault.stall_after_headers(STALL), Fault.ok())

    client = make_client(protocol)
    t0 = time.monotonic()
    result = call(protocol, client, stream=False)
    elapsed = time.monotonic() - t0

    assert result.text == TEXT
    assert result.finish == FINISH[protocol]["text"]
    first, second = two_keys(fake_vendor, protocol)
    assert first.stream and second.stream  # the vendor was asked for streams
    assert_rotator_retried(proxy, protocol)
    assert FIRST_TOKEN_TIMEOUT * 0.9 <= elapsed < FIRST_TOKEN_TIMEOUT + MARGIN


# ------------------------------------------------------------------------------------------------------------------
# 7. The repair is visible: in a saved flow (comment, mark, metadata) and as one log line per retry/repair.


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_retry_and_repair_are_recorded_on_the_saved_flow_and_logged(fake_vendor, rotator, tmp_path, protocol):
    path = tmp_path / "flows.mitm"
    proxy = rotator(streaming=FAST, resume=RESUME_OFF, fresh=True, args=("-w", str(path)))
    fake_vendor.script(Fault.stall_before_headers(STALL), Fault.cut_after(deltas=DELTAS, how="reset"))

    seen = stream(protocol)
    assert seen.text == PREFIX
    assert_truncated(protocol, seen)
    first, second = two_keys(fake_vendor, protocol)
    provider = FAMILY[protocol]
    log = proxy.wait_log(flow_line(protocol))  # listed when the flow ended: after Rotator annotated it
    proxy.proc.stop()

    with warnings.catch_warnings():  # mitmproxy's flow filters use pyparsing's deprecated names
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy import io as mitmio
    with path.open("rb") as f:
        flows = list(mitmio.FlowReader(f).stream())
    [flow] = [f for f in flows if f.request.pretty_host == PROVIDER_HOST[provider]]
    meta = flow.metadata["rotator"]
    kinds = [e["kind"] for e in meta["events"]]
    assert kinds == ["retry", "repaired"], meta["events"]
    assert "first-token timeout" in meta["events"][0]["detail"]
    assert meta["provider"] == provider
    assert flow.comment.startswith("retried 1× (first-token timeout), repaired (upstream reset"), flow.comment
    assert flow.marked == ":adhesive_bandage:"
    # The saved body is what the client received: the text so far and the truncation signal.
    saved = flow.response.content
    assert all(json.dumps(piece).encode() in saved for piece in split_text(TEXT)[:DELTAS]), saved
    assert re.search(WIRE_TRUNCATED[protocol], saved), saved
    assert not any(key.encode() in path.read_bytes() for key in pool(protocol))  # pooled keys stay out

    # One log line per retry and per repair, naming the provider and the flow.
    tag = f"rotator: {provider} {flow.id[:8]}: "
    lines = [line for line in log.splitlines() if tag in line]
    assert sum(f"{tag}retry:" in line for line in lines) == 1, lines
    assert sum(f"{tag}repaired:" in line for line in lines) == 1, lines


# ------------------------------------------------------------------------------------------------------------------
# 8. on_truncation: error -> the SDK raises its stream error for a cut stream.


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_on_truncation_error_makes_the_sdk_raise(fake_vendor, rotator, protocol):
    rotator(streaming={**UNHURRIED, "on_truncation": "error"}, resume=RESUME_OFF)
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="clean"))

    seen = Seen()
    with pytest.raises(STREAM_ERROR[protocol]):
        stream(protocol, seen=seen)

    assert seen.text == PREFIX
    assert seen.finish in (None, "in_progress")  # no truncation ending was reported as a normal finish
    [req] = fake_vendor.calls()
    req.done.wait(5)
    assert req.outcome == "cut-clean"


# ------------------------------------------------------------------------------------------------------------------
# 9. Heartbeats keep a waiting streaming client alive, in a form its SDK ignores; never on Gemini.

HEARTBEAT_CONFIG = {"heartbeat_interval": 0.3, "first_token_timeout": 30}
HEARTBEAT_STALL = 1.2
HEARTBEAT = {
    "chat": b": keepalive\n",
    "responses": b": keepalive\n",
    "anthropic": b'event: ping\ndata: {"type": "ping"}\n\n',
    "gemini": None,
}
WIRE = {
    "chat": (
        "https://api.openai.com/v1/chat/completions",
        {"authorization": f"Bearer {CLIENT_KEYS['OPENAI_API_KEY']}"},
        # (with include_usage the vendor's bytes come through as they are: without it, see tests/e2e/test_usage.py)
        {"model": MODELS["chat"], "messages": [{"role": "user", "content": PROMPT}], "stream": True,
         "stream_options": {"include_usage": True}},
    ),
    "responses": (
        "https://api.openai.com/v1/responses",
        {"authorization": f"Bearer {CLIENT_KEYS['OPENAI_API_KEY']}"},
        {"model": MODELS["responses"], "input": PROMPT, "stream": True},
    ),
    "anthropic": (
        "https://api.anthropic.com/v1/messages",
        {"x-api-key": CLIENT_KEYS["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"},
        {
            "model": MODELS["anthropic"],
            "max_tokens": 256,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": True,
        },
    ),
    "gemini": (
        f"https://generativelanguage.googleapis.com/v1beta/models/{MODELS['gemini']}:streamGenerateContent?alt=sse",
        {"x-goog-api-key": CLIENT_KEYS["GEMINI_API_KEY"]},
        {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
    ),
}


def raw_stream(proxy, protocol: str) -> list[tuple[float, bytes]]:
    """The bytes a client receives through the proxy, as they arrive: (time.time(), chunk)."""
    url, headers, body = WIRE[protocol]
    verify = ssl.create_default_context(cafile=str(proxy.ca_cert))
    with httpx.Client(proxy=proxy.url, verify=verify, timeout=30, trust_env=False) as client:
        with client.stream("POST", url, headers=headers, json=body) as resp:
            assert resp.status_code == 200, resp.read()
            return [(time.time(), chunk) for chunk in resp.iter_raw()]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_heartbeats_while_waiting_for_the_first_token(fake_vendor, rotator, protocol):
    proxy = rotator(streaming=HEARTBEAT_CONFIG)
    fake_vendor.script(Fault.stall_before_headers(HEARTBEAT_STALL), Fault.stall_before_headers(HEARTBEAT_STALL))

    arrivals = raw_stream(proxy, protocol)
    raw = b"".join(chunk for _, chunk in arrivals)
    [req] = fake_vendor.calls()
    beat = HEARTBEAT[protocol]
    if beat is None:
        # Gemini's SDK raises on any line that is not `data: {json}`: the client gets the vendor's bytes only.
        assert raw == req.sent
        assert not re.search(rb"(^|\n):", raw) and b"keepalive" not in raw and b"ping" not in raw
    else:
        assert raw.startswith(beat)
        assert raw.count(beat) >= 2  # ~every 0.3 s of the 1.2 s stall
        assert arrivals[0][0] < req.headers_sent_at  # the client heard from the proxy before the vendor answered
        assert raw.replace(beat, b"") == req.sent  # and then exactly the vendor's answer

    # The SDK reads the same kind of stream as one normal answer.
    seen = stream(protocol)
    assert_one_clean_answer(protocol, seen, served_by=1)
    assert len(fake_vendor.calls()) == 2
