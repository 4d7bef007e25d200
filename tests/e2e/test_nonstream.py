"""Non-stream calls, protected by default: the official SDKs' non-stream calls through a real
`mitmdump -s addons/rotator.py` go upstream as streams (no config asks for it) and come back as the JSON answer the
vendor would have given without streaming, with the first-token deadline, the retries and the idle watchdog of a
stream. An upstream that refuses streams for a model is asked again without, and a provider that opts out gets a
deadline for the whole request.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import anthropic
import openai
import pytest
from google.genai import types as gtypes

from tests.support.clients import FINISH, MODELS, PROTOCOLS, TRUNCATED, call, make_client
from tests.support.fake_vendor import (
    TEXT,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    Ctx,
    Fault,
    anthropic_body,
    chat_body,
    gemini_body,
    responses_body,
)
from tests.support.reliability import (
    DELTAS,
    FAST,
    FIRST_TOKEN_TIMEOUT,
    IDLE_TIMEOUT,
    MARGIN,
    PREFIX,
    RESUME_OFF,
    STALL,
    UNHURRIED,
    assert_rotator_retried,
    flow_line,
    two_keys,
    warmed,
)

pytestmark = pytest.mark.e2e

VENDOR_BODY = {"chat": chat_body, "responses": responses_body, "anthropic": anthropic_body, "gemini": gemini_body}
NOT_FORCED = {name: {"force_upstream_stream": False} for name in ("openai", "anthropic", "gemini")}
REQUEST_TIMEOUT = 1.0
ANSWERS = {"text": Fault.ok(), "tool call": Fault.tool_call(text="Let me look that up.")}
GEMINI_SDK_ONLY = {"sdk_http_response", "automatic_function_calling_history"}  # the SDK's own, not the vendor's


def vendor_answer(protocol: str, req: Any) -> dict:
    """The JSON the fake vendor answers to the request `req` when it is not streamed."""
    return VENDOR_BODY[protocol](Ctx(req.index, req.model or "fake-model", int(req.received_at), req.body or {},
                                     req.fault))


def as_received(protocol: str, answer: Any) -> dict:
    """An SDK's answer object as the JSON it was made from."""
    if protocol == "gemini":
        return answer.model_dump(mode="json", exclude_none=True, exclude=GEMINI_SDK_ONLY)
    return answer.to_dict()


def as_the_sdk_reads(protocol: str, body: dict) -> dict:
    """A JSON answer as `as_received` gives it back once the protocol's SDK has read it."""
    if protocol != "gemini":
        return body
    response = gtypes.GenerateContentResponse._from_response(response=body, kwargs={})
    return response.model_dump(mode="json", exclude_none=True, exclude=GEMINI_SDK_ONLY)


def assert_the_vendors_answer(protocol: str, result: Any, req: Any) -> None:
    """The client's answer is, field for field, what the vendor answers the same request without streaming."""
    assert as_received(protocol, result.raw) == as_the_sdk_reads(protocol, vendor_answer(protocol, req))


# ------------------------------------------------------------------------------------------------------------------
# By default a non-stream call goes upstream as a stream, and the client gets the vendor's non-stream answer.


@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_non_stream_call_is_streamed_upstream_and_answered_as_the_vendor_would(fake_vendor, rotator, protocol,
                                                                                  answer):
    rotator()  # the default config: nothing asks for forced streaming
    fake_vendor.script(ANSWERS[answer])

    result = call(protocol, make_client(protocol), stream=False, tools=answer == "tool call")

    [req] = fake_vendor.wait_for(1)
    assert req.stream  # the vendor was asked for a stream ...
    if protocol == "chat":
        assert req.body["stream_options"] == {"include_usage": True}  # ... with its usage
    assert_the_vendors_answer(protocol, result, req)  # ... and the client got the non-stream answer
    if answer == "tool call":
        assert result.tool_calls == [(TOOL_NAME, TOOL_ARGUMENTS)]
        assert result.finish == FINISH[protocol]["tool"]
    else:
        assert (result.text, result.finish) == (TEXT, FINISH[protocol]["text"])
    assert result.input_tokens == 12 and result.output_tokens


# ------------------------------------------------------------------------------------------------------------------
# (a) A first key that stalls before any byte: the next key answers within first_token_timeout plus a second.

STALLS = {"before-headers": Fault.stall_before_headers(STALL), "after-headers": Fault.stall_after_headers(STALL)}


@pytest.mark.parametrize("stall", list(STALLS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stalled_first_key_is_answered_by_the_next(fake_vendor, rotator, protocol, stall):
    proxy = warmed(rotator, fake_vendor, protocol, streamed=False, streaming=FAST)
    fake_vendor.script(STALLS[stall], Fault.ok())

    client = make_client(protocol)
    t0 = time.monotonic()
    result = call(protocol, client, stream=False)
    elapsed = time.monotonic() - t0

    first, second = two_keys(fake_vendor, protocol)
    assert first.stream and second.stream
    assert FIRST_TOKEN_TIMEOUT * 0.9 <= elapsed < FIRST_TOKEN_TIMEOUT + MARGIN
    assert (result.text, result.finish) == (TEXT, FINISH[protocol]["text"])
    second.done.wait(5)
    assert_the_vendors_answer(protocol, result, second)  # (usage included)
    assert_rotator_retried(proxy, protocol)


# ------------------------------------------------------------------------------------------------------------------
# (b) Cut or stalled mid-answer: the protocol's truncated answer with the text so far, never a complete one.

MID_ANSWER = {
    "cut-clean": Fault.cut_after(deltas=DELTAS, how="clean"),
    "cut-reset": Fault.cut_after(deltas=DELTAS, how="reset"),
    "stall": Fault.stall_after(deltas=DELTAS, seconds=STALL),
}


@pytest.mark.parametrize("fault", list(MID_ANSWER))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_non_stream_answer_cut_mid_way_comes_back_truncated(fake_vendor, rotator, protocol, fault):
    proxy = warmed(rotator, fake_vendor, protocol, streamed=False, streaming=FAST, resume=RESUME_OFF)
    fake_vendor.script(MID_ANSWER[fault])

    t0 = time.monotonic()
    result = call(protocol, make_client(protocol), stream=False)
    elapsed = time.monotonic() - t0

    assert result.text == PREFIX
    assert result.finish == TRUNCATED[protocol]
    if protocol == "responses":
        assert result.raw.incomplete_details.reason == "max_output_tokens"
    [req] = fake_vendor.calls()  # after the first token there is nothing to retry
    if fault == "stall":
        assert IDLE_TIMEOUT * 0.9 <= elapsed < IDLE_TIMEOUT + MARGIN
    assert "repaired" in proxy.wait_log("repaired")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_tool_call_cut_mid_arguments_comes_back_truncated(fake_vendor, rotator, protocol):
    warmed(rotator, fake_vendor, protocol, streamed=False, streaming=UNHURRIED, resume=RESUME_OFF)
    # After the three text fragments and two of the four argument fragments (Gemini sends a call whole, in one
    # chunk: before it).
    fake_vendor.script(Fault.tool_call(text="Let me look.").cut_after(deltas=3 if protocol == "gemini" else 5))

    result = call(protocol, make_client(protocol), stream=False, tools=True)

    assert result.text == "Let me look."
    assert result.finish == TRUNCATED[protocol]
    assert result.tool_calls == []  # no agent runs half-written arguments


# ------------------------------------------------------------------------------------------------------------------
# (d) An upstream that refuses streams for a model: asked again without, and remembered for that model.


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_model_that_refuses_streams_is_asked_again_without_and_remembered(fake_vendor, rotator, protocol):
    proxy = rotator(streaming=UNHURRIED, fresh=True)  # (what it remembers must not leak into other tests)
    fake_vendor.always(Fault.refuse_stream(MODELS[protocol]))

    first = call(protocol, make_client(protocol), stream=False)
    refused, answered = fake_vendor.wait_for(2)
    second = call(protocol, make_client(protocol), stream=False)
    reqs = fake_vendor.wait_for(3)

    assert (refused.stream, refused.status) == (True, 400)
    assert (answered.stream, answered.status) == (False, 200)
    assert answered.credential == refused.credential  # a 400 says nothing against the key
    assert_the_vendors_answer(protocol, first, answered)
    assert len(reqs) == 3 and not reqs[2].stream and reqs[2].status == 200  # the next call goes as it is
    assert_the_vendors_answer(protocol, second, reqs[2])
    assert len([line for line in proxy.log.splitlines() if flow_line(protocol) in line]) == 2  # no SDK retry
    assert proxy.log.count("stream-refused") == 1


# ------------------------------------------------------------------------------------------------------------------
# (e) A provider that opts out is sent non-stream requests, and the whole request has a deadline
# (streaming.request_timeout): reached before any byte, the next key is tried; after, the answer is cut.

OPTED_OUT_STALLS = {"before-headers": Fault.stall_before_headers(STALL), "after-headers": Fault.stall_after_headers(STALL)}


@pytest.mark.parametrize("stall", list(OPTED_OUT_STALLS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_opted_out_request_past_its_deadline_before_any_byte_is_retried(fake_vendor, rotator, protocol, stall):
    config = {"streaming": {**FAST, "request_timeout": REQUEST_TIMEOUT}, "providers": NOT_FORCED}
    proxy = warmed(rotator, fake_vendor, protocol, streamed=False, **config)
    fake_vendor.script(OPTED_OUT_STALLS[stall], Fault.ok())

    t0 = time.monotonic()
    result = call(protocol, make_client(protocol), stream=False)
    elapsed = time.monotonic() - t0

    first, second = two_keys(fake_vendor, protocol)
    assert not first.stream and not second.stream
    assert REQUEST_TIMEOUT * 0.9 <= elapsed < REQUEST_TIMEOUT + MARGIN
    assert_the_vendors_answer(protocol, result, second)
    assert_rotator_retried(proxy, protocol)
    assert "request timeout" in proxy.log
    first.done.wait(5)
    assert first.outcome == "client-gone"  # the stalled attempt was abandoned


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_opted_out_answer_past_its_deadline_after_it_started_is_cut(fake_vendor, rotator, protocol):
    config = {"streaming": {**FAST, "request_timeout": REQUEST_TIMEOUT}, "providers": NOT_FORCED}
    proxy = warmed(rotator, fake_vendor, protocol, streamed=False, **config)
    fake_vendor.script(Fault.stall_after(deltas=DELTAS, seconds=STALL))  # (a JSON body: half of it, then silence)

    t0 = time.monotonic()
    with pytest.raises(ValueError):  # the SDK cannot read the half of a JSON body that came: never an answer
        call(protocol, make_client(protocol), stream=False)
    elapsed = time.monotonic() - t0

    assert REQUEST_TIMEOUT * 0.9 <= elapsed < REQUEST_TIMEOUT + MARGIN
    [req] = fake_vendor.wait_for(1)  # part of the answer went to the client: nothing to retry
    assert req.outcome == "client-gone"
    assert len(fake_vendor.calls()) == 1
    proxy.wait_log("cut: request timeout")


# ------------------------------------------------------------------------------------------------------------------
# A non-stream call is answered in its flow, with no loopback connection (rewrite/intake/whole.py): a client that
# gives up on it still stops its upstream call, as a hang-up of that connection did.


@pytest.mark.parametrize("protocol", ["chat", "anthropic"])
def test_a_client_that_gives_up_on_a_non_stream_call_stops_it_upstream(fake_vendor, rotator, protocol):
    # (Rotator itself would wait the stall out)
    proxy = warmed(rotator, fake_vendor, protocol, streamed=False, streaming={"first_token_timeout": STALL})
    fake_vendor.script(Fault.stall_before_headers(STALL))

    with pytest.raises((openai.APITimeoutError, anthropic.APITimeoutError)):
        call(protocol, make_client(protocol, timeout=2.0, max_retries=0), stream=False)

    [req] = fake_vendor.wait_for(1, done=False)
    assert req.done.wait(STALL / 2)  # Rotator hung up on the vendor soon after the client left ...
    assert req.outcome == "client-gone"
    assert len(fake_vendor.calls()) == 1  # ... and asked no one else
    assert "Traceback" not in proxy.log



def test_an_http2_clients_non_stream_call_is_answered_in_its_flow(fake_vendor, rotator):
    proxy = rotator()
    body = json.dumps({"model": MODELS["chat"], "messages": [{"role": "user", "content": "hi"}]})
    done = subprocess.run(["curl", "-sS", "--http2", "--proxy", proxy.url, "--cacert", str(proxy.ca_cert),
                           "-H", "authorization: Bearer sk-client-own", "-H", "content-type: application/json",
                           "-d", body, "-w", "\n%{http_version} %{http_code}",
                           "https://api.openai.com/v1/chat/completions"], capture_output=True, text=True, timeout=30)
    answer, _, version_status = done.stdout.rpartition("\n")

    assert version_status == "2 200", done.stdout + done.stderr
    assert json.loads(answer)["choices"][0]["message"]["content"] == TEXT
    [req] = fake_vendor.wait_for(1)
    assert req.stream and req.credential != "sk-client-own"  # forced upstream, on a pooled key
