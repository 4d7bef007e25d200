"""What a vendor error means, as each protocol's registration reads it (protocols/vendor_errors.py), and what the
retry policy decides on that typed result (rewrite/policy/retry.py). The delay sources one by one are in
test_cooldowns.py, the refused parameters in test_refused_params.py."""

from __future__ import annotations

import dataclasses
import json

import pytest

import protocols
from protocols.vendor_errors import ErrorAnswer, ErrorKind, Quota, VendorError
from rewrite.policy import retry
from tests.support.vendor_errors import read

NOW = 1_700_000_000.0


def body(obj) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize("protocol", [r.name for r in protocols.registrations()])
@pytest.mark.parametrize("status, kind", [(401, ErrorKind.BAD_KEY), (403, ErrorKind.BAD_KEY),
                                          (429, ErrorKind.RATE_LIMITED), (503, ErrorKind.OVERLOADED),
                                          (529, ErrorKind.OVERLOADED), (500, ErrorKind.TRANSIENT),
                                          (408, ErrorKind.TRANSIENT), (400, ErrorKind.REQUEST),
                                          (404, ErrorKind.REQUEST), (413, ErrorKind.REQUEST)])
def test_every_protocols_reader_says_what_a_bare_status_means(protocol, status, kind):
    error = read(status, [("retry-after", "7")], b"", NOW, protocol)
    assert (error.kind, error.delay, error.quota, error.refused) == (kind, 7, None, ())


def test_the_vendors_message_and_parameter_are_read_from_its_error_object_or_its_text():
    openai = read(400, body=body({"error": {"message": "Unsupported value: 'stream'", "param": "stream"}}))
    assert (openai.message, openai.param) == ("Unsupported value: 'stream'", "stream")
    gemini = read(503, body=b'[{"error": {"code": 503, "message": "The model is overloaded.", "status": '
                               b'"UNAVAILABLE"}}]', protocol="gemini")  # as its streams send errors
    assert gemini.message == "The model is overloaded."
    assert read(502, body=b"<html>Bad Gateway</html>").message == "<html>Bad Gateway</html>"


@pytest.mark.parametrize("protocol, status, error, per_model, what", [
    ("openai_chat", 429, {"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}, False,
     "out of quota"),
    ("openai_responses", 429, {"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}, False,
     "out of quota"),
    ("anthropic_messages", 429, {"type": "error", "error": {"type": "rate_limit_error", "message":
                                 "This request would exceed your organization's enforced_spend_limit."}}, False,
     "out of quota"),
    ("gemini", 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}, True, "daily quota spent"),
])
def test_a_spent_quota_is_read_by_its_vendors_reader_and_rests_the_key_for_its_window(protocol, status, error,
                                                                                      per_model, what):
    read_error = read(status, [], body(error), NOW, protocol)
    assert read_error.kind is ErrorKind.QUOTA and read_error.quota.per_model is per_model
    failure = retry.decide(read_error, [], body(error), pooled=True)
    assert failure.retryable and failure.rest.per_model is per_model and failure.rest.why.startswith(what)
    assert failure.delay == (read_error.quota.window or retry.QUOTA_REST)
    assert not retry.decide(read_error, [], body(error), pooled=False).retryable  # no other key to try


def test_another_vendors_quota_is_not_read_as_one():
    spend_limit = body({"type": "error", "error": {"type": "rate_limit_error", "message": "enforced_spend_limit"}})
    assert read(429, [], spend_limit, NOW, "openai_chat").kind is ErrorKind.RATE_LIMITED
    assert read(429, [], body({"error": {"code": "insufficient_quota"}}), NOW, "gemini").kind is ErrorKind.RATE_LIMITED


def test_googles_400_for_an_invalid_key_is_the_keys_fault_not_the_requests():
    invalid = body({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                              "status": "INVALID_ARGUMENT", "details": [
                                  {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}})
    assert read(400, [], invalid, NOW, "gemini").kind is ErrorKind.BAD_KEY
    assert read(400, [], body({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}), NOW,
                "gemini").kind is ErrorKind.REQUEST


def test_googles_403_for_a_cache_another_project_holds_is_the_requests_not_a_refused_key():
    """A key of another project than the one that made the explicit cache (or after it expired): answered to the
    client as it is, the key not put out of the pool."""
    not_held = body({"error": {"code": 403, "message": "CachedContent not found (or permission denied)",
                               "status": "PERMISSION_DENIED"}})
    error = read(403, [], not_held, NOW, "gemini")
    assert error.kind is ErrorKind.FOREIGN
    assert retry.decide(error, [], not_held, pooled=True) is None
    denied = body({"error": {"code": 403, "message": "Permission denied: Consumer 'api_key:x' has been suspended.",
                             "status": "PERMISSION_DENIED"}})
    assert read(403, [], denied, NOW, "gemini").kind is ErrorKind.BAD_KEY


def test_a_refused_parameter_makes_a_400_a_refusal_and_an_essential_one_does_not():
    refused = body({"error": {"message": "Unsupported parameter: 'temperature' is not supported with this model.",
                              "param": "temperature", "code": "unsupported_parameter"}})
    error = read(400, [], refused)
    assert (error.kind, error.refused) == (ErrorKind.REFUSED, ("temperature",))
    assert retry.decide(error, [], refused, pooled=True) is None  # (the attempt sends it again without)
    essential = body({"error": {"message": "Unsupported value: 'model'", "param": "model",
                                "code": "unsupported_value"}})
    assert read(400, [], essential).kind is ErrorKind.REQUEST


def test_a_refused_gemini_parameter_is_shown_without_its_holder():
    reader = protocols.registered("gemini").family.errors
    assert reader.shown("generationConfig.topK") == "topK"
    assert protocols.registered("openai_chat").family.errors.shown("reasoning.effort") == "reasoning.effort"


# -- a dialect is one function more


def usage_limit_reached(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A subscription's own quota error, as a later dialect would read it: its window in `resets_in_seconds`."""
    if answer.error is None or answer.error.get("type") != "usage_limit_reached":
        return error
    window = answer.error.get("resets_in_seconds")
    return dataclasses.replace(error, kind=ErrorKind.QUOTA,
                               quota=Quota(float(window), per_model=False, id="usage_limit_reached"))


def test_a_dialect_added_to_a_protocols_reader_is_what_the_policy_decides_on():
    reader = protocols.registered("openai_responses").family.errors.with_dialects(usage_limit_reached)
    answer = body({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                             "resets_in_seconds": 5400}})
    error = reader.read(429, [("retry-after", "5")], answer, NOW)
    assert error.kind is ErrorKind.QUOTA and error.quota.id == "usage_limit_reached"
    failure = retry.decide(error, [], answer, pooled=True)
    assert failure.delay == 5400 and not failure.rest.per_model  # the window, not the retry-after
    plain = protocols.registered("openai_responses").family.errors.read(429, [("retry-after", "5")], answer, NOW)
    assert retry.decide(plain, [], answer, pooled=True).delay == 5  # the registered reader is left as it was


def test_a_dialect_may_make_a_status_the_policy_would_pass_on_a_spent_quota():
    def quota_exceeded(answer: ErrorAnswer, error: VendorError) -> VendorError:  # a 402, as one vendor says it
        if answer.status == 402 and answer.error is not None and answer.error.get("code") == "quota_exceeded":
            return dataclasses.replace(error, kind=ErrorKind.QUOTA, quota=Quota(id="quota_exceeded"))
        return error

    answer = body({"error": {"code": "quota_exceeded", "message": "You have exceeded your monthly quota"}})
    plain = read(402, [], answer)
    assert plain.kind is ErrorKind.REQUEST and retry.decide(plain, [], answer, pooled=True) is None
    error = protocols.registered("openai_chat").family.errors.with_dialects(quota_exceeded).read(402, [], answer, NOW)
    failure = retry.decide(error, [], answer, pooled=True)
    assert failure.retryable and failure.status == 402 and failure.delay == retry.QUOTA_REST


def test_encrypted_content_another_organization_made_is_read_as_foreign_state_and_goes_to_the_client_as_it_is():
    body = json.dumps({"error": {"message": "The encrypted content for item rs_1 could not be verified.",
                                 "type": "invalid_request_error", "param": None,
                                 "code": "invalid_encrypted_content"}}).encode()
    error = read(400, body=body, protocol="openai_responses")
    assert error.kind is ErrorKind.FOREIGN
    assert retry.decide(error, [], body, pooled=True) is None  # (unless the request can go without it: the engine)
    assert read(400, body=b'{"error": {"message": "bad"}}', protocol="openai_responses").kind is ErrorKind.REQUEST


@pytest.mark.parametrize("status, message, code", [
    (404, "Response with id 'resp_abc' not found.", None),  # GET, DELETE, cancel, input_items
    (404, "Conversation with id 'conv_abc' not found.", None),
    (400, "Previous response with id 'resp_abc' not found.", "previous_response_not_found"),
])
def test_openais_answer_for_state_another_organization_holds_goes_to_the_client_and_rests_no_key(status, message,
                                                                                                code):
    """A stored response or conversation the key's organization does not hold (another made it, or it was deleted):
    the request's fault, answered as it came, never a refused key put out of the pool."""
    answer = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                   "param": "previous_response_id" if code else None, "code": code}}).encode()
    error = read(status, body=answer, protocol="openai_responses")
    assert error.kind is ErrorKind.REQUEST and not error.refused
    assert retry.decide(error, [], answer, pooled=True) is None
