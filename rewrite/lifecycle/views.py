"""What a plug-in sees of a request: the read-only views its events carry (rewrite/lifecycle/events.py), and what a
part may answer. Each view is a Protocol the spine's own objects satisfy as they are (nothing is copied for a
plug-in), typed with what plug-ins read and nothing else: a plug-in types against these, never against
rewrite/exchange/, and the spine against these where a plug-in answers it.

- `RequestView`: one request, as `engage` is given it: its flow's record (`FlowView`), the client's request
  (`ClientView`), the engine's setting, its clock and upstream client.
- `TargetView`: one target of it (a provider asked for a model), as each per-target event carries it, with how its
  request is put (`SendingView`).
- An attempt is its credential (`Ticket`, rewrite/lifecycle/payer.py) and how it ended (`Failure`); an answer its
  usage (`Usage`, protocols/unified.py): the events carry those as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from protocols.base import Protocol as Speaks
    from protocols.vendor_errors import ErrorReader
    from protocols.windows import WindowReader
    from rewrite.accounting.usage import Meter
    from rewrite.adapters import AdapterChain
    from rewrite.config import StreamingConfig
    from rewrite.intake.big_json import Parsed
    from rewrite.intake.clients import HeldCredential
    from rewrite.intake.loopback import LoopbackRequest
    from rewrite.lifecycle.payer import Payer
    from rewrite.lifecycle.setting import Setting
    from rewrite.policy.outcomes import Note
    from rewrite.providers import Provider
    from rewrite.routing.router import Route
    from rewrite.upstream.client import Sender


class Tapped(Protocol):
    """What keeps an upstream answer's raw body as the attempt reads it (a part's answer to `tap`)."""

    def add(self, data: bytes) -> None: ...

    def reader(self, next_piece: Callable[[], Awaitable[bytes]]) -> Callable[[], Awaitable[bytes]]: ...


class IntakeView(Protocol):
    """What the addon handed the engine with a flow."""

    @property
    def client(self) -> str: ...  # who sent it: its client key's name, else its address
    @property
    def credential(self) -> HeldCredential | None: ...  # the client's own, held out of the flow


class FlowView(Protocol):
    """What the flow records of the request (mitmweb, saved flows): a plug-in adds to `records` under its name (the
    accounting plug-in the answer's usage and cost), and notes what happened."""

    @property
    def id(self) -> str: ...
    @property
    def route(self) -> Route: ...
    @property
    def intake(self) -> IntakeView: ...  # what the addon handed over with it
    @property
    def model(self) -> str | None: ...  # the model asked of the target tried last
    @property
    def records(self) -> dict: ...

    def note(self, kind: Note, detail: str, **extra: Any) -> None: ...


class ClientView(Protocol):
    """The client's request, as it came (a generation call's JSON body parsed, when it is one)."""

    @property
    def request(self) -> LoopbackRequest: ...
    @property
    def proto(self) -> Speaks | None: ...  # the protocol it speaks; None: not a generation call
    @property
    def path(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def body(self) -> dict: ...
    @property
    def plain(self) -> bytes: ...
    @property
    def asked(self) -> str: ...  # the model it asked for
    @property
    def parsed(self) -> Parsed | None: ...
    @property
    def meter(self) -> Meter: ...
    @property
    def size(self) -> int: ...


class ClockView(Protocol):
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    async def supervise(self, task: asyncio.Future, deadline: Callable[[], float]) -> bool: ...


class AnswersView(Protocol):
    def whole_answer(self) -> bytes | None: ...


class RequestView(Protocol):
    """One request, as a plug-in's `engage` is given it (`req` None: a WebSocket upgrade)."""

    @property
    def job(self) -> FlowView: ...
    @property
    def req(self) -> ClientView | None: ...
    @property
    def setting(self) -> Setting: ...
    @property
    def streaming(self) -> StreamingConfig: ...
    @property
    def clock(self) -> ClockView: ...
    @property
    def client(self) -> Sender: ...
    @property
    def answers(self) -> AnswersView: ...


class TranslationView(Protocol):
    """A request put to a target of another protocol than the client's."""

    @property
    def client(self) -> str: ...  # the client's protocol's name
    @property
    def upstream(self) -> str: ...  # the target's
    @property
    def fitted(self) -> list[str]: ...  # what was changed to fit the target model, in words
    @property
    def made(self) -> dict[str, set[str]]: ...  # marks of the state put back, by the pooled key whose answer made it


class SendingView(Protocol):
    """How a target's request is put to it (the current attempt's): what of the client's it keeps, what rewrites it,
    and how its answer is asked for."""

    @property
    def unchanged(self) -> bool: ...  # its body and path are the client's
    @property
    def rewrites(self) -> AdapterChain: ...  # the adapters its requests and answers go through (a translation's too)
    @property
    def continues_by(self) -> str | None: ...  # how a continuation asks ("prefill", "instruction"), else None
    @property
    def expanded(self) -> bool: ...  # sent whole (its stored state expanded): the key holding that state rests
    @property
    def upstream_stream(self) -> bool: ...
    @property
    def aggregate(self) -> bool: ...  # sent as a stream, the answer folded back into JSON
    @property
    def ask_usage(self) -> bool: ...  # asked for the usage chunk
    @property
    def said(self) -> list[str]: ...  # what the plug-ins changed of its body, in words


class TargetView(SendingView, Protocol):
    """One target of a request: `provider` asked for `model` in `protocol`, paid for by `payer`, how its answers read
    (`errors`, `windows`), and how its request is put (`SendingView`)."""

    @property
    def provider(self) -> Provider: ...
    @property
    def model(self) -> str: ...
    @property
    def payer(self) -> Payer: ...
    @property
    def name(self) -> str: ...  # "provider/model", as the flow names it
    @property
    def protocol(self) -> Speaks | None: ...  # what the target speaks
    @property
    def translation(self) -> TranslationView | None: ...
    @property
    def errors(self) -> ErrorReader: ...
    @property
    def windows(self) -> WindowReader: ...
