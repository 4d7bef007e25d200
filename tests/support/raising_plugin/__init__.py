"""A plug-in from outside Rotator's tree whose every observing hook raises (each event of a request but `paying`, and
the engine-wide `arrived` and `forgotten`): the spine logs its error once, with its name, and serves the request as if
it were not there (rewrite/lifecycle/hooks.py). Registered in one line by its mitmdump script (rotator.py beside it)."""

from __future__ import annotations

from rewrite.lifecycle.events import EVENTS
from rewrite.lifecycle.hooks import Part, Plugin

NAME = "always-raising"


class Bug(RuntimeError):
    pass


def _raise(self, *args) -> None:
    raise Bug(f"{NAME} is broken")


class AlwaysRaising(Plugin):
    name = NAME
    arrived = forgotten = _raise

    def engage(self, ctx) -> Part | None:
        return Raising()


# (every event but the one that decides who pays: a plug-in that fails there fails the target, as it must)
Raising = type("Raising", (Part,), {hook: _raise for hook in EVENTS if hook != "paying"})
