"""A request its client signed with AWS SigV4 (protocols/sigv4.py), to a provider that signs its requests
(rewrite/providers/signer.py) and has no pool: the signature covers the body, the raw path, the host (so the region)
and the headers the client chose, so it goes byte for byte (`sealed`: what would rewrite it is skipped, and the
flow says so) with every signed header as the client sent it. An attempt again is the identical request, while AWS
still takes its signature (`sigv4.LIFETIME` from its time, less a margin for the trip); a throttle is counted for
the access key id and region (the provider's `SignerBook`, shown on the status page), which cools down a while: with
a route's next target to go to, its requests are left to it meanwhile, unasked."""

from __future__ import annotations

import time

from protocols.sigv4 import Signature
from protocols.vendor_errors import ErrorKind
from protocols.windows import iso
from rewrite.intake.clients import HeldCredential
from rewrite.lifecycle.payer import NO_CREDENTIAL, Ask, Flow, Outbound, Ticket
from rewrite.plugins.payers.keys import OwnCredential
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import RESTING, Failure
from rewrite.pool.signers import SignerBook, SignerState

MARGIN = 20.0  # seconds before the signature's end that no attempt starts (it must reach AWS before then)
COOL = 5.0  # seconds a throttled credential is left to a route's next target, when the vendor names no delay
THROTTLED = RESTING[ErrorKind.RATE_LIMITED]
KEPT_BY_TRANSPORT = frozenset({"host", "content-length"})  # (written by the transport as they were signed)


class ClientSigned(OwnCredential):
    sealed = True

    def __init__(self, held: HeldCredential | None, signature: Signature, client_headers: list[tuple[str, str]],
                 book: SignerBook, more: bool, wall=time.time) -> None:
        super().__init__(True, held)
        self.signature, self.book, self.more, self.wall = signature, book, more, wall
        self.state: SignerState = book.signer(signature.access_key_id, signature.region)
        signed = set(signature.signed_headers) - KEPT_BY_TRANSPORT
        self.signed = [(n, v) for n, v in client_headers if n.lower() in signed]

    def _expired(self) -> str | None:
        """Why AWS would no longer take the signature, if it would not."""
        expires = self.signature.expires()
        if expires is not None and self.wall() >= expires - MARGIN:
            return f"the client's signature expired (made at {iso(self.signature.signed_at or 0)})"
        return None

    def _cooling(self) -> str | None:
        cooling = self.book.cooling(self.state)
        return f"{self.state.shown} is throttled, cooling down {cooling:.0f} s" if cooling else None

    def skip(self, model: str, tokens: float, within: float) -> Failure | None:
        why = self._expired() or self._cooling()
        return Failure(FailureKind.KEYS_RESTING, why, retryable=False) if why else None

    async def attempt(self, ask: Ask) -> Flow:
        """The same signed request again, while AWS takes its signature (and, with a next target, while its
        credential is not cooling down after a throttle); a throttle cools it down (its delay, else COOL)."""
        if why := self._expired() or (self._cooling() if self.more else None):
            yield Ticket(refused=Failure(FailureKind.KEYS_RESTING, why, retryable=False))
            return
        yield NO_CREDENTIAL  # picked
        failure = yield NO_CREDENTIAL  # the attempt runs
        throttled = failure is not None and failure.rest is not None and failure.rest.why.startswith(THROTTLED)
        cool = (failure.delay or COOL) if failure is not None else None
        self.book.ended(self.state, throttled, failure is not None, cool)

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        """The client's credential back (not for the flow's masked form), and every header it signed as it sent it
        (what Rotator asks of every upstream, an accept-encoding, is not what it signed)."""
        out = super().apply(out, ticket, shown)
        names = {n.lower() for n, _ in self.signed}
        out.headers = [(n, v) for n, v in out.headers if n.lower() not in names] + self.signed
        return out

    def reported(self, ticket: Ticket | None, model: str, usage=None, cost=None, cold=0.0, windows=()) -> None:
        if usage is not None:
            self.state.tokens += max(0, int(usage.total_tokens))
