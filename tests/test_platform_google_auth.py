"""A service account's tokens (protocols/platforms/google_auth.py): its key file read, the assertion the token endpoint
checks (judged by the fake platform's own check, tests/support/cloud_auth.py), the endpoint's answer read."""

import json
import time
from urllib.parse import parse_qsl

import pytest

from protocols.platforms import google_auth
from tests.support.cloud_auth import CloudAccounts


@pytest.fixture(scope="module")
def accounts():
    return CloudAccounts()


def test_a_key_file_gives_its_project_email_and_key_id(accounts):
    sa = accounts.service_account("proj-a")

    account = google_auth.service_account(json.dumps(sa.info()))

    assert (account.project, account.email, account.key_id) == ("proj-a", sa.email, sa.key_id)
    assert account.token_uri == "https://oauth2.googleapis.com/token"
    assert "PRIVATE" not in repr(account)


def test_the_token_endpoint_takes_the_assertion_and_its_token_is_the_accounts(accounts):
    sa = accounts.service_account("proj-b")
    account = google_auth.service_account(json.dumps(sa.info()))

    url, headers, body = google_auth.token_request(account, time.time())
    status, answer = accounts.token_endpoint(body)
    minted = google_auth.token_answer(status, json.dumps(answer).encode(), 1000.0)

    assert url == account.token_uri and ("content-type", google_auth.FORM) in headers
    assert dict(parse_qsl(body.decode()))["grant_type"] == google_auth.JWT_BEARER
    assert status == 200 and accounts.grant(minted.token).project == "proj-b"
    assert minted.expires_at == 1000.0 + answer["expires_in"]
    assert google_auth.fresh(minted, 1000.0) and not google_auth.fresh(minted, minted.expires_at - 60)


def test_an_assertion_signed_by_another_key_is_refused_in_the_endpoints_words(accounts):
    sa, other = accounts.service_account("proj-a"), accounts.service_account("proj-a", "other")
    forged = google_auth.service_account(json.dumps({**sa.info(), "private_key": other.info()["private_key"]}))

    status, answer = accounts.token_endpoint(google_auth.token_request(forged, time.time())[2])

    with pytest.raises(google_auth.ServiceAccountError, match="answered 400: Invalid JWT Signature"):
        google_auth.token_answer(status, json.dumps(answer).encode(), 0.0)


@pytest.mark.parametrize(("text", "said"), [
    ("not json", "is not JSON"), ("[]", "is not a JSON object"), ('{"type": "service_account"}', "has no project_id"),
    (json.dumps({"type": "authorized_user", "project_id": "p", "private_key": "k", "client_email": "e",
                 "token_uri": "https://x"}), "of type 'authorized_user'"),
    (json.dumps({"type": "service_account", "project_id": "p", "private_key": "-----BEGIN nothing",
                 "client_email": "e", "token_uri": "https://oauth2.googleapis.com/token"}), "not a PEM RSA key"),
    (json.dumps({"type": "service_account", "project_id": "p", "private_key": "k", "client_email": "e",
                 "token_uri": "http://oauth2.googleapis.com/token"}), "not https")])
def test_a_file_that_is_no_service_account_key_says_why_in_one_line(text, said):
    with pytest.raises(google_auth.ServiceAccountError, match=said) as e:
        google_auth.service_account(text)
    assert "\n" not in str(e.value)


def test_an_answer_without_a_token_says_what_the_endpoint_said():
    with pytest.raises(google_auth.ServiceAccountError, match="answered 200: no access_token"):
        google_auth.token_answer(200, b"{}", 0.0)
    with pytest.raises(google_auth.ServiceAccountError, match="answered 502 without JSON"):
        google_auth.token_answer(502, b"<html>", 0.0)
