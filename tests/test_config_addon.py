"""The `rotator_config` option at run time: a config the whole of which the engine refuses is refused in one line,
and the engine goes on serving the config it had."""

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addons.config import RotatorConfig
from rewrite.config import ConfigError, parse
from rewrite.engine import Engine

SERVED = "providers: {openai: {keys: [sk-pool-served-0001]}}\n"
# Each line is valid alone; only the whole tells that two providers claim one host.
CLASHING = ("providers: {openai: {keys: [sk-pool-served-0001]}, "
            "mirror: {kind: openai, base_url: 'http://127.0.0.1:9/v1', hosts: [api.openai.com]}}\n")
PROBLEM = "providers.mirror.hosts: api.openai.com is already intercepted for openai"


def test_a_config_refused_as_a_whole_at_run_time_is_refused_in_one_line_and_the_old_one_served(tmp_path):
    served, clashing = tmp_path / "served.yaml", tmp_path / "clashing.yaml"
    served.write_text(SERVED)
    clashing.write_text(CLASHING)
    engine = Engine()
    addon = RotatorConfig(engine)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rotator_config=str(served))
        addon.running()
        with pytest.raises(exceptions.OptionsError, match=rf"^rotator_config: {PROBLEM}$"):
            tctx.configure(addon, rotator_config=str(clashing))
        assert tctx.options.rotator_config == str(served)
        assert engine.config == parse(SERVED) and engine.router.provider_named("mirror") is None


def test_the_engine_checks_the_whole_config_before_it_changes_anything():
    engine = Engine(parse(SERVED))
    config, router, pool = engine.config, engine.router, engine.router.provider_named("openai").pool
    with pytest.raises(ConfigError, match=PROBLEM):
        engine.configure(parse(CLASHING))
    assert engine.config is config and engine.setting.config is config and engine.router is router
    assert engine.router.provider_named("openai").pool is pool  # (the pools in use, with their rests and counts)
