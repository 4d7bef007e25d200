"""The plug-in registry's engine-wide hooks (rewrite/lifecycle/hooks.py): only a plug-in that defines one is told."""

from __future__ import annotations

from rewrite.lifecycle.hooks import Plugin, defining
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
