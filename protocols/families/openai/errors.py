"""What an OpenAI error answer means (protocols/vendor_errors.py), for both OpenAI protocols (Chat Completions and
Responses) and the OpenAI-compatible vendors.

- `x-ratelimit-reset-{requests,tokens}` (Go durations: `6m0s`, `1.5s`, `20ms`) beside `x-ratelimit-remaining-*`:
  the delay, the reset of the limit that ran out.
- A 429 `insufficient_quota`: the key's quota (billing) is spent, for every model.
- Google's RPC details (RetryInfo, a daily QuotaFailure: protocols/families/google_rpc.py): Google's
  OpenAI-compatible endpoint answers in Google's shape.
- A 400 `invalid_encrypted_content`: the request carries a reasoning item another organization encrypted.
- A 400 that refuses a parameter: `{"error": {"param": "temperature", "code": "unsupported_parameter" |
  "unsupported_value", ...}}` ("Unsupported parameter: 'temperature' is not supported with this model."; the code
  is sometimes null), or "Unrecognized request argument supplied: top_k".
"""

from __future__ import annotations

import re

from protocols.families.google_rpc import RPC_ERRORS
from protocols.vendor_errors import (
    ErrorReader,
    error_message,
    finite,
    foreign_state,
    matches,
    quota_spent,
    refused_by,
    reset_headers,
)

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

REFUSAL_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
REFUSAL_MESSAGES = (re.compile(r"^Unsupported parameter: '([\w.]+)'"),
                    re.compile(r"^Unrecognized request argument supplied: ([\w.]+)"))
ESSENTIAL = frozenset({"model", "messages", "input", "instructions", "tools", "stream", "previous_response_id",
                       "conversation"})


def go_duration(text: str, now: float = 0.0) -> float | None:
    """OpenAI's reset headers: Go durations like `6m0s`, `1.5s`, `20ms`, `1h2m3.5s` (`now` unused: a duration)."""
    text = text.strip()
    if not text:
        return None
    total, pos = 0.0, 0
    for m in _GO_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return finite(total) if pos == len(text) else None


def _refused(error: dict) -> list[str]:
    message, param = error_message(error), error.get("param")
    if isinstance(param, str) and (error.get("code") in REFUSAL_CODES or message.startswith("Unsupported ")):
        return [param]
    return matches(REFUSAL_MESSAGES, message)


OPENAI_ERRORS = ErrorReader(
    (reset_headers("x-ratelimit-reset-", "", "x-ratelimit-remaining-", "", go_duration),
     quota_spent(429, [b"insufficient_quota"]),
     foreign_state(400, [b"invalid_encrypted_content"]),
     *RPC_ERRORS,
     refused_by(_refused)),
    essential=ESSENTIAL,
)
