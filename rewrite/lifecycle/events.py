"""The events the spine announces at fixed points of a request's life, in the order they come, and what a part may
answer where the event asks (rewrite/lifecycle/hooks.py says how parts subscribe).

Per request:  `targets` (the targets chosen) → per target: `paying` (who pays for it: the first answer), `learned`
(what its refusals taught of its model), `shaping` (the client's body as that target is sent it), `encoding` (a
translated target's unified request, before it is encoded) → per attempt: `asking` (before a credential is taken:
parts fill the `Ask`) → `picked` → `hedging` (whether a second attempt is to race this one) → `building` (the body,
each part given the last one's) → `built` (the upstream request as shown, its credential masked) → `tap` (whether a
part keeps the raw answer) → `answered` (an answer's head, and an error's body) → `reading` (the stream's repairer,
each part may wrap it) → `refused` (a vendor error and the spine's one verdict on it) → `first_token` → `ended` (how
the attempt ended) → `target_ended` → `served` (the answer the client got: its usage) → `kept` (its unified answer,
for a part that asked to keep it) → `finished`. An attempt raced: `hedge` when its delay passed without a first token
(the second attempt's own `asking`, `picked`, ... follow), then `raced` as soon as one of the two claims the client's
answer and the other is cancelled (before the winner's `first_token`), or when both failed.

Each event is a small record of what the spine knows at that point, in the views a plug-in reads
(rewrite/lifecycle/views.py): no event carries the spine's own objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from protocols.sse import load_object

if TYPE_CHECKING:
    from protocols.base import Protocol as ClientProtocol
    from protocols.base import Repairer
    from protocols.unified import Answer, Request, Usage
    from protocols.vendor_errors import VendorError
    from rewrite.lifecycle.payer import Ask, Outbound, Payer, Ticket
    from rewrite.lifecycle.views import FlowView, TargetView
    from rewrite.policy.retry import Failure
    from rewrite.policy.verdict import Verdict
    from rewrite.providers import Provider


class LifecycleEvent:
    hook: ClassVar[str]


class Holding(Protocol):
    def holding(self, arrival: Arrival, provider: Provider, model: str) -> bool: ...


@dataclass(slots=True)
class Arrival:
    """A request the engine will serve, told to every plug-in (`Plugin.arrived`, in registration order) as soon as
    the addon hands it over, before its body is read whole: its id, the provider it called in which protocol, its
    path and body (when at hand), and its tokens as the body's size suggests. `held` asks the plug-ins whether one
    must see the whole body before a credential is taken for `provider`'s `model` (`Plugin.holding`)."""

    request_id: str
    called: Provider
    protocol: ClientProtocol
    path: str
    body: bytes | None
    tokens: int  # its estimated tokens (its body's size suggests them: an upper estimate)
    holders: tuple[Holding, ...] = ()

    def held(self, provider: Provider, model: str) -> bool:
        return any(p.holding(self, provider, model) for p in self.holders)


@dataclass(slots=True)
class Refusal:
    """A vendor refused something of `call`'s request (its credential's `key`), and the spine's verdict on it: what it
    teaches is engine-wide, so it is told to every plug-in that keeps it (`Plugin.taught`), engaged in the request or
    not, once its parts heard `refused`. The spine itself leaves what was refused out of the request's next attempts;
    `flow` is the request's, for its notes."""

    call: TargetView
    key: str | None
    verdict: Verdict
    flow: FlowView


@dataclass(slots=True)
class TargetsChosen(LifecycleEvent):
    """The request's targets, in order (a route's, or the called provider alone), each with the model it is asked."""

    hook: ClassVar[str] = "targets"
    chosen: list[tuple[Provider, str]]


@dataclass(slots=True)
class Paying(LifecycleEvent):
    """Who pays for one target: answered with a `Payer` (rewrite/lifecycle/payer.py) by the first part that does;
    nobody answering, the request goes with what the client sent."""

    hook: ClassVar[str] = "paying"
    provider: Provider
    model: str
    called: bool  # the provider of the host the client called
    more: bool = False  # a target of the route follows it (what it cannot serve soon may be left to it)


@dataclass(slots=True)
class Learned(LifecycleEvent):
    """What `provider`'s refusals taught of `model`: answered with `Lessons` (rewrite/lifecycle/lessons.py) by the
    part that keeps them; nobody answering, nothing was learned."""

    hook: ClassVar[str] = "learned"
    provider: Provider
    model: str


@dataclass(slots=True)
class Shaping(LifecycleEvent):
    """The client's body before it is put to one target (`provider` asked for `model`, speaking `upstream`; the client
    `client`), for each target in turn: each part may answer a body in its place (a stored response's lineage
    expanded, ...), the next part given it, or refuse the request (`refused`: (status, body, reason), answered to the
    client at once, nothing sent); `keep_answer`: a part wants the unified answer the target serves (`kept`). A part
    that hears it reads the whole body: a large one is then parsed whole rather than sent as it came.
    `held_elsewhere`: the stored state the request names is held by an account of the target that cannot serve now,
    so the target must be sent what it would resolve itself."""

    hook: ClassVar[str] = "shaping"
    provider: Provider
    model: str
    client: ClientProtocol
    upstream: ClientProtocol
    body: dict
    held_elsewhere: bool = False
    refused: tuple[int, bytes, str] | None = None
    keep_answer: bool = False


@dataclass(slots=True)
class Encoding(LifecycleEvent):
    """A translated target's unified request (`request`, its model set), before it is encoded for the protocol it
    speaks (`upstream`): a part may change it in place (put back the opaque state the target's answers left), and
    answers the `made` marks (protocols.evidence.content_mark) of what was put back, by the fingerprint of the pooled
    key whose answer made them (an attempt on another key of the pool leaves them out), the next part given them;
    `keep_answer`: a part wants the unified answer the target serves (`kept`)."""

    hook: ClassVar[str] = "encoding"
    provider: Provider
    model: str
    upstream: str
    request: Request
    made: dict[str, set[str]] = field(default_factory=dict)
    keep_answer: bool = False


@dataclass(slots=True)
class KeptAnswer(LifecycleEvent):
    """The unified answer the client got from `provider`'s `model` (not an error), for a part that asked to keep it
    (`keep_answer`); again, whole, once a cut one is continued. `key`: the pooled key that made it (None: no pool, or
    the attempts of more than one key made it); `asked`: the client's body as `shaping` left it; `translated`: the
    unified request a translated target was put (None: the target speaks the client's protocol)."""

    hook: ClassVar[str] = "kept"
    provider: Provider
    model: str
    client: str  # the client's protocol's name
    upstream: str  # the target's
    answer: Answer
    key: str | None
    asked: dict | None
    translated: Request | None


@dataclass(slots=True)
class Asking(LifecycleEvent):
    """Before a credential is taken for an attempt: parts fill in the `ask` (a conversation's affinity, ...)."""

    hook: ClassVar[str] = "asking"
    ask: Ask
    call: TargetView | None  # None: a WebSocket upgrade's


@dataclass(slots=True)
class Picked(LifecycleEvent):
    """The credential taken for attempt number `attempt` (from 0), and the ask it answered."""

    hook: ClassVar[str] = "picked"
    ticket: Ticket
    ask: Ask
    attempt: int
    provider: Provider
    model: str
    call: TargetView | None = None  # None: a WebSocket upgrade's


@dataclass(slots=True)
class Building(LifecycleEvent):
    """The JSON body an attempt is about to send (never a sealed one); each part may answer a body of its own in its
    place (what the target refused before left out, ...), the next part given it, and say what it changed in
    `said` (the flow's steps show it). A translated request's body comes as its bytes (`raw`): `parsed()` reads
    it, once, for the part that needs it."""

    hook: ClassVar[str] = "building"
    call: TargetView
    ticket: Ticket
    body: dict | None
    raw: bytes | None = None
    said: list[str] = field(default_factory=list)
    changed: bool = False

    def parsed(self) -> dict | None:
        if self.body is None and self.raw is not None:
            self.body, self.raw = load_object(self.raw), None
        return self.body


@dataclass(slots=True)
class Built(LifecycleEvent):
    """The upstream request of an attempt as a person may see it (`outbound`, the credential masked), when its body
    is not the client's own bytes."""

    hook: ClassVar[str] = "built"
    call: TargetView
    ticket: Ticket
    outbound: Outbound


@dataclass(slots=True)
class Tap(LifecycleEvent):
    """An upstream answer's head, asked whether a part keeps its raw body (answered with an object whose `add` and
    `reader` keep it: rewrite/inspection/steps.py's Capture), when Rotator translates or rewrites it."""

    hook: ClassVar[str] = "tap"
    call: TargetView
    status: int
    content_type: str


@dataclass(slots=True)
class Reading(LifecycleEvent):
    """An attempt's stream repairer before the pump reads into it: each part may answer a repairer wrapping it (to
    read events as they pass), the next part given it."""

    hook: ClassVar[str] = "reading"
    call: TargetView
    ticket: Ticket
    repairer: Repairer


@dataclass(slots=True)
class Answered(LifecycleEvent):
    """An upstream answer's head (`body` empty), or an error answer's head and body; also an answer's event that
    reports windows (`body` its data)."""

    hook: ClassVar[str] = "answered"
    call: TargetView
    ticket: Ticket
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass(slots=True)
class Refused(LifecycleEvent):
    """A vendor error answer (`error`, protocols/vendor_errors.py) and the spine's verdict on it
    (rewrite/policy/verdict.py), before the spine acts on it."""

    hook: ClassVar[str] = "refused"
    call: TargetView
    ticket: Ticket
    error: VendorError
    verdict: Verdict


@dataclass(slots=True)
class FirstToken(LifecycleEvent):
    """The attempt's first content token came (the client's answer is committed to it)."""

    hook: ClassVar[str] = "first_token"
    call: TargetView
    ticket: Ticket


@dataclass(slots=True)
class Hedging(LifecycleEvent):
    """Before attempt number `attempt` (from 0) is sent on `ticket`: whether a second attempt is to race it
    (rewrite/exchange/race.py), answered by the first part that does with the seconds after which it goes when
    the first has no first token by then; nobody answering, the attempt runs alone."""

    hook: ClassVar[str] = "hedging"
    call: TargetView
    ticket: Ticket
    ask: Ask
    attempt: int


@dataclass(slots=True)
class Hedge(LifecycleEvent):
    """The delay answered to `hedging` passed without a first token: answered True by the part that lets the second
    attempt go now (what it spends on it is spent); nobody answering True, the first runs alone."""

    hook: ClassVar[str] = "hedge"
    call: TargetView
    ticket: Ticket  # the first attempt's


@dataclass(slots=True)
class Raced(LifecycleEvent):
    """A race is decided: the `first` attempt's ticket, the `second`'s (None: no credential could be had at once,
    and the first runs alone), which one claims the client's answer (`won`: 0 or 1, announced then, before its
    `first_token`; None: both failed), the loser's ticket and its usage as its vendor reported it before it was
    cancelled (`spent`; None: none reported, or no attempt was cancelled), and the seconds the second was sent after
    the first (`after`)."""

    hook: ClassVar[str] = "raced"
    call: TargetView
    payer: Payer
    first: Ticket
    second: Ticket | None
    won: int | None
    loser: Ticket | None = None  # the attempt cancelled when the other won
    spent: Usage | None = None
    after: float = 0.0


@dataclass(slots=True)
class Ended(LifecycleEvent):
    """An attempt ended: `failure` None when it served the client."""

    hook: ClassVar[str] = "ended"
    call: TargetView | None  # None: a WebSocket upgrade's
    ticket: Ticket
    failure: Failure | None
    payer: Payer


@dataclass(slots=True)
class TargetEnded(LifecycleEvent):
    """A target's attempts are over: `failure` None when it served."""

    hook: ClassVar[str] = "target_ended"
    call: TargetView | None  # None: a WebSocket upgrade's
    payer: Payer
    failure: Failure | None


@dataclass(slots=True)
class Served(LifecycleEvent):
    """The client got its answer from `call`'s target on `ticket`: its `usage` (None if the answer reported none)
    and the whole JSON answer, when it was one. `continuation`: a continuation of a cut answer (the flow's usage is
    the sum)."""

    hook: ClassVar[str] = "served"
    call: TargetView
    ticket: Ticket | None
    payer: Payer
    usage: Usage | None
    continuation: bool = False


@dataclass(slots=True)
class Finished(LifecycleEvent):
    """The engine is done with the request."""

    hook: ClassVar[str] = "finished"
    job: FlowView
    extra: dict = field(default_factory=dict)


EVENTS: tuple[str, ...] = tuple(e.hook for e in (TargetsChosen, Paying, Learned, Shaping, Encoding, Asking, Picked,
                                                  Hedging, Building, Built, Tap, Answered, Reading, Refused, Hedge,
                                                  FirstToken, Ended, Raced, TargetEnded, Served, KeptAnswer, Finished))
