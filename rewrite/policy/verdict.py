"""What a vendor's error answer means for the request, decided once: one typed `Verdict` from the `VendorError` its
protocol's reader read (protocols/vendor_errors.py) and what the refused attempt asked (`Asked`). Retry, forcing,
usage, resume and fallback act on the verdict; none of them reads an error's text or status again.

- `RESEND_*`: the upstream refused something the request can go without: sent again at once without it (a forced
  stream, the usage option, parameters its model refuses, state another account made); what was refused is learned
  for the next requests (rewrite/plugins/quirks.py).
- `PREFILL`: a continuation's prefill was refused: it is asked in words instead.
- `RETRY`: another attempt may serve (another key, or later: `failure` says how long the key rests, and waits).
- `NEXT`: left for the route's next target (the key or account is not wanted there, or the model is not known;
  never a login's refusal, which its client must see; always a continuation's error, which never reaches the client).
- `CLIENT`: the request's own error (400, 404, 413, 422, ...): the client gets it as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.resume import refuses_prefill
from protocols.vendor_errors import REFUSAL_STATUS, ErrorKind, VendorError
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure, decide

# Answers that send a request on to the next target: the key or account is not wanted there (401/403 when no other
# key of that target is left), or the target does not know the model (404). A request error (400, 413, 422) would be
# the same everywhere: it goes back to the client at once.
FALL_THROUGH_STATUS = frozenset({401, 403, 404})
STREAM_WORD = "stream"  # a refusal of a stream names it ("stream", "streaming", "stream_options")


class Act(StrEnum):
    RESEND_WITHOUT_STREAM = "resend without the stream"
    RESEND_WITHOUT_USAGE = "resend without the usage option"
    RESEND_WITHOUT_PARAMS = "resend without the parameters"
    RESEND_WITHOUT_FOREIGN = "resend without another account's state"
    PREFILL = "prefill refused"
    RETRY = "retry"
    NEXT = "next target"
    CLIENT = "client"


RESENDS = frozenset({Act.RESEND_WITHOUT_STREAM, Act.RESEND_WITHOUT_USAGE, Act.RESEND_WITHOUT_PARAMS,
                     Act.RESEND_WITHOUT_FOREIGN})


@dataclass(frozen=True, slots=True)
class Asked:
    """What the refused attempt asked, as far as the verdict depends on it."""

    pooled: bool  # another key of the target may serve it
    more: bool = False  # targets follow this one
    keeps_errors: bool = False  # its payer's refusals are its client's to see (a subscription login)
    continuation: bool = False  # a continuation of a cut answer (its errors never reach the client)
    prefill: bool = False  # a continuation asked by prefill
    aggregate: bool = False  # a non-stream request forced into an upstream stream
    usage_option: str = ""  # the member that asked for the usage the client did not ("" when not asked)
    refusable: tuple[str, ...] = ()  # parameters the error names that the request sent and may go without
    foreign: frozenset[str] = frozenset()  # the marks of another account's state in what was sent, not refused yet


@dataclass(frozen=True, slots=True)
class Verdict:
    act: Act
    failure: Failure | None = None  # for RETRY, NEXT and PREFILL
    drop: tuple[str, ...] = ()  # what a resend goes without (parameters, state marks)

    @property
    def resends(self) -> bool:
        return self.act in RESENDS


def refuses_stream(error: VendorError) -> bool:
    """Whether an error answer to a streamed request is about streaming itself: a 400 whose message or parameter
    names it."""
    return error.status == REFUSAL_STATUS and STREAM_WORD in error.text.lower()


def judge(error: VendorError, headers: list[tuple[str, str]], body: bytes, asked: Asked) -> Verdict:
    """The verdict on one error answer (`headers` and `body` are kept for the client)."""
    if asked.prefill and refuses_prefill(error.status, body):
        return Verdict(Act.PREFILL, Failure(FailureKind.PREFILL_REFUSED, "the model refused the prefill", error.status,
                                            retryable=False))
    if asked.aggregate and refuses_stream(error):
        return Verdict(Act.RESEND_WITHOUT_STREAM)
    if asked.usage_option and refuses_stream(error) and asked.usage_option in error.text:
        return Verdict(Act.RESEND_WITHOUT_USAGE)
    if asked.refusable:
        return Verdict(Act.RESEND_WITHOUT_PARAMS, drop=asked.refusable)
    if error.kind is ErrorKind.FOREIGN and asked.foreign:
        return Verdict(Act.RESEND_WITHOUT_FOREIGN, drop=tuple(sorted(asked.foreign)))
    failure = decide(error, headers, body, asked.pooled)
    if failure is not None:
        return Verdict(Act.RETRY, failure)
    if (error.status in FALL_THROUGH_STATUS and asked.more and not asked.keeps_errors) or asked.continuation:
        return Verdict(Act.NEXT, Failure(FailureKind.STATUS, f"status {error.status}", error.status, headers, body,
                                         retryable=False))
    return Verdict(Act.CLIENT)
