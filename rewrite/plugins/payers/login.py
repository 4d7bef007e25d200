"""The client's own subscription login (rewrite/providers/login.py): sent to its vendor as it came, never pooled,
never replaced by a pooled key, never forged. A body its client signed goes byte for byte (`sealed`); a login known
used up is left for the route's next target, unasked, until its window resets; its refusals are its client's to
see; its answers' plan windows and usage are counted for it, their cost covered by its plan."""

from __future__ import annotations

import math
import time

from protocols.windows import Window, iso, merged
from rewrite.intake.clients import HeldCredential
from rewrite.lifecycle.payer import NO_CREDENTIAL, Ask, Flow, Ticket
from rewrite.plugins.payers.keys import OwnCredential
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import QUOTA_REST, Failure
from rewrite.pool.key_state import WHOLE_KEY
from rewrite.pool.logins import LoginBook, LoginState
from rewrite.providers.login import Login


class PlanLogin(OwnCredential):
    plan = True
    hedged_unasked = False

    def __init__(self, login: Login, held: HeldCredential | None, state: LoginState, book: LoginBook,
                 sealed: bool) -> None:
        super().__init__(True, held)
        self.login, self.state, self.book = login, state, book
        self.sealed = sealed
        self.windows: tuple[Window, ...] = ()  # the plan windows this request's answers reported

    def skip(self, model: str, tokens: float, within: float) -> Failure | None:
        """A login known used up is not asked again until its reset (or its re-check, rewrite/pool/logins.py)."""
        spent = self.book.held_back(self.state, model)
        if spent is None:
            return None
        until = "its reset" if spent[0] == math.inf else iso(spent[0])
        return Failure(FailureKind.PLAN_EXHAUSTED, f"plan exhausted until {until} ({spent[1]})", retryable=False)

    async def attempt(self, ask: Ask) -> Flow:
        """As it came; a used-up quota leaves it to the route's next target until it resets (a model's: for it)."""
        yield NO_CREDENTIAL  # picked
        failure = yield NO_CREDENTIAL  # the attempt runs
        rest = failure.rest if failure is not None else None
        if failure is None and self.state.checking:
            self.book.served(self.state, ask.model)
        if failure is None or rest is None or rest.quota is None:
            self.state.checking = ()
            return
        window = failure.delay if failure.delay is not None else QUOTA_REST
        self.book.exhaust(self.state, time.time() + window, ask.model if rest.per_model else WHOLE_KEY, rest.quota)

    def reported(self, ticket: Ticket | None, model: str, usage=None, cost=None, cold=0.0, windows=()) -> None:
        if windows:
            self.book.reported(self.state, windows)
            self.windows = merged(self.windows, windows)
        if usage is not None:
            self.state.answered(usage.total_tokens)
