"""Pins: state only the account that made it accepts (a Responses `previous_response_id` or `conversation`, an
`item_reference`, an item's `encrypted_content`, a Gemini `cachedContent`), as conversation evidence names it
(protocols/evidence.py): its kinds, a pin, a call on such state (`StateCall`) and what an answer says the account
keeps (`Kept`)."""

from __future__ import annotations

from dataclasses import dataclass

# Pin kinds: state another account refuses.
PIN_PREVIOUS_RESPONSE = "previous_response_id"  # Responses, stored by the organization that answered it
PIN_CONVERSATION = "conversation"  # Responses' server-side conversation
PIN_ITEM_REFERENCE = "item_reference"  # a stored item named by id
PIN_ENCRYPTED_CONTENT = "encrypted_content"  # a reasoning (or compaction) item's, named by `content_mark`
PIN_CACHED_CONTENT = "cachedContent"  # Gemini's explicit cache

# A body without any of these names carries no pin (a cheap look at the bytes before the body is parsed).
PIN_NAMES = tuple(f'"{kind}"'.encode() for kind in (PIN_PREVIOUS_RESPONSE, PIN_CONVERSATION, PIN_ITEM_REFERENCE,
                                                    PIN_ENCRYPTED_CONTENT, PIN_CACHED_CONTENT, "cached_content"))


@dataclass(frozen=True, slots=True)
class Pin:
    kind: str  # one of the PIN_* kinds
    value: str  # the id, or `content_mark` of the encrypted content


@dataclass(frozen=True, slots=True)
class StateCall:
    """A call other than a generation on state one account holds (Gemini's cachedContents: create, get, update,
    delete): the pin its path names (None: it makes the state, which its answer names), and whether it deletes it."""

    pin: Pin | None
    deletes: bool = False


@dataclass(frozen=True, slots=True)
class Kept:
    """State an answer says the account that answered holds, and for how many seconds more (None: not said)."""

    pin: Pin
    seconds: float | None
