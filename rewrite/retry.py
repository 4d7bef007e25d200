"""The retry policy: from one attempt's outcome to what happens next.

Reads like httpx's error hierarchy: the engine describes what an attempt ended with (`Failure`), and `decide`
says whether another key may fix it, how long the key that got it is put aside, and how long to wait.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass, field

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
BAD_KEY_STATUS = frozenset({401, 403})  # with a pool: that key is bad, the request is not
BAD_KEY_BENCH = 600.0  # seconds a rejected key is put aside
MAX_WAIT = 60.0  # never sleep longer than this for one retry; a longer retry-after is answered at once
_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


@dataclass
class Failure:
    """Why an attempt did not produce an answer for the client."""

    reason: str  # short, for logs and the flow: "first-token timeout", "status 429", "connect error", ...
    status: int | None = None  # the upstream HTTP status, if it answered
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    retryable: bool = True
    bench: float = 0.0  # how long the key that got it is put aside
    wait: float = 0.0  # the upstream's requested delay
    stalled: bool = False  # no first token in time, or no connection: the key rests (see KeyPool.stalled)


def retry_after(headers: list[tuple[str, str]], body: bytes = b"") -> float | None:
    """The server-directed delay in seconds: retry-after-ms, retry-after (seconds or HTTP date), Gemini RetryInfo."""
    h = {k.lower(): v for k, v in headers}
    try:
        if "retry-after-ms" in h:
            return max(0.0, float(h["retry-after-ms"]) / 1000)
        if "retry-after" in h:
            v = h["retry-after"].strip()
            try:
                return max(0.0, float(v))
            except ValueError:
                when = email.utils.parsedate_to_datetime(v)
                return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError):
        pass
    if body and b"RetryInfo" in body:
        try:
            for d in json.loads(body)["error"].get("details", []):
                if d.get("@type", "").endswith("RetryInfo") and (m := _GO_DURATION.match(d.get("retryDelay", ""))):
                    return float(m.group(1))
        except (ValueError, KeyError, AttributeError, TypeError):
            pass
    return None


def _not_retryable_quota(status: int, body: bytes) -> bool:
    # Quotas that will not clear by retrying: OpenAI insufficient_quota, Anthropic's spend cap, Gemini per-day.
    return status == 429 and any(s in body for s in (b"insufficient_quota", b"enforced_spend_limit", b"PerDay"))


def from_status(status: int, headers: list[tuple[str, str]], body: bytes, pooled: bool) -> Failure | None:
    """A Failure for an upstream error answer, or None if the answer goes to the client as it is."""
    if status in BAD_KEY_STATUS and pooled:
        return Failure(f"status {status}", status, headers, body, bench=BAD_KEY_BENCH)
    if status not in RETRYABLE_STATUS:
        return None
    delay = retry_after(headers, body)
    if _not_retryable_quota(status, body):
        return Failure(f"status {status} (quota)", status, headers, body, retryable=pooled, bench=BAD_KEY_BENCH)
    return Failure(f"status {status}", status, headers, body, bench=delay or 0.0, wait=delay or 0.0)


def backoff(attempt: int) -> float:
    """Pause before retrying on the same key after a failure that named no delay."""
    return min(0.25 * 2**attempt, 4.0)
