"""Stored-response continuity, as a protocol's registration describes it: a request may name an earlier response
its vendor stored instead of repeating the conversation (OpenAI Responses' `previous_response_id`).

A target that never served that response (another protocol's, or another provider) cannot resolve it; the engine
keeps the responses it served and replays the conversation for such a target (rewrite/conversation/continuity.py).
This is what it asks the protocol for: pure reads and writes of the protocol's bodies.
"""

from __future__ import annotations

from protocols.unified import Answer


class StoredResponses:
    """How a protocol's requests name an earlier response, and how its conversation is replayed in their place."""

    def previous(self, body: dict) -> object:
        """What the request names as the response it continues (None or "": none; anything else not a string
        names no response anyone holds)."""
        raise NotImplementedError

    def stored(self, body: dict) -> bool:
        """Whether the vendor keeps this request's response (if not, it is needed only until a later turn
        continues it)."""
        raise NotImplementedError

    def input_items(self, body: dict) -> list:
        """The request's own input, as items a replay puts in front of a later request's."""
        raise NotImplementedError

    def output_items(self, answer: Answer) -> list[dict]:
        """An answer's output as input items, for replay."""
        raise NotImplementedError

    def expanded(self, body: dict, items: list, previous: str | None) -> dict:
        """`body` with `items` in front of its own input, naming `previous` as the response it continues instead
        (None: none)."""
        raise NotImplementedError

    def response_id(self, answer_id: str) -> str | None:
        """The id the client reads for an answer of that upstream id; None when it names no one turn (an upstream
        that gave no id)."""
        raise NotImplementedError

    def unknown(self, response_id: str) -> tuple[int, bytes]:
        """The vendor's own answer (status, body) to a request continuing a response nobody holds."""
        raise NotImplementedError
