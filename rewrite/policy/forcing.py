"""Forced upstream streaming: which upstream answers say that a model cannot be streamed.

Some models or accounts refuse `stream: true` (OpenAI answers 400 "Unsupported value: 'stream' does not support
true with this model", or asks for a verified organization "to stream this model"; OpenAI-compatible vendors
reject `stream_options`). Such a request is sent again as the client sent it, and its model is remembered.
"""

from __future__ import annotations

import json

REFUSAL_STATUS = 400
STREAM_WORD = "stream"  # also matches "streaming", "stream_options"


def refuses_stream(status: int, body: bytes) -> bool:
    """Whether an upstream error answer to a streamed request is about streaming itself."""
    if status != REFUSAL_STATUS:
        return False
    return STREAM_WORD in _error_text(body).lower()


def _error_text(body: bytes) -> str:
    """The error's message and param in the vendors' shape `{"error": {"message", "param"}}`; else the body."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace")
    if isinstance(error, dict):
        return f"{error.get('message') or ''} {error.get('param') or ''}"
    return str(error or "")
