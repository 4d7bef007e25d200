"""The plug-in registry's engine-wide hooks (rewrite/lifecycle/hooks.py): only a plug-in that defines one is told; a
plug-in that defines an event's hook itself hears it in every request, and may join its part to one under way."""

from __future__ import annotations

from rewrite.lifecycle.events import Building, Refused
from rewrite.lifecycle.hooks import NO_HOOKS, Part, Plugin, defining, engaged
from rewrite.lifecycle.setting import Setting


class Arriving(Plugin):
    name = "arriving"

    def arrived(self, arrival) -> None:
        self.seen = arrival


class Forgetting(Arriving):
    name = "forgetting"

    def forgotten(self, job) -> None:
        self.gone = job


class Silent(Plugin):
    name = "silent"


def test_only_the_plugins_that_define_an_engine_wide_hook_are_told_of_it():
    arriving, forgetting, silent = Arriving(Setting()), Forgetting(Setting()), Silent(Setting())
    plugins = [arriving, forgetting, silent]
    assert defining(plugins, "arrived") == [arriving, forgetting]  # (a subclass's inherited one too)
    assert defining(plugins, "forgotten") == [forgetting]
    assert defining(plugins, "worker_ask") == []


class Late(Part):
    def __init__(self) -> None:
        self.events: list[str] = []

    def refused(self, e) -> None:
        self.events.append("refused")

    def building(self, e) -> None:
        self.events.append("building")


class Learner(Plugin):
    """Engages nothing (inactive), hears every refusal itself, and joins its part to the request that refused."""

    name = "learner"
    active = False

    def configure(self, setting) -> None:
        self.heard: list = []

    def engage(self, ctx) -> Part | None:
        raise AssertionError("an inactive plug-in is not asked")

    def refused(self, e) -> None:
        self.heard.append(e)
        self.hooks.join(Late())


def test_a_plugin_that_defines_an_event_hears_it_in_every_request_and_may_join_its_part_there():
    learner, silent = Learner(Setting()), Silent(Setting())
    assert learner.hears and not silent.hears
    hooks = learner.hooks = engaged([silent, learner], None)
    assert hooks.wants("refused") and not hooks.wants("building")
    refusal = Refused(None, None, None, None)
    hooks.announce(refusal)
    assert learner.heard == [refusal]
    late = hooks.of(Late)
    assert late is not None and late.events == []  # (joined while the refusal was announced: told from then on)
    hooks.pass_along(Building(None, None, {}), "body")
    hooks.announce(refusal)
    assert late.events == ["building", "refused"] and len(learner.heard) == 2


def test_a_part_joined_to_a_request_without_hooks_joins_no_other_request():
    # (a request's hooks are NO_HOOKS before its parts engage and after it is done: a refusal heard late joins none)
    NO_HOOKS.join(Late())
    assert NO_HOOKS.parts == () and not NO_HOOKS.wants("building")
    assert engaged([], None).parts == ()


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

    def engage(self, ctx) -> Part | None:
        return ctx


def test_requests_with_the_same_plugins_each_tell_their_own_parts():
    # (the handlers are worked out once for a line-up of part classes, then called on each request's own parts)
    plugin = Engaging(Setting())
    first, second = engaged([plugin], Counting()), engaged([plugin], Counting("shaped"))
    first.announce(Building(None, None, {}))
    event = Building(None, None, {})
    second.pass_along(event, "body")
    assert (first.parts[0].told, second.parts[0].told) == (1, 1)
    assert event.body == "shaped" and second.ask(Building(None, None, {})) == "shaped"


def test_a_hook_that_is_a_static_method_is_called_with_the_event_alone():
    hooks = engaged([Engaging(Setting())], Static())
    event = Building(None, None, {})
    hooks.announce(event)
    assert Static.seen == [event]
