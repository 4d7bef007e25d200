"""Quota windows (protocols/windows.py; rewrite/pool/windows.py decides on them): the windows each answer reports
(its head, an error's body, and the stream events a login's plan reports them in) read by the target's reader and
given to the payer of the credential that got them (a pooled key's, passed over before it runs out; a login's plan);
the flow keeps what this request's answers reported, and says which keys a pick passed over for a window, which one
and until when (once a key)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from protocols.base import Repairer, RepairerAround
from protocols.events import Event
from protocols.windows import Window, for_model, iso, merged
from rewrite.lifecycle.events import Answered, Finished, Picked, Reading
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.payer import Ticket
from rewrite.lifecycle.views import RequestView, TargetView
from rewrite.policy.outcomes import Note
from rewrite.pool.keypool import masked_in
from rewrite.pool.windows import passed_over


class Windows(Plugin):
    name = "windows"

    def engage(self, ctx: RequestView) -> Part | None:
        # (a stream whose events report a plan's windows is a login's, the provider the client called: no other's
        # request is put to a login)
        return WatchingEvents(ctx) if ctx.job.route.provider.window_events else Watching(ctx)


class Watching(Part):
    def __init__(self, ctx: RequestView) -> None:
        self.job = ctx.job
        self.noted: set[str] = set()  # the keys noted as passed over
        self.windows: tuple[Window, ...] = ()  # what this request's answers reported of pooled keys' windows

    def answered(self, e: Answered) -> None:
        self._seen(e.call, e.ticket, e.status, e.headers, e.body)

    def _seen(self, call: TargetView, ticket: Ticket, status: int, headers: list, body: bytes) -> None:
        if not call.windows or (ticket.key is None and not call.payer.plan):
            return
        windows = for_model(call.windows.read(status, headers, body, time.time()), call.model)
        if windows:
            call.payer.reported(ticket, call.model, windows=windows)
            if not call.payer.plan:  # (a plan's windows are its payer's to record, with the plan)
                self.windows = merged(self.windows, windows)

    def finished(self, e: Finished) -> None:
        """The rate-limit windows this request's answers reported of pooled keys, for the flow."""
        if self.windows:
            self.job.records["windows"] = [w.as_json() for w in self.windows]

    def picked(self, e: Picked) -> None:
        """Say on the flow which keys the pick passed over for a quota window, which window (as this process knows
        it) and until when (once a key)."""
        pick = e.ticket.pick
        pool, now = e.provider.pool, time.time()
        if pick is None or not pick.passed or pool is None:
            return
        known = {s.secret: (label, unit) for s, label, unit, _ in
                 passed_over(pool.states, pool.quotas, e.model, e.ask.tokens, now)}
        for key, seconds in pick.passed:
            if key == pick.key or key in self.noted:
                continue
            self.noted.add(key)
            label, unit = known.get(key, ("", ""))
            what = f"its {label} {unit} window" if label else "a quota window the request counts in"
            said = masked_in(pool, key)
            self.job.note(Note.WINDOW, f"key {said} passed over: {what} would be exceeded (resets "
                          f"{iso(now + seconds)}, in {math.ceil(seconds)} s)", key=said, window=label or None,
                          unit=unit or None, resets_at=iso(now + seconds))


class WatchingEvents(Watching):
    """Where a provider's streams report its plan's windows in their events: those read too."""

    def reading(self, e: Reading) -> Repairer | None:
        """A login's stream whose events report its plan's windows (Codex's `codex.rate_limits`): read as they
        pass."""
        call = e.call
        kinds = call.provider.window_events
        if not kinds or not call.payer.plan or not call.windows:
            return None
        return PlanEvents(e.repairer, kinds, lambda status, headers, body: self._seen(call, e.ticket, status,
                                                                                     headers, body))


class PlanEvents(RepairerAround):
    """A stream repairer, fed as before, whose events of `kinds` (by type) are also read by `seen` as an answer's
    body: the plan windows they report."""

    def __init__(self, inner: Repairer, kinds: frozenset[str], seen: Callable[[int, list, bytes], None]) -> None:
        self.inner, self.seen = inner, seen
        self.marks = tuple(kind.encode() for kind in kinds)

    def feed(self, event: Event) -> bytes:
        if event.data is not None and any(mark in event.raw for mark in self.marks):
            self.seen(200, [], event.data.encode())
        return self.inner.feed(event)

    def quiet(self, block: bytes) -> bool:
        return self.inner.quiet(block) and not any(mark in block for mark in self.marks)
