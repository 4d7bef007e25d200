"""What an Anthropic error answer means (protocols/vendor_errors.py).

- `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset` (RFC 3339 times) beside
  `anthropic-ratelimit-*-remaining`: the delay, the reset of the limit that ran out.
- A 429 `enforced_spend_limit`: the key's spend cap is reached, for every model.
- A 400 `invalid_request_error` whose message names the field: "`temperature` is deprecated for this model.",
  "context_management: Extra inputs are not permitted", "\"thinking.type.enabled\" is not supported for this
  model. ...", "adaptive thinking is not supported on this model".
"""

from __future__ import annotations

import re

from protocols.vendor_errors import ErrorReader, error_message, matches, quota_spent, refused_by, reset_headers, rfc3339

REFUSAL_MESSAGES = (
    re.compile(r"^`?([\w.]+)`? is deprecated for this model"),
    re.compile(r"^([\w.]+): Extra inputs are not permitted"),
    re.compile(r'^"(\w+)\.[\w.]+" is not supported for this model'),  # "thinking.type.enabled" ...
    re.compile(r"^`\w+` and `(\w+)` cannot both be specified for this model"),  # the second one goes
    re.compile(r"^(\w+): .*\bnot supported\b"),
)
THINKING_REFUSED = re.compile(r"^adaptive thinking is not supported on this model", re.IGNORECASE)
ESSENTIAL = frozenset({"model", "messages", "max_tokens", "system", "tools", "stream"})
HEADERS = "anthropic-ratelimit-"


def _refused(error: dict) -> list[str]:
    if error.get("type") != "invalid_request_error":
        return []
    message = error_message(error)
    if THINKING_REFUSED.match(message):
        return ["thinking"]
    return matches(REFUSAL_MESSAGES, message)


ANTHROPIC_ERRORS = ErrorReader(
    (reset_headers(HEADERS, "-reset", HEADERS, "-remaining", rfc3339),
     quota_spent(429, [b"enforced_spend_limit"]),
     refused_by(_refused)),
    essential=ESSENTIAL,
)
