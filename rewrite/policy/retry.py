"""The retry policy: from one attempt's outcome to what happens next.

Reads like httpx's error hierarchy: the engine describes what an attempt ended with (`Failure`), and `decide`
says whether another key may fix it, how long the key that got it is put aside, and how long to wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rewrite.policy import delays
from rewrite.policy.backoff import backoff
from rewrite.policy.outcomes import FailureKind

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
BAD_KEY_STATUS = frozenset({401, 403})  # with a pool: that key is bad, the request is not
# Statuses that rest the key that got them (for the vendor's delay, else a backoff), and why, for the pool's status.
COOLDOWN_STATUS = {429: "rate limited", 503: "unavailable", 529: "overloaded"}
MAX_WAIT = 60.0  # never sleep longer than this for one retry; a longer retry-after is answered at once
# A retry on the same key after an error answer that named no delay: this long, doubling with each retry, up to
# RETRY_BACKOFF_MAX.
RETRY_BACKOFF = 0.25
RETRY_BACKOFF_MAX = 4.0


@dataclass(frozen=True)
class KeyRest:
    """What an error answer says about the key that got it (the pool acts on it: rewrite/pool)."""

    why: str  # for the pool's log line and status: "rate limited, status 429"
    per_model: bool = True  # the vendor limits this per model: the key rests for the request's model only
    out: bool = False  # the vendor refused the key: not used again until the config is reloaded


@dataclass
class Failure:
    """Why an attempt did not produce an answer for the client.

    One delay: `delay`, the seconds the answer said the key that got it should wait (a retry on that key waits it,
    the pool rests the key for it). It replaces three: `bench` (the delay the key was benched for), `wait` (the
    delay a retry on the same key waited, never set for a quota) and `KeyRest.seconds` (the pool's rest, also the
    quota's window); each held the vendor's delay or a quota's window, or nothing. Only `wait` differed, left unset
    for a quota: a retry on the same key after a quota now waits for its window, which its pool's rest of that key
    already made it wait (a quota is not retried without a pool).
    """

    kind: FailureKind
    reason: str  # short, for logs and the flow: "first-token timeout", "status 429", "connect error", ...
    status: int | None = None  # the upstream HTTP status, if it answered
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    retryable: bool = True
    delay: float | None = None  # the vendor's delay, or a quota's window; None: none named (back off)
    stalled: bool = False  # no first token in time, or no connection: the key rests (see KeyPool.stalled)
    rest: KeyRest | None = None  # what the key that got it deserves


def retry_after(headers: list[tuple[str, str]], body: bytes = b"") -> float | None:
    """The server-directed delay in seconds (rewrite/policy/delays.py: retry-after-ms, retry-after, vendor reset
    headers, Gemini RetryInfo)."""
    return delays.hinted(headers, body, time.time())


def quota_rest(status: int, body: bytes, delay: float | None, now: float) -> tuple[KeyRest, float] | None:
    """Quotas that will not clear by retrying soon, and the seconds their key rests: OpenAI insufficient_quota and
    Anthropic's spend cap (the key, until the window the vendor names, or an hour), Gemini's per-day quotas (until
    Google's midnight)."""
    if status != 429:
        return None
    if b"insufficient_quota" in body or b"enforced_spend_limit" in body:
        return (KeyRest("out of quota, status 429", per_model=False),
                delay if delay is not None else delays.QUOTA_REST)
    per_day, per_model = delays.gemini_quota(body)
    if per_day or b"PerDay" in body:
        return KeyRest("daily quota spent, status 429", per_model=per_model), delays.until_pacific_midnight(now)
    return None


def from_status(status: int, headers: list[tuple[str, str]], body: bytes, pooled: bool,
                now: float | None = None) -> Failure | None:
    """A Failure for an upstream error answer, or None if the answer goes to the client as it is (400, 404, 413,
    422 and the like: the request's fault, never the key's)."""
    if status in BAD_KEY_STATUS and pooled:
        rest = KeyRest(f"rejected, status {status}", per_model=False, out=True)
        return Failure(FailureKind.STATUS, f"status {status}", status, headers, body, rest=rest)
    if status not in RETRYABLE_STATUS:
        return None
    now = time.time() if now is None else now
    delay = delays.hinted(headers, body, now)
    if (quota := quota_rest(status, body, delay, now)) is not None:
        rest, window = quota
        return Failure(FailureKind.STATUS, f"status {status} (quota)", status, headers, body, retryable=pooled,
                       delay=window, rest=rest)
    why = COOLDOWN_STATUS.get(status)
    cooldown = KeyRest(f"{why}, status {status}") if why else None
    return Failure(FailureKind.STATUS, f"status {status}", status, headers, body, delay=delay, rest=cooldown)


def wait_before(attempt: int, key_wait: float, failure: Failure | None, same_key: bool, pooled: bool,
                first_token_timeout: float) -> float | None:
    """Seconds to wait before attempt number `attempt` (from 0): the key's own wait (a pool's), and after a failure
    with the same key (or no pool at all) the failure's delay, or after an error answer that named none a backoff.
    None: longer than an attempt may wait (the first-token timeout with a pool, MAX_WAIT without), so give up now."""
    wait = key_wait
    if failure is not None and same_key:
        if failure.delay:
            wait = max(wait, failure.delay)
        elif failure.status is not None:  # (a named delay of 0 too)
            wait = max(wait, backoff(attempt - 1, base=RETRY_BACKOFF, cap=RETRY_BACKOFF_MAX))
    return None if wait > (first_token_timeout if pooled else MAX_WAIT) else wait
