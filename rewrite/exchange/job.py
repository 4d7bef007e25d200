"""What the engine tells the addon about one flow (`Job`), and the answers in a protocol's error shape that more than
one part of the engine gives."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import protocols
from rewrite.intake.clients import HeldCredential
from rewrite.intake.loopback import Responder
from rewrite.lifecycle.payer import error_protocol
from rewrite.policy.outcomes import Note
from rewrite.providers import Provider
from rewrite.routing.router import Route

if TYPE_CHECKING:
    from rewrite.intake.big_json import Parsed
    from rewrite.pool.decisions import Prefetch

logger = logging.getLogger("rotator")


@dataclass
class Job:
    """What the engine tells the addon about one flow: for mitmweb, saved flows and the log."""

    id: str
    route: Route
    # The provider that answered (or is being tried, with `model`: see targets); the called host's (`route`'s) until
    # a target is chosen.
    provider: Provider
    key: str | None = None  # the masked form of the pooled key last used
    notes: list[dict] = field(default_factory=list)
    responder: Responder | None = None
    # The client's own credential, taken out of the flow by the addon; sent upstream when there is no pool.
    credential: HeldCredential | None = None
    # Who sent it, for conversation affinity's scope: its client key's name (`clients`), else its address.
    client: str = ""
    ttft: float | None = None  # seconds from the request to its first token (for the flow's view)
    # The client was sent its stream's ending (the protocol's own, a repair, or an error event): a client that
    # leaves after that got its whole answer, and the flow is not an error.
    delivered: bool = False
    on_received: Callable[[], None] | None = None  # called when the loopback server has read the request
    started: float = 0.0  # when the client's request started (epoch seconds), for the status page
    # A body the request hook read (its bytes, and read_body's answer) for a request that goes on to the loopback
    # server (a stream's): the server's request takes the reading when its body is the same (rewrite/engine.py).
    read: tuple[bytes, Parsed] | None = None
    usage: dict | None = None  # the answer's normalised usage (rewrite/accounting/usage.py), when it reported one
    cost: float | None = None  # its cost in USD; None: unknown (no usage, or the model has no price)
    model: str | None = None  # the model asked of the target being tried, or that answered
    # Every target tried, in order: provider, model, protocol, and how it ended (rewrite/routing/targets.py).
    targets: list[dict] = field(default_factory=list)
    resume: list[dict] = field(default_factory=list)  # each continuation of a cut answer (rewrite/exchange/resume.py)
    too_large: bool = False  # its body was past limits.max_request_body and was dropped unread (a 413)
    prefetch: Prefetch | None = None  # its first attempt's shared pick, started at the request hook
    covered: bool = False  # the answer's cost is covered by the login's plan (not priced as pay-as-you-go)
    # What the plug-ins record of the request for the flow (rewrite/lifecycle/), under their own names: JSON-like,
    # no key unmasked; the addon puts it in `flow.metadata["rotator"]` (saved flows carry it).
    records: dict = field(default_factory=dict)
    # Set when the engine is done with it: a client that leaves as soon as it has its answer's ending (the OpenAI
    # SDK at [DONE]) ends the flow before the engine has recorded what came after (a seam, the usage).
    handled: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, kind: Note, detail: str, **extra) -> None:
        self.notes.append({"kind": kind, "detail": detail, **extra})
        logger.info("rotator: %s %s: %s: %s", self.provider.name, self.id[:8], kind, detail)


def refusal_body(provider: Provider, method: str, path: str, status: int, message: str) -> bytes:
    """Rotator's own refusal of a request to `provider`, before any attempt: in the request's protocol's error
    shape; on other paths (or a protocol of another family), in the shape of the provider's family."""
    proto = protocols.detect(method, path)
    same_family = proto is not None and proto.family == provider.family
    return error_protocol(provider, proto if same_family else None).error_body(status, message)
