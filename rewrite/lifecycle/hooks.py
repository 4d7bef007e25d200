"""Plug-ins, and the dispatch of the spine's events to them for one request.

Modelled on mitmproxy's addon manager: a plug-in class is registered once (`register`, one line, in order, like a
protocol's package; a second of the same name is an error). Each engine makes one instance of each
(`Plugin(setting)`), told the configuration whenever it changes (`configure`), and told of what spans requests by its
engine-wide hooks (`arrived`, `holding`, `worker_ask`, `taught`, `forgotten`, `share`). For each request the spine
asks every plug-in to `engage`: a plug-in with nothing to do for this request answers None and costs nothing more; one
that engages answers its `Part`, whose methods named after the events it wants (`picked`, `ended`, ...: the events'
`hook` names, rewrite/lifecycle/events.py) are called when the spine announces them, in registration order. A part
keeps what it learns of its request in its own attributes: the spine's objects carry no plug-in's state.

A public method of a part or a plug-in is one of its hooks: any other name (a typo) is a TypeError when the class is
defined (helpers' names start with `_`).

Events that ask are answered by the first part that answers (`ask`, `decide`), or by every part in turn (`pass_along`,
each part given what the previous made). A part that raises while it observes or shapes is logged once per plug-in,
with its name, and the request goes on as if it had not answered (as mitmproxy's `safecall` does for an addon); a part
that raises while it decides (`decide`: who pays) fails what it decided for (`PluginFailed`), never the process.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, Protocol, TypeVar

from rewrite.lifecycle.events import EVENTS, Arrival, LifecycleEvent, Refusal

if TYPE_CHECKING:
    from rewrite.lifecycle.setting import Setting
    from rewrite.lifecycle.views import RequestView
    from rewrite.providers import Provider
    from rewrite.state.redis.shared import SharedState

logger = logging.getLogger("rotator")
E = TypeVar("E", bound=LifecycleEvent)
P = ParamSpec("P")


class Kind[**P, E: LifecycleEvent](Protocol):
    """An event's class, as the spine names it when it announces one: called with the event's fields (checked)."""

    @property
    def hook(self) -> str: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> E: ...


def _check_hooks(cls: type, known: Iterable[str], what: str) -> None:
    """A public method of `cls` whose name is not one of its hooks is an error (mitmproxy's addon manager refuses an
    addon it cannot call the same way)."""
    allowed = frozenset(known)
    for name, value in vars(cls).items():
        if name.startswith("_") or name in allowed:
            continue
        if isinstance(value, types.FunctionType | staticmethod | classmethod):
            raise TypeError(f"{cls.__qualname__}.{name}: not a hook of a {what} ({', '.join(sorted(allowed))}); "
                            "a helper's name starts with _")


class Part:
    """A plug-in's part in one request: define a method named after each event to be told of (its `hook`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_hooks(cls, EVENTS, "part (rewrite/lifecycle/events.py)")


PLUGIN_HOOKS = ("configure", "arrived", "holding", "worker_ask", "taught", "forgotten", "share", "engage")


class Plugin:
    """One concern of a request's life. Subclasses override `engage` (and `configure`, to read the config)."""

    name: ClassVar[str] = ""
    # Whether it may engage at all under the configuration (read by the spine before it asks `engage`: a plug-in the
    # config turns off costs a request nothing).
    active: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_hooks(cls, PLUGIN_HOOKS, "plug-in")

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.configure(setting)

    def configure(self, setting: Setting) -> None:
        """The engine's configuration changed (also called once when the plug-in is made)."""

    def holding(self, arrival: Arrival, provider: Provider, model: str) -> bool:
        """Whether this plug-in must see the request's whole body before a credential is taken for `provider`'s
        `model` (asked by `arrival.held`, for a plug-in that would take one early)."""
        return False

    def arrived(self, arrival: Arrival) -> None:
        """A request was handed to the engine (before its body is read whole: rewrite/lifecycle/events.py)."""

    def worker_ask(self, proto: Any, headers: list, path: str) -> Any:
        """What this plug-in wants the big-body worker to read of a large body besides its skeleton
        (rewrite/intake/big_json.py), or None."""
        return None

    def taught(self, refusal: Refusal) -> None:
        """A vendor refused something a request can go without (rewrite/lifecycle/events.py's `Refusal`): what it
        teaches, for the requests to come."""

    def forgotten(self, request_id: str) -> None:
        """The engine is done with a request (served, or ended before it was)."""

    def share(self, url: str | None, shared: SharedState | None) -> None:
        """Keep what this plug-in keeps across requests in the Redis at `url`, where every worker sees it (`shared`:
        the key pools' link to it, whose breaker and feed it may use); None: in this process only (`state.redis`,
        rewrite/state/sharing.py)."""

    def engage(self, ctx: RequestView) -> Part | None:
        """This plug-in's part in the request `ctx` (rewrite/lifecycle/views.py), or None when it has nothing to do
        for it."""
        return None


_registered: list[type[Plugin]] = []


def register(plugin: type[Plugin]) -> type[Plugin]:
    """Make a plug-in known to every engine made from now on (usable as a class decorator). A plug-in without a name,
    or of a name already registered, is a ValueError."""
    if not plugin.name:
        raise ValueError(f"plug-in {plugin.__qualname__} has no name")
    if any(known.name == plugin.name for known in _registered):
        raise ValueError(f"a plug-in named {plugin.name!r} is registered already")
    _registered.append(plugin)
    return plugin


def registered() -> tuple[type[Plugin], ...]:
    return tuple(_registered)


def engaged(plugins: Iterable[Plugin], request: RequestView) -> Hooks:
    """The parts the active plug-ins engage for `request`, each named by its plug-in."""
    parts: list[Part] = []
    names: list[str] = []
    learners: list[Plugin] = []
    for plugin in plugins:
        if type(plugin).taught is not Plugin.taught:
            learners.append(plugin)
        if plugin.active and (part := plugin.engage(request)) is not None:
            parts.append(part)
            names.append(plugin.name)
    return Hooks(parts, names, learners)


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


def _plan_of(parts: tuple[Part, ...]) -> dict[str, tuple[tuple[int, Callable], ...]]:
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
_failed: set[str] = set()  # the plug-ins whose error was logged (once each)


class PluginFailed(Exception):
    """A part raised while it decided (who pays): the attempt it decided for fails, in the protocol's error shape."""

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        super().__init__(f"plug-in {plugin} failed in its {hook} hook: {type(error).__name__}: {error}")
        self.plugin, self.hook = plugin, hook


def _failing(plugin: str, hook: str, error: Exception) -> None:
    """Log a part's error: once per plug-in, with its name (then at debug level: a bug is told, not repeated)."""
    if plugin in _failed:
        logger.debug("rotator: plug-in %s failed in its %s hook again: %r", plugin, hook, error)
        return
    _failed.add(plugin)
    logger.error("rotator: plug-in %s failed in its %s hook (the request goes on without it; told once): %s: %s",
                 plugin, hook, type(error).__name__, error, exc_info=error)


def answers(plugins: Iterable[Plugin], hook: str, *args: Any) -> Iterator[Any]:
    """Each plug-in's answer to its engine-wide `hook` (`arrived`, `forgotten`, `worker_ask`), in order; one that
    raises is logged once, and answers nothing."""
    for plugin in plugins:
        try:
            yield getattr(plugin, hook)(*args)
        except Exception as error:
            _failing(plugin.name, hook, error)


class Hooks:
    """One request's engaged parts, by the events they want. Each method takes the event's class and its fields: the
    event is made only when a part wants it."""

    __slots__ = ("parts", "names", "learners", "_plan")

    def __init__(self, parts: Iterable[Part], names: Iterable[str] = (), learners: Iterable[Plugin] = ()) -> None:
        self.parts = tuple(parts)
        self.learners = tuple(learners)  # the engine's plug-ins told what a refusal taught (`Plugin.taught`)
        named = tuple(names)
        self.names = named + tuple(type(p).__qualname__ for p in self.parts[len(named):])
        self._plan = _plan_of(self.parts)

    def wants(self, kind: type[LifecycleEvent]) -> bool:
        """Whether any part wants events of `kind` (for a field costly to work out before it is announced)."""
        return kind.hook in self._plan

    def announce(self, kind: Kind[P, LifecycleEvent], *fields: P.args, **named: P.kwargs) -> None:
        """Tell every part that wants it."""
        handlers = self._plan.get(kind.hook)
        if handlers is None:
            return
        event = kind(*fields, **named)
        parts = self.parts
        for i, handler in handlers:
            try:
                handler(parts[i], event)
            except Exception as error:
                _failing(self.names[i], kind.hook, error)

    def ask(self, kind: Kind[P, LifecycleEvent], *fields: P.args, **named: P.kwargs) -> Any:
        """The first part's answer that is not None (None if none answers; a part that raises answers nothing)."""
        handlers = self._plan.get(kind.hook)
        return None if handlers is None else self._first(handlers, kind(*fields, **named), False)

    def decide(self, kind: Kind[P, LifecycleEvent], *fields: P.args, **named: P.kwargs) -> Any:
        """As `ask`, where the answer decides: a part that raises is `PluginFailed` (logged once, as for `ask`)."""
        handlers = self._plan.get(kind.hook)
        return None if handlers is None else self._first(handlers, kind(*fields, **named), True)

    def _first(self, handlers: tuple[tuple[int, Callable], ...], event: LifecycleEvent, decides: bool) -> Any:
        parts = self.parts
        for i, handler in handlers:
            try:
                answer = handler(parts[i], event)
            except Exception as error:
                _failing(self.names[i], event.hook, error)
                if decides:
                    raise PluginFailed(self.names[i], event.hook, error) from error
                continue
            if answer is not None:
                return answer
        return None

    def pass_along(self, kind: Kind[P, E], name: str, *fields: P.args, **named: P.kwargs) -> E | None:
        """Each part in turn may answer a new value of the event's field `name` (None: it keeps what it was given; a
        part that raises keeps it too); the event's `changed`, when it has one, says whether any did. The event
        (None: nobody wanted it)."""
        handlers = self._plan.get(kind.hook)
        if handlers is None:
            return None
        event, parts = kind(*fields, **named), self.parts
        for i, handler in handlers:
            try:
                answer = handler(parts[i], event)
            except Exception as error:
                _failing(self.names[i], kind.hook, error)
                continue
            if answer is not None:
                setattr(event, name, answer)
                if hasattr(event, "changed"):
                    event.changed = True
        return event

    def teach(self, refusal: Refusal) -> None:
        """Tell the plug-ins that keep what refusals teach (each under a guard, as `announce`)."""
        for _ in answers(self.learners, "taught", refusal):
            pass

    def of(self, kind: type[Part]) -> Part | None:
        """The engaged part of this class, if any (for a test)."""
        return next((p for p in self.parts if isinstance(p, kind)), None)


NO_HOOKS = Hooks(())
