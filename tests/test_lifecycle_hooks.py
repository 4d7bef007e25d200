"""The plug-in registry and the dispatch of events (rewrite/lifecycle/hooks.py): only a plug-in that defines an
engine-wide hook is told of it; an event is made only when a part wants it; a hook name that is no hook, or a second
plug-in of a name, is an error when it is defined or registered; a part that raises while it observes is logged once
per plug-in and the others are told all the same, one that raises while it decides fails what it decided."""

from __future__ import annotations

import logging

import pytest

from rewrite.lifecycle import hooks as lifecycle
from rewrite.lifecycle.events import Building, Ended, Paying, Refused
from rewrite.lifecycle.hooks import NO_HOOKS, Part, Plugin, PluginFailed, defining, engaged, register
from rewrite.lifecycle.setting import Setting


class Arriving(Plugin):
    name = "arriving"

    def arrived(self, arrival) -> None:
        self.seen = arrival


class Forgetting(Arriving):
    name = "forgetting"

    def forgotten(self, request_id) -> None:
        self.gone = request_id


class Silent(Plugin):
    name = "silent"


def test_only_the_plugins_that_define_an_engine_wide_hook_are_told_of_it():
    arriving, forgetting, silent = Arriving(Setting()), Forgetting(Setting()), Silent(Setting())
    plugins = [arriving, forgetting, silent]
    assert defining(plugins, "arrived") == [arriving, forgetting]  # (a subclass's inherited one too)
    assert defining(plugins, "forgotten") == [forgetting]
    assert defining(plugins, "worker_ask") == []


def test_a_method_that_is_no_hook_is_an_error_when_the_class_is_defined():
    with pytest.raises(TypeError, match="Typo.refuse: not a hook of a part"):
        class Typo(Part):
            def refuse(self, e) -> None: ...

    with pytest.raises(TypeError, match="Hearing.refused: not a hook of a plug-in"):
        class Hearing(Plugin):  # (a plug-in hears a request's events through its part alone)
            name = "hearing"

            def refused(self, e) -> None: ...

    class Helped(Part):
        def refused(self, e) -> None:
            self._help()

        def _help(self) -> None: ...


def test_a_second_plugin_of_a_name_or_one_without_a_name_is_refused(monkeypatch):
    monkeypatch.setattr(lifecycle, "_registered", [])
    register(Arriving)
    with pytest.raises(ValueError, match="'arriving' is registered already"):
        register(type("Again", (Plugin,), {"name": "arriving"}))
    with pytest.raises(ValueError, match="has no name"):
        register(type("Nameless", (Plugin,), {}))
    assert lifecycle.registered() == (Arriving,)


class Counting(Part):
    def __init__(self, answer=None) -> None:
        self.answer, self.told = answer, 0

    def building(self, e):
        self.told += 1
        return self.answer


class Static(Part):
    seen: list = []

    @staticmethod
    def building(e) -> None:
        Static.seen.append(e)


class Engaging(Plugin):
    name = "engaging"

    def engage(self, request) -> Part | None:
        return request


def test_requests_with_the_same_plugins_each_tell_their_own_parts():
    # (the handlers are worked out once for a line-up of part classes, then called on each request's own parts)
    plugin = Engaging(Setting())
    first, second = engaged([plugin], Counting()), engaged([plugin], Counting("shaped"))
    first.announce(Building, None, None, {})
    event = second.pass_along(Building, "body", None, None, {})
    assert (first.parts[0].told, second.parts[0].told) == (1, 1)
    assert event is not None and event.body == "shaped" and event.changed
    assert second.ask(Building, None, None, {}) == "shaped"


def test_an_event_nobody_wants_is_not_made():
    hooks = engaged([Engaging(Setting())], Counting())
    assert hooks.wants(Building) and not hooks.wants(Refused)
    hooks.announce(Refused, None, None, None, None)
    assert hooks.parts[0].told == 0
    assert NO_HOOKS.pass_along(Building, "body", None, None, {}) is None and engaged([], None).parts == ()


def test_a_hook_that_is_a_static_method_is_called_with_the_event_alone():
    hooks = engaged([Engaging(Setting())], Static())
    hooks.announce(Building, None, None, {})
    assert [type(e) for e in Static.seen] == [Building]


class Broken(Part):
    def building(self, e):
        raise RuntimeError("a bug")

    def ended(self, e) -> None:
        raise KeyError("another")

    def paying(self, e):
        raise RuntimeError("cannot tell")


class BrokenPlugin(Engaging):
    name = "broken"


def test_a_part_that_raises_while_it_observes_is_logged_once_and_the_others_are_told(monkeypatch, caplog):
    monkeypatch.setattr(lifecycle, "_failed", set())
    after = Counting("shaped")
    broken = engaged([BrokenPlugin(Setting())], Broken())
    hooks = lifecycle.Hooks([*broken.parts, after], [*broken.names, "counting"])
    with caplog.at_level(logging.DEBUG, logger="rotator"):
        for _ in range(3):
            hooks.announce(Ended, None, None, None, None)
            event = hooks.pass_along(Building, "body", None, None, {"kept": 1})
            assert event is not None and event.body == "shaped"  # (the next part shaped it all the same)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "plug-in broken failed in its ended hook" in errors[0].getMessage()
    assert after.told == 3


def test_a_part_that_raises_while_it_decides_fails_the_decision(monkeypatch):
    monkeypatch.setattr(lifecycle, "_failed", set())
    hooks = engaged([BrokenPlugin(Setting())], Broken())
    with pytest.raises(PluginFailed, match="plug-in broken failed in its paying hook: RuntimeError: cannot tell"):
        hooks.decide(Paying, None, "m", True)
