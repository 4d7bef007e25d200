"""The retry policy: from one attempt's outcome to what happens next.

Reads like httpx's error hierarchy: the engine describes what an attempt ended with (`Failure`); for an error answer,
`decide` says, from what it means (`VendorError`, read by the reader of the upstream's protocol:
protocols/vendor_errors.py), whether another key may fix it, how long the key that got it is put aside, and how long
to wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.vendor_errors import ErrorKind, Quota, VendorError
from rewrite.policy.backoff import backoff
from rewrite.policy.outcomes import FailureKind

# What another key (or the same one, later) may fix.
RETRYABLE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.TRANSIENT})
# What rests the key that got it (for the vendor's delay, else a backoff), and why, for the pool's status.
RESTING = {ErrorKind.RATE_LIMITED: "rate limited", ErrorKind.OVERLOADED: "overloaded"}
UNAVAILABLE = 503  # an overload said "unavailable"
QUOTA_REST = 3600.0  # a quota that names no window, nor any delay: an hour
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
    quota: str | None = None  # a used-up quota, what it is ("daily quota"): not back before its window ends


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
    stalled: bool = False  # no first token in time, or no connection: the key rests (see KeyRests.stalled)
    rest: KeyRest | None = None  # what the key that got it deserves
    # Every key rests, but the conversation's state is on one key alone (a pin's kind): the request may be sent
    # whole elsewhere (rewrite/exchange/fallback.py).
    pinned: str = ""


def decide(error: VendorError, headers: list[tuple[str, str]], body: bytes, pooled: bool) -> Failure | None:
    """A Failure for an upstream error answer (`error`, as its protocol's reader read it; `headers` and `body` are
    kept for the client), or None if it goes to the client as it is (400, 404, 413, 422 and the like: the
    request's fault, never the key's; and a rejected key without a pool)."""
    status, kind = error.status, error.kind
    if kind is ErrorKind.BAD_KEY:
        if not pooled:
            return None
        rest = KeyRest(f"rejected, status {status}", per_model=False, out=True)
        return Failure(FailureKind.STATUS, f"status {status}", status, headers, body, rest=rest)
    if kind is ErrorKind.QUOTA:
        # Quotas will not clear by retrying soon: the key rests until the window the vendor names (else its
        # delay, else an hour), for every model unless the quota is the model's.
        quota = error.quota or Quota()
        window = next((w for w in (quota.window, error.delay) if w is not None), QUOTA_REST)
        named = f" ({quota.id})" if quota.id and quota.id != quota.what else ""  # (the vendor's own name for it)
        rest = KeyRest(f"{quota.what}{named}, status {status}", per_model=quota.per_model, quota=quota.what)
        return Failure(FailureKind.STATUS, f"status {status} (quota)", status, headers, body, retryable=pooled,
                       delay=window, rest=rest)
    if kind not in RETRYABLE:
        return None
    why = "unavailable" if status == UNAVAILABLE and kind in RESTING else RESTING.get(kind)
    cooldown = KeyRest(f"{why}, status {status}") if why else None
    return Failure(FailureKind.STATUS, f"status {status}", status, headers, body, delay=error.delay, rest=cooldown)


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
