"""Who pays for a target's attempts: the spine's one door for credentials (modelled on httpx's `Auth.auth_flow`).

A `Payer` is made per target of a request by the plug-in that answers the `paying` event (rewrite/plugins/payers/):
a pooled key, the client's own credential, a subscription login, and later a cloud platform's signer. Each attempt's
credential is one flow (`attempt`, an async generator), read top to bottom, which the spine drives
(rewrite/exchange/keys.py):

    flow = payer.attempt(ask)
    ticket = await anext(flow)    # picked; `ticket.refused`: why none may be had (nothing to hold, nothing told)
    ...                           # the spine waits what the retry policy asks, or closes the flow: not used
    await anext(flow)             # held while the attempt runs (its lease begins after the wait)
    await flow.asend(failure)     # how it ended (None: served): rests, a plan used up, a throttle

A flow closed at a yield (`aclose()`: a credential not used, an attempt cancelled) gives its credential back and is
told nothing. With `Ask.keeps` a served attempt's credential stays held (its flow suspended once more) until the
spine closes it (a WebSocket, while open). Besides the flow, the payer puts the credential into the upstream request
(`apply`: a header, a query parameter, or a signature over the final bytes), hears what an answer reported
(`reported`), and says whether the body may be changed at all (`sealed`: a body its client signed goes byte for
byte) and whether another credential may be tried after a refusal (`pooled`).

The base class is what a request gets when nobody pays: it goes with what the client sent.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import protocols
from protocols import registry, sigv4
from protocols.base import Protocol
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure
from rewrite.pool import Resting
from rewrite.pool.key_state import mask
from rewrite.providers import Provider

Headers = list[tuple[str, str]]


@dataclass(slots=True)
class Ask:
    """What the next attempt's credential is asked for: the model, the request's estimated tokens (its quota
    windows), the credential that just failed (`avoid`), the one preferred while it may take another request
    (`prefer`: a race's second attempt goes where the first's prompt cache is), and what the parts added (a
    conversation's `affinity`, how long its bound key is waited for while busy: `patience`; the pooled key whose
    account holds the stored state the request continues, as the conversation state recorded it: `holder`, where a
    hard pin goes; a client's budget and limits: `client`)."""

    model: str
    tokens: float = 0
    avoid: str | None = None
    prefer: str | None = None
    affinity: Any = None  # rewrite/pool/affinity.py's Affinity
    patience: float = 0.0
    holder: str | None = None
    patient: bool = True  # a bound key at its max_concurrent is still waited for (the payer turns it off)
    deadline: float = float("inf")  # (loop time) no credential is waited for past it
    keeps: bool = False  # a served attempt's credential stays held until its flow is closed (a WebSocket's)
    # A client's budget and limits, checked by a shared pick in the same step (rewrite/accounting/client_rules.py's
    # ClientHold; the clients plug-in hands it to the first ask); its `refusal` when the pick refused the request.
    client: Any = None


@dataclass(slots=True)
class Ticket:
    """One attempt's credential: `key` a pooled key (None: the client's own, or a login's), `shown` its masked form
    for the flow; `wait` seconds until it may be used; `pick` the pool's decision, for the parts that read it;
    `refused`: why no credential may be had for the attempt (`key`, if named: the one picked, back too late)."""

    key: str | None = None
    shown: str | None = None
    wait: float = 0.0
    pick: Any = None  # rewrite/pool/decisions.py's Pick
    refused: Failure | None = None

    def scrubbed(self, body: bytes, carried: tuple[str, ...] = ()) -> bytes:
        """An upstream answer's `body` without the pooled key nor any credential the attempt `carried`, which some
        vendors quote in a refusal ("Incorrect API key provided: sk-…"): the client, its flow and the flow's steps
        get each masked (the pooled key, and what it went as, a Bedrock key pooled as `<key>@<region>`: its
        masked form in the pool)."""
        for secret in sorted({*carried, *([self.key] if self.key else [])}, key=len, reverse=True):
            if len(secret) >= SCRUBBED_FROM and (raw := secret.encode("utf-8", "surrogateescape")) in body:
                pooled = self.key is not None and (secret == self.key or self.key.startswith(secret + "@"))
                body = body.replace(raw, ((self.shown or "…") if pooled else mask(secret)).encode())
        return body


SCRUBBED_FROM = 8  # characters: a shorter "credential" is scrubbed from no answer (it would mangle its words)
# Every header a credential travels in, and its bearer scheme.
SECRET_HEADERS = frozenset(h for f in registry.families() for h in (*registry.credential(f).client_headers,
                                                                    registry.credential(f).header.lower()))


def carried(headers: Headers, query: str, query_name: str | None) -> tuple[str, ...]:
    """Every credential an upstream request carries, as it goes: each credential header's value and its token (past
    `Bearer `), a SigV4 signature's access key id, the query's key."""
    out: list[str] = []
    for name, value in headers:
        if name.lower() in SECRET_HEADERS:
            out.append(value.strip())
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                out.append(token.strip())
    signed = sigv4.signature(headers)
    if signed is not None:
        out.append(signed.access_key_id)
    if query_name and query:
        out += [v for k, v in parse_qsl(query, keep_blank_values=True) if k == query_name]
    return tuple(v for v in out if not v.startswith(sigv4.SCHEME))


@dataclass(slots=True)
class Outbound:
    """An upstream request before it is handed to the client: what `apply` puts the credential into."""

    method: str
    url: str  # without the query
    query: str
    headers: Headers
    content: Any  # bytes, or a large body's Upload
    extra: dict = field(default_factory=dict)


NO_CREDENTIAL = Ticket()
Flow = AsyncGenerator[Ticket, "Failure | None"]  # one attempt's credential (the module's docstring)


@dataclass(slots=True)
class Taken:
    """A credential picked for an attempt, its flow suspended at the pick (what the spine holds of it)."""

    ticket: Ticket
    flow: Flow


class Payer:
    """Nobody pays: the request goes with what the client sent (see the module's docstring for the others)."""

    pooled = False  # another credential may be tried after one was refused
    sealed = False  # the body goes upstream byte for byte: nothing may rewrite it
    # A client's own plan pays (a subscription login's): its answers' cost is covered (counted for the plan, not
    # priced), and its error answers are its client's to see (never left for the route's next target).
    plan = False
    # The top level's hedging applies to it; not to a client's own plan (a login's), which a second attempt would
    # spend twice: only its provider's own `hedging` turns it on (rewrite/plugins/hedging.py).
    hedged_unasked = True

    async def attempt(self, ask: Ask) -> Flow:
        """One attempt's credential (the module's docstring): here nobody's, nothing held, nobody told."""
        yield NO_CREDENTIAL  # picked
        yield NO_CREDENTIAL  # while the attempt runs

    def skip(self, model: str, tokens: float, within: float) -> Failure | None:
        """The failure when this target is known unable to serve within `within` seconds (every key resting that
        long, a plan used up): skipped untried while more targets follow."""
        return None

    def body(self, body: dict) -> dict:
        """The client's body as this target may be sent it (a login's own members left out for another target)."""
        return body

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        """`out` with the credential in place (`shown`: as a person may see it, masked)."""
        return out

    def reported(self, ticket: Ticket | None, model: str, usage: Any = None, cost: float | None = None,
                 cold: float = 0.0, windows: tuple = ()) -> None:
        """What an answer on `ticket` reported, as a plug-in read it: its usage (protocols/unified.py's Usage) and
        cost (`cold`: its cache writes' part), or its usage windows (protocols/windows.py)."""


AS_IT_CAME = Payer()


class Unpaid(Payer):
    """Who pays could not be told (the plug-in that decides it failed): every attempt fails with `failure`, nothing
    sent upstream."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure

    async def attempt(self, ask: Ask) -> Flow:
        yield Ticket(refused=self.failure)


def error_protocol(provider: Provider, proto: Protocol | None) -> Protocol:
    """The protocol whose error shape answers a request: its own, else its provider's family's."""
    return proto or next(p for p in protocols.all() if p.family == provider.family)


def every_key_resting(provider: Provider, proto: Protocol | None, resting: Resting, windows: bool = False) -> Failure:
    """The answer when no key of the pool may be used within first_token_timeout, in the protocol's error shape
    (else its family's): 401 if the vendor rejected every key, else 429 with the seconds until the first key is
    back (whole seconds, rounded up: a rest's end, or a quota window's reset; `windows`: keys were passed over for
    one), or 1 when every usable key is at its max_concurrent."""
    seconds = 1 if resting.busy or resting.rejected else math.ceil(resting.seconds)
    if resting.rejected:
        status, extra = 401, []
        message = (f"Rotator: the vendor rejected every key of the {provider.name} pool (401/403); they are used "
                   "again when the config is reloaded")
    elif resting.pinned:
        status, extra = 429, [("retry-after", str(seconds))]
        message = (f"Rotator: the key of the {provider.name} pool that holds this conversation's {resting.pinned} "
                   f"is rate limited for {seconds} s more (another key's account would not find it)")
    elif resting.busy:
        status, extra = 429, [("retry-after", "1")]
        message = f"Rotator: every key of the {provider.name} pool is at its max_concurrent"
    else:
        status, extra = 429, [("retry-after", str(seconds))]
        limited = "rate limited or over a quota window" if windows else "rate limited"
        message = f"Rotator: every key of the {provider.name} pool is {limited} for {seconds} s more"
    body = error_protocol(provider, proto).error_body(status, message)
    reason = ("every key rejected" if resting.rejected else "every key busy" if resting.busy
              else f"the conversation's key rate limited, for {seconds} s more" if resting.pinned
              else f"every key rate limited, for {seconds} s more")
    return Failure(FailureKind.KEYS_RESTING, reason, status, [("content-type", "application/json"), *extra], body,
                   retryable=False)
