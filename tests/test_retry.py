import email.utils
import json
import time

import pytest

from tests.support.vendor_errors import failure, read


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_client_errors_go_back_untouched(status):
    assert failure(status, [], b"", pooled=True) is None


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_retry_only_with_a_pool_and_take_the_key_out(status):
    assert failure(status, [], b"", pooled=False) is None
    f = failure(status, [], b"", pooled=True)
    assert f.retryable and f.rest.out and not f.rest.per_model


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_transient_statuses_retry(status):
    f = failure(status, [], b"", pooled=False)
    assert f is not None and f.retryable


def retry_after(headers, body=b"", protocol="openai_chat"):
    return read(429, headers, body, protocol=protocol).delay


def test_retry_after_sources():
    assert retry_after([("retry-after-ms", "1500")]) == 1.5
    assert retry_after([("Retry-After", "7")]) == 7
    date = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 15 < retry_after([("retry-after", date)]) <= 21
    body = json.dumps({"error": {"code": 429, "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}).encode()
    assert retry_after([], body, "gemini") == 37
    assert retry_after([]) is None


def test_429_benches_the_key_for_its_retry_after():
    f = failure(429, [("retry-after", "12")], b"", pooled=True)
    assert f.delay == 12


def test_quota_exhaustion_is_not_retried_without_another_key():
    body = b'{"error": {"code": "insufficient_quota"}}'
    assert not failure(429, [], body, pooled=False).retryable
    assert failure(429, [], body, pooled=True).retryable
