"""A plug-in from outside Rotator's tree, to show the lifecycle's door (rewrite/lifecycle/hooks.py): it counts the
answers each credential served, from the spine's `served` event alone, and records the running counts on each flow
(`rotator.answers_per_key`, keys masked as the spine shows them). Registered in one line by its mitmdump script
(rotator.py beside it), with no change to the engine."""

from __future__ import annotations

from collections import Counter

from rewrite.lifecycle.events import Served
from rewrite.lifecycle.hooks import Part, Plugin

RECORD = "answers_per_key"
OWN = "the client's own"


class AnswersPerKey(Plugin):
    name = "answers-per-key"

    def configure(self, setting) -> None:
        self.counts: Counter[str] = getattr(self, "counts", Counter())

    def engage(self, ctx) -> Part | None:
        return Counting(self.counts, ctx.job)


class Counting(Part):
    def __init__(self, counts: Counter, job) -> None:
        self.counts, self.job = counts, job

    def served(self, e: Served) -> None:
        shown = e.ticket.shown if e.ticket is not None and e.ticket.shown else OWN
        self.counts[shown] += 1
        self.job.records[RECORD] = dict(self.counts)
