"""The fake vendor speaks each protocol well enough for the official SDKs (no proxy: SDKs pointed straight at it),
and its faults look to those SDKs the way the real failures do."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from tests.support.clients import FINISH, MODELS, PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT, TOOL_ARGUMENTS, TOOL_NAME, FakeVendor, Fault
from tests.support.harness import REPO, dies_with_test_run, free_port
from tests.support.timing import MARGIN

BOTH = [pytest.param(False, id="whole"), pytest.param(True, id="stream")]
WIRE_ARGS = {
    "chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    "responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}),
    "anthropic": ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": []}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [{"text": "hi"}]}]}),
}


def client(vendor: FakeVendor, protocol: str, timeout: float = 10.0):
    """An SDK client aimed straight at the fake vendor, with the SDK's own retries off."""
    if protocol == "gemini":
        return make_client(protocol, base_url=vendor.url, http_options=gtypes.HttpOptions(timeout=int(timeout * 1000)))
    return make_client(protocol, base_url=vendor.url, max_retries=0, timeout=timeout)


def post(vendor: FakeVendor, protocol: str, stream: bool = False, **kwargs) -> httpx.Response:
    path, body = WIRE_ARGS[protocol]
    if stream:
        if protocol == "gemini":
            path = path.replace(":generateContent", ":streamGenerateContent?alt=sse")
        else:
            body = {**body, "stream": True}
    return httpx.post(vendor.url + path, json=body, headers={"authorization": "Bearer k"}, **kwargs)


# --- every protocol, as its SDK sees it


@pytest.mark.parametrize("stream", BOTH)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_text_answer(fake_vendor, protocol, stream):
    result = call(protocol, client(fake_vendor, protocol), stream)

    assert result.text == TEXT
    assert result.finish == FINISH[protocol]["text"]
    assert (result.input_tokens, result.output_tokens) == (12, 10)
    if stream:
        assert len(result.arrivals) == 10  # the text came in several deltas
    [req] = fake_vendor.wait_for(1)  # the record is complete once the vendor has finished answering
    assert (req.protocol, req.stream, req.model, req.outcome) == (protocol, stream, MODELS[protocol], "complete")
    assert req.credential == {"chat": "sk-test", "responses": "sk-test", "anthropic": "sk-ant-test"}.get(protocol, "g-test")


@pytest.mark.parametrize("stream", BOTH)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tool_call(fake_vendor, protocol, stream):
    fake_vendor.script(Fault.tool_call())

    result = call(protocol, client(fake_vendor, protocol), stream, tools=True)

    assert result.tool_calls == [(TOOL_NAME, TOOL_ARGUMENTS)]
    assert result.finish == FINISH[protocol]["tool"]
    if protocol != "gemini":  # Gemini has no call ids on the wire here
        assert result.tool_call_ids[0].endswith(f"fake{fake_vendor.requests[0].index}")
    if stream and protocol != "gemini":  # Gemini sends a call whole; the others in argument fragments
        assert len(result.arrivals) == 4
    assert fake_vendor.requests[0].body is not None


def test_chat_stream_helper_accumulates_tool_call_once(fake_vendor):
    fake_vendor.script(Fault.tool_call(text="Let me check."))
    tool = {"type": "function", "function": {"name": TOOL_NAME, "parameters": {"type": "object"}}}
    with client(fake_vendor, "chat").chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], tools=[tool]
    ) as stream:
        completion = stream.get_final_completion()

    message = completion.choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls[0].id == "call_fake0"  # id sent once: the helper concatenates repeats
    assert json.loads(message.tool_calls[0].function.arguments) == TOOL_ARGUMENTS
    assert completion.choices[0].finish_reason == "tool_calls"


def test_responses_stream_helper_sees_whole_lifecycle(fake_vendor):
    fake_vendor.script(Fault.tool_call(text="Let me check."))
    with client(fake_vendor, "responses").responses.stream(model="gpt-4o-mini", input="x") as stream:
        sequence = [event.sequence_number for event in stream]
        response = stream.get_final_response()

    assert sequence == list(range(len(sequence)))
    assert response.output_text == "Let me check."
    assert [item.type for item in response.output] == ["message", "function_call"]
    assert response.usage.total_tokens == 12 + 3 + 4  # 3 text deltas, 4 argument fragments


def test_side_endpoints(fake_vendor):
    oa = client(fake_vendor, "chat")
    assert "gpt-4o-mini" in [m.id for m in oa.models.list()]
    an = client(fake_vendor, "anthropic")
    assert an.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}]).input_tokens == 12
    assert "claude-haiku-4-5" in [m.id for m in an.models.list()]
    ge = client(fake_vendor, "gemini")
    assert ge.models.count_tokens(model="gemini-2.5-flash", contents="x").total_tokens == 12
    assert "models/gemini-2.5-flash" in [m.name for m in ge.models.list()]

    protocols = [r.protocol for r in fake_vendor.requests]
    assert protocols == ["openai-models", "anthropic-count_tokens", "anthropic-models", "gemini-count_tokens", "gemini-models"]


# --- the wire itself


def test_sse_framing_per_protocol(fake_vendor):
    for protocol in PROTOCOLS:
        body = post(fake_vendor, protocol, stream=True).content
        assert body.count(b"\r\n\r\n" if protocol == "gemini" else b"\n\n") == len(fake_vendor.requests[-1].events)
        has_event_lines = protocol in ("responses", "anthropic")
        assert body.startswith(b"event: ") == has_event_lines
        if protocol == "gemini":
            assert b"\n\n" not in body.replace(b"\r\n", b"")
    assert post(fake_vendor, "chat", stream=True).text.endswith("data: [DONE]\n\n")


def test_gemini_stream_without_alt_sse_is_a_json_array(fake_vendor):
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    response = httpx.post(fake_vendor.url + path, json={}, headers={"x-goog-api-key": "g"})

    chunks = json.loads(response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == TEXT
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_credentials_from_every_place(fake_vendor):
    url = fake_vendor.url + "/v1beta/models/gemini-2.5-flash:generateContent"
    httpx.post(url + "?key=q1", json={})
    httpx.post(url, json={}, headers={"x-goog-api-key": "g1"})
    httpx.post(fake_vendor.url + "/v1/messages", json={"max_tokens": 1}, headers={"x-api-key": "a1"})
    httpx.post(fake_vendor.url + "/v1/chat/completions", json={}, headers={"Authorization": "Bearer b1"})

    assert [(r.credential, r.credential_source) for r in fake_vendor.requests] == [
        ("q1", "query"),
        ("g1", "x-goog-api-key"),
        ("a1", "x-api-key"),
        ("b1", "authorization"),
    ]
    assert fake_vendor.keys() == ["q1", "g1", "a1", "b1"]


def test_keep_alive_reuses_the_connection(fake_vendor):
    with httpx.Client() as http:
        for stream in (True, False, True):
            path, body = WIRE_ARGS["chat"]
            http.post(fake_vendor.url + path, json={**body, "stream": stream}).raise_for_status()
    peers = {r.peer for r in fake_vendor.requests}
    assert len(peers) == 1 and len(fake_vendor.requests) == 3


def test_a_request_sent_before_a_reset_is_not_recorded_after_it(fake_vendor):
    """A proxy of the previous test may have sent a request whose body the fake reads only after the next test's
    reset: it is dropped, not recorded for the next test. A kept-alive connection that was idle at the reset serves
    the next test's requests as before."""
    path, body = WIRE_ARGS["chat"]
    with httpx.Client() as http:
        http.post(fake_vendor.url + path, json=body).raise_for_status()  # (its connection now idle, kept alive)
        raw = json.dumps(body).encode()
        with socket.create_connection(("127.0.0.1", fake_vendor.port), timeout=10) as late:
            late.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-late\r\nContent-Type: "
                         b"application/json\r\nContent-Length: %d\r\n\r\n" % (path.encode(), len(raw)) + raw[:5])
            time.sleep(0.2)  # (the fake has read the head)
            fake_vendor.reset()
            late.sendall(raw[5:])
            try:
                answered = late.recv(65536)
            except ConnectionResetError:
                answered = b""
            assert answered == b""  # dropped, not answered
        http.post(fake_vendor.url + path, json=body).raise_for_status()
    [after] = fake_vendor.requests  # the next test's own, on the connection that was idle
    assert after.credential != "sk-late"


def test_unknown_path_is_404(fake_vendor):
    response = httpx.post(fake_vendor.url + "/v2/whatever", json={})
    assert response.status_code == 404
    assert "error" in response.json()


# --- scripting


def test_queue_then_key_rules(fake_vendor):
    fake_vendor.script(Fault.status(500), Fault.ok(text="second"))
    fake_vendor.script(Fault.status(401), key="bad")
    fake_vendor.always(Fault.status(403), key="banned")

    def ask(key):
        path, body = WIRE_ARGS["chat"]
        return httpx.post(fake_vendor.url + path, json=body, headers={"authorization": f"Bearer {key}"})

    assert ask("bad").status_code == 401  # the key's own queue first
    assert ask("bad").status_code == 500  # then the shared queue
    assert ask("banned").status_code == 403
    assert ask("banned").status_code == 403  # a rule is not consumed
    assert ask("any").json()["choices"][0]["message"]["content"] == "second"
    assert ask("any").json()["choices"][0]["message"]["content"] == TEXT
    assert fake_vendor.pending == 0
    # The records are complete once the vendor has finished answering (the client may read the body first).
    assert [r.outcome for r in fake_vendor.wait_for(6)] == ["status"] * 4 + ["complete"] * 2


def test_status_with_headers_and_vendor_shaped_bodies(fake_vendor):
    for protocol in PROTOCOLS:
        fake_vendor.script(Fault.status(429, headers={"retry-after": "7"}))
        response = post(fake_vendor, protocol)
        assert response.status_code == 429 and response.headers["retry-after"] == "7"
        body = response.json()
        if protocol == "anthropic":
            assert body["error"]["type"] == "rate_limit_error"
        elif protocol == "gemini":
            assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
        else:
            assert body["error"]["code"] == "rate_limit_exceeded"
    fake_vendor.script(Fault.status(503, body="upstream busy"))
    assert post(fake_vendor, "chat").text == "upstream busy"


@pytest.mark.parametrize(
    "protocol, error",
    [
        ("chat", openai.RateLimitError),
        ("responses", openai.RateLimitError),
        ("anthropic", anthropic.RateLimitError),
        ("gemini", genai_errors.ClientError),
    ],
)
def test_sdk_sees_http_429(fake_vendor, protocol, error):
    fake_vendor.script(Fault.status(429, headers={"retry-after": "1"}))
    with pytest.raises(error):
        call(protocol, client(fake_vendor, protocol), stream=True)


# --- stream faults, as the SDKs see them


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_clean_cut_is_a_silent_truncation(fake_vendor, protocol):
    fake_vendor.script(Fault.cut_after(deltas=3))

    result = call(protocol, client(fake_vendor, protocol), stream=True)

    assert result.text == "Hello from the"
    assert result.finish is None  # no exception, no finish reason: the SDK cannot tell
    assert fake_vendor.wait_for(1)[0].outcome == "cut-clean"


def test_clean_cut_breaks_only_the_responses_helper(fake_vendor):
    fake_vendor.script(Fault.cut_after(deltas=3))
    with pytest.raises(RuntimeError, match="response.completed"):
        with client(fake_vendor, "responses").responses.stream(model="gpt-4o-mini", input="x") as stream:
            stream.get_final_response()


@pytest.mark.parametrize("how", ["eof", "reset"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_broken_connection_raises(fake_vendor, protocol, how):
    fake_vendor.script(Fault.cut_after(deltas=2, how=how))

    # openai wraps the transport error in APIConnectionError; anthropic's stream helper and google-genai let
    # the raw httpx2 / httpx error (RemoteProtocolError, ReadError) through.
    with pytest.raises(Exception) as caught:
        call(protocol, client(fake_vendor, protocol), stream=True)

    expected = {"chat": "APIConnectionError", "responses": "APIConnectionError"}.get(protocol)
    names = {"eof": "RemoteProtocolError", "reset": "ReadError"}
    assert type(caught.value).__name__ == (expected or names[how])
    assert fake_vendor.wait_for(1)[0].outcome == f"cut-{how}"


@pytest.mark.parametrize(
    "protocol, error",
    [
        ("chat", openai.APIError),
        ("responses", openai.APIError),
        ("anthropic", anthropic.APIStatusError),
        ("gemini", genai_errors.ServerError),
    ],
)
def test_in_stream_error_event_raises(fake_vendor, protocol, error):
    fake_vendor.script(Fault.error_after(deltas=2))
    with pytest.raises(error):
        call(protocol, client(fake_vendor, protocol), stream=True)
    assert fake_vendor.wait_for(1)[0].outcome == "error-event"


def test_stall_after_headers_then_carry_on(fake_vendor):
    fake_vendor.script(Fault.stall_after_headers(1.0))
    result = call("anthropic", client(fake_vendor, "anthropic"), stream=True)

    req = fake_vendor.requests[0]
    assert result.text == TEXT
    assert req.first_event_at - req.headers_sent_at >= 1.0
    assert req.headers_sent_at - req.received_at < 1.0  # the headers went before the stall, not after it


def test_stall_before_headers(fake_vendor):
    fake_vendor.script(Fault.stall_before_headers(0.3))
    result = call("chat", client(fake_vendor, "chat"), stream=False)
    req = fake_vendor.requests[0]
    assert result.text == TEXT
    assert req.headers_sent_at - req.received_at >= 0.3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stall_past_the_client_timeout(fake_vendor, protocol):
    fake_vendor.script(Fault.stall_after(deltas=1, seconds=0.5 + 2 * MARGIN))
    start = time.time()
    with pytest.raises(Exception) as caught:
        call(protocol, client(fake_vendor, protocol, timeout=0.5), stream=True)
    assert "Timeout" in type(caught.value).__name__  # APITimeoutError, or a raw httpx(2).ReadTimeout
    [req] = fake_vendor.wait_for(1, timeout=0.5 + MARGIN)
    assert req.outcome == "client-gone"
    assert req.ended_at - start < 0.5 + MARGIN  # the vendor noticed the client leaving mid-stall, not at its end


def test_stall_after_resumes(fake_vendor):
    fake_vendor.script(Fault.stall_after(deltas=2, seconds=1.0))
    result = call("gemini", client(fake_vendor, "gemini"), stream=True)

    assert result.text == TEXT and result.finish == "STOP"
    # The vendor's own send times: the stall after the second delta, none as long elsewhere. (The client's arrival
    # times carry its own scheduling delays: on a busy machine a late first read shortens the gap it sees.)
    sent = [t for t, _ in fake_vendor.requests[0].events]
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert gaps[1] >= 0.99 and max(gaps[:1] + gaps[2:]) < 0.99
    assert result.arrivals[2][0] - sent[1] >= 0.99  # and the third delta reached the client only after it


@pytest.mark.alone  # a latency bound: the wall clock is the thing under test
def test_slow_events_are_flushed_one_by_one_and_stamped(fake_vendor):
    fake_vendor.script(Fault.slow(0.1))
    result = call("chat", client(fake_vendor, "chat"), stream=True)

    req = fake_vendor.requests[0]
    stamps = [json.loads(data[len(b"data: ") :])["x_sent_at"] for _, data in req.events if b"x_sent_at" in data]
    assert len(stamps) == len(req.events) - 1  # all but [DONE]
    assert all(b - a >= 0.09 for a, b in zip(stamps, stamps[1:]))
    # each piece of text reached the SDK soon after it was sent, not all at the end
    content_events = [t for t, data in req.events if b'"content":"' in data and b'"content":""' not in data]
    lags = [arrived - sent for (arrived, _), sent in zip(result.arrivals, content_events)]
    assert max(lags) < 0.08


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_always_stream_answers_a_whole_request_with_sse(fake_vendor, protocol):
    fake_vendor.script(Fault.always_stream())
    response = post(fake_vendor, protocol)

    assert response.headers["content-type"].startswith("text/event-stream")
    assert fake_vendor.requests[0].stream
    if protocol == "chat":
        assert b'"usage":{' in response.content  # the usage chunk, as if include_usage had been asked for
    # and the SDKs, expecting JSON, trip over it (openai/anthropic return the raw text as the "object")
    fake_vendor.script(Fault.always_stream())
    with pytest.raises((AttributeError, ValueError)):
        call(protocol, client(fake_vendor, protocol), stream=False)


def test_non_stream_faults_act_halfway_through_the_body(fake_vendor):
    fake_vendor.script(Fault.cut_after(1))
    with pytest.raises(openai.APIConnectionError):
        call("chat", client(fake_vendor, "chat"), stream=False)
    fake_vendor.script(Fault.stall_after(1, 0.2))
    assert call("chat", client(fake_vendor, "chat"), stream=False).text == TEXT
    assert [r.outcome for r in fake_vendor.wait_for(2)] == ["cut-eof", "complete"]


def test_reset_drops_answers_in_progress(fake_vendor):
    fake_vendor.script(Fault.stall_after_headers(30))
    url, kwargs = _chat_stream_args(fake_vendor)
    with httpx.stream("POST", url, **kwargs) as response:
        fake_vendor.wait_for(1, done=False)  # (and the headers are in: the vendor is in its stall)
        fake_vendor.reset()
        with pytest.raises(httpx.HTTPError):
            response.read()
    assert fake_vendor.requests == [] and fake_vendor.pending == 0


def _chat_stream_args(vendor):
    path, body = WIRE_ARGS["chat"]
    return vendor.url + path, {"json": {**body, "stream": True}}


# --- standalone


def test_standalone_with_control_endpoints():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_vendor", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=dies_with_test_run(),
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{base}/_fake/script", json=[["status", 418], ["ok", {"text": "hi there"}]]).json()["queued"] == 2
        chat = {"model": "m", "messages": []}
        assert httpx.post(f"{base}/v1/chat/completions", json=chat).status_code == 418
        reply = httpx.post(f"{base}/v1/chat/completions", json=chat).json()
        assert reply["choices"][0]["message"]["content"] == "hi there"
        assert [r["status"] for r in httpx.get(f"{base}/_fake/requests").json()] == [418, 200]
    finally:
        proc.terminate()
        proc.wait(5)
