"""The client's own credential: sent to the vendor it called, as it came (the addon took it out of the flow and holds
it: rewrite/intake/clients.py); never to another vendor. Also the base of the other payers: what any target that is
not the one the client called gets of the client's headers and body."""

from __future__ import annotations

from rewrite.intake.clients import HeldCredential
from rewrite.lifecycle.payer import Outbound, Payer, Ticket
from rewrite.providers.wire import Wire
from rewrite.routing.targets import CREDENTIAL_HEADERS


class Departing(Payer):
    """A target's payer: for a target the client did not call, what the client sent for its own vendor is left
    behind (every credential and account header, and what comes with a login's or a platform's call: `leaving`, the
    wire of the provider it called, rewrite/providers/wire.py)."""

    def __init__(self, called: bool, leaving: Wire | None) -> None:
        self.called = called
        self.leaving = leaving if not called else None

    def body(self, body: dict) -> dict:
        return self.leaving.foreign_body(body) if self.leaving is not None else body

    def depart(self, out: Outbound) -> Outbound:
        if not self.called:
            out.headers = [(n, v) for n, v in out.headers if n.lower() not in CREDENTIAL_HEADERS]
            if self.leaving is not None:  # (Claude's OAuth beta, a login's session headers)
                out.headers = self.leaving.foreign(out.headers)
        return out


class OwnCredential(Departing):
    """No pool: the client's credential to the vendor it called (`held`), none to another."""

    def __init__(self, called: bool, held: HeldCredential | None, leaving: Wire | None = None) -> None:
        super().__init__(called, leaving)
        self.held = held

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        out = self.depart(out)
        if self.called and not shown and self.held:  # (shown: the flow's masked form, as it arrived)
            out.headers, out.query = self.held.restore(out.headers, out.query)
        return out
