"""The vendor families and protocols Rotator knows, in registration order (protocols/families/ says what a family
carries, protocols/registration.py what a protocol's registration does), and what the engine derives from them:
families, credential styles, error and window readers, which protocol a family speaks, what a model of a family's
provider accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.base import Protocol
from protocols.capabilities import GUESS, Capabilities
from protocols.vendor_errors import GENERIC, ErrorReader
from protocols.windows import NO_WINDOWS, WindowReader

if TYPE_CHECKING:
    from protocols.families import CredentialStyle, Family
    from protocols.registration import Registration
    from protocols.stored_responses import StoredResponses

_families: dict[str, Family] = {}
_registrations: dict[str, Registration] = {}


def register_family(family: Family) -> Family:
    """Make a vendor family known to the engine; a second one with the same name replaces the first."""
    _families[family.name] = family
    return family


def register(registration: Registration) -> Registration:
    """Make a protocol known to the engine (and its family, if no family of that name is); a second one with the
    same name replaces the first. ValueError for one whose family is not the registered family of its name: a
    provider takes its key one way and its answers mean one thing, whichever protocol it serves."""
    family = registration.family
    known = _families.get(family.name)
    if known is None:
        register_family(family)
    elif known != family:
        raise ValueError(f"protocol {registration.name}: its family differs from the registered {family.name} family")
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
    """The provider families, in the order their first protocol was registered (a family no protocol speaks is no
    provider's)."""
    return tuple(dict.fromkeys(r.family.name for r in _registrations.values()))


def family(name: str) -> Family | None:
    """The family registered under `name`, if any."""
    return _families.get(name)


def family_protocols(family: str) -> tuple[Registration, ...]:
    """The protocols a family's providers speak, its default first."""
    return tuple(r for r in _registrations.values() if r.family.name == family)


def speaking(family: str, choice: str | None = None) -> Protocol:
    """What a provider of `family` speaks: the protocol its `choice` names, else the family's default (its first).
    KeyError for a family no protocol belongs to."""
    spoken = family_protocols(family)
    if not spoken:
        raise KeyError(family)
    return next((r.protocol for r in spoken if choice is not None and r.choice == choice), spoken[0].protocol)


def credential(family: str) -> CredentialStyle:
    """How a family's providers take a key. KeyError for a family nobody registered. (Asked on every attempt.)"""
    return _families[family].credential


def credential_headers() -> frozenset[str]:
    """Every header any family's credential or account travels in."""
    return frozenset(h for f in families()
                     for h in (*_families[f].credential.client_headers, *_families[f].credential.account_headers))


def errors(family: str, protocol: str | None = None) -> ErrorReader:
    """The reader of error answers of the family of the protocol named `protocol`, else of `family` (the HTTP hints
    alone for what nobody registered)."""
    known = _of(family, protocol)
    return known.errors if known is not None else GENERIC


def windows(family: str, protocol: str | None = None) -> WindowReader:
    """The reader of the usage windows the answers of the family of the protocol named `protocol` report, else of
    `family` (none for what nobody registered)."""
    known = _of(family, protocol)
    return known.windows if known is not None else NO_WINDOWS


def _of(family: str, protocol: str | None) -> Family | None:
    """The family of the protocol named `protocol`, else the family named `family`."""
    known = _registrations.get(protocol) if protocol is not None else None
    return _families.get(known.family.name if known is not None else family)


def continuity(name: str) -> StoredResponses | None:
    """The stored-response continuity of the protocol named `name`, if it has one (None for an unknown name)."""
    known = _registrations.get(name)
    return known.continuity if known is not None else None


def model_capabilities(family: str, model: str) -> Capabilities:
    """The built-in capabilities of `model` at a provider of `family` (its family's table: protocols/families/; a
    model another vendor made, served under an id of the family's own, its vendor's table); the family's conservative
    guess (with `known` False) for a model not in the table. Gemini's "models/" prefix is ignored."""
    known, name = _table(family, model)
    return known.capabilities(name) if known is not None else GUESS


def cache_minimum(family: str, model: str) -> int | None:
    """The fewest prompt tokens `model` at a provider of `family` caches (below it nothing is cached, so a
    conversation gains nothing by staying on one key: issue 30); None for a model the vendors' tables do not name
    (an OpenAI-compatible vendor's own, a model newer than the table)."""
    known, name = _table(family, model)
    return known.cache_minimum(name) if known is not None else None


def _table(family: str, model: str) -> tuple[Family | None, str]:
    """The family whose table names `model` at a provider of `family`, and the name it has there."""
    known = _families.get(family)
    moved = known.hosted(model) if known is not None and known.hosted is not None else None
    if moved is not None and (vendor := _families.get(moved[0])) is not None:
        return vendor, moved[1]
    return known, model
