"""Gemini CLI on Code Assist (protocols/logins/code_assist.py, rewrite/providers/code_assist.py): the envelope
opened for the engine and put back as it came, what its spent quota says (the model's, until its reset) and the
retry delay its client is given. The envelope as the SDK's types judge it is in tests/test_fidelity.py."""

from __future__ import annotations

import json

import pytest

from protocols.logins import code_assist as wire
from protocols.sse import SSEParser
from protocols.transcript import read_answer, read_request
from protocols.vendor_errors import ErrorKind
from protocols.windows import WindowStatus
from rewrite.config import parse
from rewrite.pool.logins import LoginBook
from rewrite.routing.router import Router
from tests.support import login_dialects

NOW = 1_800_000_000.0
ENVELOPE = {"model": "gemini-2.5-flash", "project": "fake-project-123", "user_prompt_id": "p-1",
            "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "session_id": "s-1"},
            "enabled_credit_types": ["GOOGLE_ONE_AI"]}
PROVIDER = Router(parse("")).provider_named("code_assist")


def quota_error(resets_in: int = 7200, message: str | None = None) -> bytes:
    body = login_dialects.code_assist_quota_error(resets_in, message)
    meta = body["error"]["details"][0]["metadata"]
    meta["quotaResetTimeStamp"] = f"{int(NOW + resets_in)}"
    return json.dumps(body).encode()


# --- the request's envelope


def test_only_the_generation_methods_are_served_each_in_the_protocol_inside():
    assert PROVIDER is not None and PROVIDER.login is not None
    login = PROVIDER.login
    assert login.generation("POST", "/v1internal:streamGenerateContent").name == "gemini"
    assert login.generation("POST", "/v1internal:generateContent").name == "gemini"
    assert login.generation("POST", "/v1internal:loadCodeAssist") is None
    assert login.forwards("POST", "/v1internal:countTokens") and not login.forwards("POST", "/v1internal:onboardUser")


def test_an_envelope_opens_into_the_gemini_call_it_stands_for():
    assert wire.opened("/v1internal:streamGenerateContent", ENVELOPE) == (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent", ENVELOPE["request"])
    assert wire.opened("/v1internal:generateContent", {**ENVELOPE, "model": ""}) is None
    assert wire.opened("/v1internal:generateContent", {"model": "m", "request": "x"}) is None


def test_a_rewritten_request_goes_back_in_the_envelope_it_came_in():
    inner = {**ENVELOPE["request"], "contents": [*ENVELOPE["request"]["contents"],
                                                {"role": "model", "parts": [{"text": "Hel"}]}]}

    sent = wire.enveloped(ENVELOPE, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", json.dumps(inner).encode())

    assert list(json.loads(sent)) == list(ENVELOPE)  # its members, in their order
    assert json.loads(sent) == {**ENVELOPE, "request": inner}
    assert wire.envelope_path("/v1internal:generateContent", "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                              inner) == "/v1internal:streamGenerateContent"


def test_another_target_gets_the_request_without_what_only_code_assist_reads():
    assert wire.foreign_body(ENVELOPE["request"]) == {"contents": ENVELOPE["request"]["contents"]}
    plain = {"contents": []}
    assert wire.foreign_body(plain) is plain


# --- the answer's envelope


def test_the_logins_events_are_read_inside_and_sent_on_as_they_came():
    came = (b'data: {"response": {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}, "traceId": "t"}\r\n\r\n'
            b'data: [{"error": {"code": 503}}]\r\n\r\n: keep-alive\r\n\r\n')
    answers = wire.CodeAssistAnswers()

    opened = answers.parser().feed(came)

    assert json.loads(opened[0].data) == {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}
    assert opened[1].data == '[{"error": {"code": 503}}]'
    assert answers.stream(b"".join(e.raw for e in opened)) == came


def test_what_rotator_writes_goes_in_a_new_envelope_and_errors_as_they_are():
    ending = b'data: {"candidates":[{"finishReason":"MAX_TOKENS"}]}\r\n\r\n'
    error = b'data: {"error":{"code":502,"message":"x"}}\n\n'

    assert wire.CodeAssistAnswers().stream(ending + error) == \
        b'data: {"response":{"candidates":[{"finishReason":"MAX_TOKENS"}]}}\r\n\r\n' + error
    assert wire.enveloped_answer(b'{"candidates":[]}') == b'{"response":{"candidates":[]}}'
    assert wire.enveloped_answer(b'{"response":{"candidates":[]},"traceId":"t"}') == \
        b'{"response":{"candidates":[]},"traceId":"t"}'
    assert wire.opened_answer(b'{"response":{"usageMetadata":{"promptTokenCount":3}}}') == \
        b'{"usageMetadata":{"promptTokenCount":3}}'


def test_events_split_anywhere_are_opened_the_same():
    came = b'data: {"response": {"candidates": []}, "traceId": "t"}\n\n' * 3
    answers = wire.CodeAssistAnswers()
    parser = answers.parser()
    opened = [e for i in range(len(came)) for e in parser.feed(came[i:i + 1])] + parser.close()
    assert [e.data for e in opened] == ['{"candidates":[]}'] * 3
    assert answers.stream(b"".join(e.raw for e in opened)) == came
    assert isinstance(parser, SSEParser)


# --- a spent quota


def test_quota_exhausted_is_the_models_quota_until_its_reset():
    assert PROVIDER is not None
    error = PROVIDER.errors("gemini").read(429, [], quota_error(), NOW)

    assert error.kind is ErrorKind.QUOTA and error.quota is not None
    assert (error.quota.window, error.quota.per_model, error.quota.id) == (7200, True, "QUOTA_EXHAUSTED")
    assert "gemini-2.5-flash" in error.quota.what
    [window] = PROVIDER.windows("gemini").read(429, [], quota_error(), NOW)
    assert (window.name, window.status, window.resets_at, window.model) == (
        "gemini-2.5-flash quota", WindowStatus.EXHAUSTED, NOW + 7200, "gemini-2.5-flash")


def test_a_short_rate_limit_is_no_spent_quota():
    body = json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
         "domain": "cloudcode-pa.googleapis.com"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}}).encode()
    assert PROVIDER is not None
    error = PROVIDER.errors("gemini").read(429, [], body, NOW)
    assert (error.kind, error.delay) == (ErrorKind.RATE_LIMITED, 2)
    assert PROVIDER.windows("gemini").read(429, [], body, NOW) == ()
    assert wire.bounded_delay(429, body) == body


@pytest.mark.parametrize("array", [False, True], ids=["answer", "stream"])
def test_the_client_gets_a_spent_quotas_delay_bounded_and_the_rest_as_it_came(array):
    came = quota_error(7200)
    if array:
        came = json.dumps([json.loads(came)]).encode()

    given = json.loads(wire.bounded_delay(429, came))

    expected = json.loads(came)
    first = expected[0] if array else expected
    first["error"]["details"][1]["retryDelay"] = "1s"
    assert given == expected
    assert wire.bounded_delay(200, came) == came


def capacity_error(delay: str) -> bytes:
    """The capacity answer Gemini CLI sleeps out whatever its reason: its message says "exhausted your capacity",
    with a RetryInfo and no ErrorInfo (as peers recorded it)."""
    return json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "You have exhausted your "
                                 "capacity on this model. Your quota will reset after 19h14m47s.", "details": [
                                     {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}
                      ).encode()


def test_a_capacity_answers_long_delay_is_bounded_too_and_a_short_one_kept():
    given = json.loads(wire.bounded_delay(429, capacity_error("69287s")))
    assert given["error"]["details"][0]["retryDelay"] == "1s"
    assert wire.bounded_delay(429, capacity_error("3.957525076s")) == capacity_error("3.957525076s")


def test_a_models_spent_window_leaves_the_login_for_that_model_only():
    book = LoginBook("code_assist", wall=lambda: NOW)
    state = book.login("ya29.token")
    assert PROVIDER is not None

    book.reported(state, PROVIDER.windows("gemini").read(429, [], quota_error(), NOW))

    assert state.exhausted_for("gemini-2.5-flash", NOW) is not None
    assert state.exhausted_for("gemini-2.5-pro", NOW) is None


def test_the_view_reads_the_call_inside_the_envelope():
    body = json.dumps(ENVELOPE).encode()
    request = read_request("gemini", "/v1internal:streamGenerateContent?alt=sse", body).request
    assert request is not None and (request.model, request.stream) == ("gemini-2.5-flash", True)
    assert [m.role for m in request.messages] == ["user"]
    came = (b'data: {"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},'
            b'"finishReason":"STOP"}]},"traceId":"t"}\r\n\r\n')
    answer = read_answer("gemini", 200, "text/event-stream", came)
    assert answer.answer is not None and [p.text for p in answer.answer.parts] == ["Hello"] and answer.complete
    whole = read_answer("gemini", 200, "application/json", came.removeprefix(b"data: ").rstrip())
    assert whole.answer is not None and [p.text for p in whole.answer.parts] == ["Hello"]
