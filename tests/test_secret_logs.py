"""Where a pooled credential could leave Rotator besides its upstream request: never in a log record (a library's
DEBUG ones included) nor in an answer a vendor gave about it.

mitmproxy runs with the root logger at DEBUG (mitmproxy/tools/main.py) and mitmweb's event log keeps every record,
debug ones included, so a library's DEBUG record is as visible as Rotator's own lines."""

from __future__ import annotations

import logging

from rewrite.providers.signer import CloudKey, Signer

SECRET_KEY = "pooled-secret-access-key-0123456789"
SESSION_TOKEN = "pooled-session-token-IQoJb3JpZ2luX2VjEXAMPLE"


def test_signing_a_pooled_request_logs_no_session_token_at_debug(caplog):
    caplog.set_level(logging.DEBUG)  # (the root logger, as mitmproxy sets it)
    key = CloudKey("AKIDPOOLEXAMPLE", "us-east-1", SECRET_KEY, SESSION_TOKEN)
    headers = Signer("bedrock", "bedrock-runtime.{region}.amazonaws.com").sign(
        "POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/invoke", "",
        [("content-type", "application/json")], b"{}", key, "us-east-1")
    assert ("X-Amz-Security-Token", SESSION_TOKEN) in headers  # (the token went upstream)
    assert not [r.getMessage() for r in caplog.records
                if SESSION_TOKEN in r.getMessage() or SECRET_KEY in r.getMessage()]
