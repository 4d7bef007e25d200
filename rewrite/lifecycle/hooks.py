"""Plug-ins, and the dispatch of the spine's events to them for one request.

Modelled on mitmproxy's addon manager: a plug-in class is registered once (`register`, one line, in order, like a
protocol's package). Each engine makes one instance of each (`Plugin(setting)`), told the configuration whenever it
changes (`configure`). For each request the spine asks every plug-in to `engage`: a plug-in with nothing to do for
this request answers None and costs nothing more; one that engages answers its `Part`, whose methods named after the
events it wants (`picked`, `ended`, ...: the events' `hook` names, rewrite/lifecycle/events.py) are called when the
spine announces them, in registration order. A part keeps what it learns of its request in its own attributes: the
spine's objects carry no plug-in's state.

A plug-in that must hear an event of every request, engaged or not (what it learns across requests: a refusal),
defines that event's method itself; it is told in its place in the order, before its part. A part may also join a
request under way (`Hooks.join`), from the point where it first has work: the plug-in's own handler joins it.

Events that ask (`Decision`s) are answered by the first part that answers, or by every part in turn (`Shaping`
events, each part given what the previous made).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from rewrite.lifecycle.events import EVENTS, Arrival, Event

if TYPE_CHECKING:
    from rewrite.lifecycle.setting import Setting


class Part:
    """A plug-in's part in one request: define a method named after each event to be told of (its `hook`)."""


class Plugin:
    """One concern of a request's life. Subclasses override `engage` (and `configure`, to read the config)."""

    name: ClassVar[str] = ""
    # Whether it may engage at all under the configuration (read by the spine before it asks `engage`: a plug-in the
    # config turns off costs a request nothing).
    active: bool = True
    # Whether it defines an event's method itself, heard in every request (see the module's docstring).
    hears: bool = False

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.hears = bool(_hooks_of(type(self)))
        self.configure(setting)

    def configure(self, setting: Setting) -> None:
        """The engine's configuration changed (also called once when the plug-in is made)."""

    def arrived(self, arrival: Arrival) -> None:
        """A request was handed to the engine (before its body is read whole: rewrite/lifecycle/events.py)."""

    def worker_ask(self, proto: Any, headers: list, path: str) -> Any:
        """What this plug-in wants the big-body worker to read of a large body besides its skeleton
        (rewrite/intake/big_json.py), or None."""
        return None

    def forgotten(self, job: Any) -> None:
        """The engine is done with a request's job (served, or ended before it was)."""

    def engage(self, ctx: Any) -> Part | None:
        """This plug-in's part in the request of `ctx` (rewrite/exchange/context.py), or None when it has nothing
        to do for it."""
        return None


_registered: list[type[Plugin]] = []


def register(plugin: type[Plugin]) -> type[Plugin]:
    """Make a plug-in known to every engine made from now on; a second one of the same name replaces the first, in
    its place (usable as a class decorator)."""
    for i, known in enumerate(_registered):
        if known.name == plugin.name:
            _registered[i] = plugin
            return plugin
    _registered.append(plugin)
    return plugin


def registered() -> tuple[type[Plugin], ...]:
    return tuple(_registered)


def engaged(plugins: Iterable[Plugin], ctx: Any) -> Hooks:
    """The parts the active plug-ins engage for the request of `ctx`, each after its plug-in when the plug-in hears
    an event itself."""
    heard: list[Any] = []
    for plugin in plugins:
        if plugin.hears:
            heard.append(plugin)
        if plugin.active and (part := plugin.engage(ctx)) is not None:
            heard.append(part)
    return Hooks(heard)


def plugins_for(setting: Setting) -> list[Plugin]:
    """One instance of each registered plug-in, for an engine (or a request made without one) of this setting."""
    return [kind(setting) for kind in registered()]


def defining(plugins: Iterable[Plugin], name: str) -> list[Plugin]:
    """The plug-ins whose class defines its own engine-wide hook `name` (`arrived`, `forgotten`, `worker_ask`): the
    others' is the base's, which does nothing, and is not called."""
    return [p for p in plugins if getattr(type(p), name) is not getattr(Plugin, name)]


_subscribed: dict[type, tuple[str, ...]] = {}


def _hooks_of(kind: type) -> tuple[str, ...]:
    """The events a part's class subscribes to: the event hooks it defines."""
    names = _subscribed.get(kind)
    if names is None:
        names = _subscribed[kind] = tuple(name for name in EVENTS if callable(getattr(kind, name, None)))
    return names


def _plan_of(parts: tuple[Part | Plugin, ...]) -> dict[str, tuple[tuple[int, Callable], ...]]:
    """Each event's handlers among `parts`, as (the part's place, its class's function). Worked out once for each
    line-up of classes: a request then makes no bound method for handlers it never calls (making them was most of
    what dispatch cost a request)."""
    kinds = tuple([type(part) for part in parts])
    plan = _plans.get(kinds)
    if plan is None:
        by_hook: dict[str, list[tuple[int, Callable]]] = {}
        for i, kind in enumerate(kinds):
            for name in _hooks_of(kind):
                by_hook.setdefault(name, []).append((i, _unbound(kind, name)))
        plan = {name: tuple(handlers) for name, handlers in by_hook.items()}
        if len(_plans) < PLANS_KEPT:  # (line-ups are few: the plug-ins that engage; bounded all the same)
            _plans[kinds] = plan
    return plan


def _unbound(kind: type, name: str) -> Callable:
    """The hook `name` of `kind`, called with the part and the event."""
    found = inspect.getattr_static(kind, name)
    if isinstance(found, types.FunctionType):
        return found
    return lambda part, event: getattr(part, name)(event)  # (a static method, a callable object: as bound)


PLANS_KEPT = 1024
_plans: dict[tuple[type, ...], dict[str, tuple[tuple[int, Callable], ...]]] = {}


class Hooks:
    """One request's engaged parts (and the plug-ins that hear an event themselves), by the events they want."""

    __slots__ = ("parts", "_plan")

    def __init__(self, parts: Iterable[Part | Plugin]) -> None:
        self.parts = tuple(parts)
        self._plan = _plan_of(self.parts)

    def join(self, part: Part) -> None:
        """`part` engaged from now on, after those engaged before (an event being announced is not told to it).
        NO_HOOKS, a request's before its parts engage and after it is done, takes none: it is every request's."""
        if self is NO_HOOKS:
            return
        self.parts += (part,)
        self._plan = _plan_of(self.parts)

    def wants(self, hook: str) -> bool:
        """Whether any part wants the event of this hook (to skip building an event nobody reads)."""
        return hook in self._plan

    def announce(self, event: Event) -> None:
        """Tell every part that wants it."""
        parts = self.parts
        for i, handler in self._plan.get(event.hook, ()):
            handler(parts[i], event)

    def ask(self, event: Event) -> Any:
        """The first part's answer that is not None (None if none answers)."""
        parts = self.parts
        for i, handler in self._plan.get(event.hook, ()):
            answer = handler(parts[i], event)
            if answer is not None:
                return answer
        return None

    def pass_along(self, event: Event, name: str) -> None:
        """Each part in turn may answer a new value of the event's `name` (None: it keeps what it was given);
        the event's `changed` says whether any did."""
        parts = self.parts
        for i, handler in self._plan.get(event.hook, ()):
            answer = handler(parts[i], event)
            if answer is not None:
                setattr(event, name, answer)
                if hasattr(event, "changed"):
                    event.changed = True

    def of(self, kind: type[Part]) -> Part | None:
        """The engaged part of this class, if any (for a plug-in that reads another's: a test, the trail; one
        that joins its part once)."""
        return next((p for p in self.parts if isinstance(p, kind)), None)


NO_HOOKS = Hooks(())
