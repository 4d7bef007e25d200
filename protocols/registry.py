"""The protocols Rotator knows, in registration order (protocols/registration.py says what one carries), and
what the engine derives from them: families, credential styles, which protocol a family speaks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.base import Protocol
from protocols.vendor_errors import GENERIC, ErrorReader
from protocols.windows import NO_WINDOWS, WindowReader

if TYPE_CHECKING:
    from protocols.registration import CredentialStyle, Registration
    from protocols.stored_responses import StoredResponses

_registrations: dict[str, Registration] = {}


def register(registration: Registration) -> Registration:
    """Make a protocol known to the engine; a second one with the same name replaces the first. ValueError for
    one whose credential style is not its family's: a provider takes its key one way, whichever protocol it serves."""
    family = [r for r in _registrations.values() if r.family == registration.family and r.name != registration.name]
    if family and family[0].credential != registration.credential:
        raise ValueError(f"protocol {registration.name}: its credential style differs from the one of the "
                         f"{registration.family} family ({family[0].name})")
    _registrations[registration.name] = registration
    return registration


def detect(method: str, path: str) -> Protocol | None:
    """The protocol whose generation call this request (path without query) is, if any."""
    for registration in _registrations.values():
        if registration.protocol.matches(method, path):
            return registration.protocol
    return None


def get(name: str) -> Protocol:
    """The protocol registered under `name`; KeyError if none."""
    return _registrations[name].protocol


def all() -> tuple[Protocol, ...]:
    """Every registered protocol."""
    return tuple(r.protocol for r in _registrations.values())


def registered(name: str) -> Registration:
    """The registration of the protocol named `name`; KeyError if none."""
    return _registrations[name]


def registrations() -> tuple[Registration, ...]:
    return tuple(_registrations.values())


def label(name: str) -> str:
    """What a person reads for the protocol named `name` (the name itself if none is registered under it)."""
    known = _registrations.get(name)
    return known.label if known is not None else name


def families() -> tuple[str, ...]:
    """The provider families, in the order their first protocol was registered."""
    return tuple(dict.fromkeys(r.family for r in _registrations.values()))


def family_protocols(family: str) -> tuple[Registration, ...]:
    """The protocols a family's providers speak, its default first."""
    return tuple(r for r in _registrations.values() if r.family == family)


def speaking(family: str, choice: str | None = None) -> Protocol:
    """What a provider of `family` speaks: the protocol its `choice` names, else the family's default (its first).
    KeyError for a family no protocol belongs to."""
    spoken = family_protocols(family)
    if not spoken:
        raise KeyError(family)
    return next((r.protocol for r in spoken if choice is not None and r.choice == choice), spoken[0].protocol)


def credential(family: str) -> CredentialStyle:
    """How a family's providers take a key (its first protocol's style). KeyError for a family no protocol belongs
    to. (Asked on every attempt: no tuple is built.)"""
    for r in _registrations.values():
        if r.family == family:
            return r.credential
    raise KeyError(family)


def credential_headers() -> frozenset[str]:
    """Every header any family's credential or account travels in."""
    return frozenset(h for r in _registrations.values()
                     for h in (*r.credential.client_headers, *r.credential.account_headers))


def errors(family: str, protocol: str | None = None) -> ErrorReader:
    """The reader of error answers of the protocol named `protocol`, else of the family's default protocol (the
    HTTP hints alone for what nobody registered)."""
    known = _of(family, protocol)
    return known.errors if known is not None else GENERIC


def windows(family: str, protocol: str | None = None) -> WindowReader:
    """The reader of the usage windows the answers of the protocol named `protocol` report, else of the family's
    default protocol (none for what nobody registered)."""
    known = _of(family, protocol)
    return known.windows if known is not None else NO_WINDOWS


def _of(family: str, protocol: str | None) -> Registration | None:
    """The registration of the protocol named `protocol`, else of the family's default protocol."""
    known = _registrations.get(protocol) if protocol is not None else None
    return known or next((r for r in _registrations.values() if r.family == family), None)


def continuity(name: str) -> StoredResponses | None:
    """The stored-response continuity of the protocol named `name`, if it has one (None for an unknown name)."""
    known = _registrations.get(name)
    return known.continuity if known is not None else None
