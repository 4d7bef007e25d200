"""What can happen to a request, as types: the kinds of note the engine records on a flow, and the kinds of failure
an attempt ends with.

Both are `StrEnum`s: a member is its own value, so what `flow.metadata["rotator"]["events"]`, the log and the status
page's JSON hold is unchanged ("retry", "stream-refused", ...), and a note read back from a saved flow compares
equal to the member.
"""

from __future__ import annotations

from enum import StrEnum


class Note(StrEnum):
    """The `kind` of a flow's note (`Job.note`, rewrite/exchange/job.py): shown in the flow's view and the flow
    list (rewrite/inspection/views.py), counted by the status page and the metrics."""

    RETRY = "retry"  # an attempt failed before the first token and another follows
    FAILED = "failed"  # the request was given up, or answered with an error Rotator made
    FALLBACK = "fallback"  # a target failed before the first token and the next one of its route is tried
    REPAIRED = "repaired"  # a stream ended without its completion signal and Rotator ended it
    CUT = "cut"  # a non-stream answer broke, or ran past request_timeout, after it started
    COMMITTED = "committed"  # a heartbeat sent the status 200 before the first token
    STREAM_REFUSED = "stream-refused"  # the upstream refused a forced stream: the model is asked without one
    USAGE_REFUSED = "usage-refused"  # the upstream refused stream_options: Chat streams go without it
    PARAM_REFUSED = "param-refused"  # the upstream refused parameters: the model is asked without them
    RESUMED = "resumed"  # a cut stream was continued: one note a continuation tried (the seam's record)
    DOWNGRADED = "downgraded"  # a WebSocket request was served over HTTP (addons/websocket.py)
    SIGNED = "signed"  # a login's signed body went as it came: what would have rewritten it was skipped
    WINDOW = "window"  # a key was passed over: a quota window the request counts in would be exceeded
    AFFINITY = "affinity"  # why a conversation's key was chosen: bound, new, moved, compaction (pool/affinity.py)
    FOREIGN = "foreign"  # the key's account refused state another account made: sent again without it
    HEDGED = "hedged"  # a second attempt raced a late first token (rewrite/plugins/hedging.py): which one answered


# Notes that say an attempt on a key went wrong: the status page lists them under the key.
ATTEMPT_ERRORS = frozenset({Note.RETRY, Note.FAILED, Note.CUT, Note.REPAIRED})


class FailureKind(StrEnum):
    """Why an attempt did not produce an answer (`Failure.kind`, rewrite/policy/retry.py); its `reason` says the
    rest in words."""

    STATUS = "status"  # the upstream answered an error status (`Failure.status`)
    FIRST_TOKEN_TIMEOUT = "first-token timeout"  # no response head or first token within first_token_timeout
    REQUEST_TIMEOUT = "request timeout"  # no whole answer within request_timeout
    HANDSHAKE_TIMEOUT = "handshake timeout"  # a WebSocket upgrade that did not complete in time
    CONNECT = "connect error"  # the vendor (or the egress proxy) was never reached
    TRANSPORT = "transport error"  # the connection broke after it was made, before an answer started
    ENDED_EARLY = "ended before the first token"  # the stream or body ended, or broke, before its first token
    BAD_REQUEST = "bad request"  # the request cannot be sent upstream as it is
    BAD_ANSWER = "bad answer"  # the upstream's answer cannot be read or translated for the client
    KEYS_RESTING = "every key resting"  # no key of the pool may serve in time: nothing was sent
    SENT_AGAIN = "sent again"  # the upstream refused something Rotator can leave out: sent again at once
    PREFILL_REFUSED = "prefill refused"  # a continuation's target refused a trailing assistant turn
    PLAN_EXHAUSTED = "plan exhausted"  # the client's login is known used up: left for the next target, unasked
    CLIENT_HELD = "client held"  # over its client's budget or limit, or a model it may not use: nothing was sent

    @property
    def timeout(self) -> bool:
        """A deadline passed (the client's error is then a 504, a gateway timeout, rather than a 502)."""
        return self in _TIMEOUTS


_TIMEOUTS = frozenset({FailureKind.FIRST_TOKEN_TIMEOUT, FailureKind.REQUEST_TIMEOUT, FailureKind.HANDSHAKE_TIMEOUT})
