"""rotator.example.yaml is a config Rotator loads, that explains every key the config has: it cannot rot."""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import certifi
import pytest
from pydantic import BaseModel

from rewrite.config import Config, ConfigError, parse
from rewrite.routing.router import Router
from tests.support.cloud_auth import CloudAccounts

EXAMPLE = Path(__file__).resolve().parents[1] / "rotator.example.yaml"
LEFT_OFF = re.compile(r"^(\s*)#(?=[\w-]+:|\s+- )", re.M)  # `#clients:`, `#  - {...}`: a setting left off
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@functools.cache
def key_file() -> str:
    """A service account's key file, for the example's (tests/support/cloud_auth.py makes one)."""
    path = Path(tempfile.mkdtemp()) / "sa.json"
    CloudAccounts().service_account("example-project").write(path)
    return str(path)


def with_every_setting(text: str) -> str:
    """The example with the settings it leaves off turned on (the CA file and key file pointed at ones that exist)."""
    return (LEFT_OFF.sub(r"\1", text).replace("~/corp-proxy-ca.pem", certifi.where())
            .replace("~/sa-a.json", key_file()))


@pytest.fixture
def env(monkeypatch):
    for name in set(REFERENCE.findall(EXAMPLE.read_text())):
        monkeypatch.setenv(name, f"{name.lower()}-value")


def load(text: str) -> Config:
    config = parse(text, str(EXAMPLE))
    Router(config)  # what start-up checks of the whole config (hosts, kinds, route targets)
    return config


def test_the_example_loads_as_it_is(env):
    config = load(EXAMPLE.read_text())
    assert [k.key for k in config.providers["openai"].keys] == ["openai_key_1-value", "openai_key_2-value"]
    assert config.providers["openai"].keys[1].organization == "openai_org-value"
    assert config.streaming == Config().streaming  # it shows the defaults
    assert config.clients == [] and config.upstream_proxy is None  # left off


def test_the_example_loads_with_every_setting_turned_on(env):
    config = load(with_every_setting(EXAMPLE.read_text()))
    assert [c.name for c in config.clients] == ["team-a", "ci"]
    assert config.upstream_proxy and config.upstream_ca


def test_the_example_needs_its_environment():
    with pytest.raises(ConfigError, match=r"^13 environment variables are not set: OPENAI_KEY_1 \(providers\.openai\."
                                          r"keys\.0\), OPENAI_KEY_2 .* DEEPSEEK_KEY \(providers\.deepseek\.keys\.0\)$"):
        load(EXAMPLE.read_text())


def fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the config, dotted (`providers.NAME.keys.key`)."""
    out = []
    for name, info in model.model_fields.items():
        name = info.alias or name  # (as the config writes it: a route's `from`)
        out.append(prefix + name)
        for inner in _models(info.annotation):
            out += fields(inner, f"{prefix}{name}.")
    return out


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation] if annotation.__name__ != "AdapterEntry" else []  # adapters: README's own table
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models(arg)]


def test_every_key_of_the_config_is_in_the_example_with_a_comment():
    lines = with_every_setting(EXAMPLE.read_text()).splitlines()
    for field in fields(Config):
        name = field.rsplit(".", 1)[-1]
        at = [i for i, line in enumerate(lines) if re.search(rf"(^|[\s{{,-]){re.escape(name)}:", line.split("#")[0])]
        assert at, f"{field} is not in rotator.example.yaml"
        assert any("#" in lines[i] or lines[i - 1].lstrip().startswith("#") for i in at), (
            f"{field} has no comment in rotator.example.yaml")


def test_the_readme_points_at_the_example():
    readme = (EXAMPLE.parent / "README.md").read_text()
    assert "rotator.example.yaml" in readme


def test_the_example_speaks_of_routes_as_they_work_today(env):
    """Routing exists: the example's `routes` comment points at its page, and promises nothing for later."""
    [line] = [line for line in EXAMPLE.read_text().splitlines() if line.startswith("routes:")]
    comment = line.split("#", 1)[1]
    assert "once" not in comment and "validated now" not in comment, comment
    page = re.search(r"docs/[\w-]+\.md", comment)
    assert page and (EXAMPLE.parent / page.group(0)).read_text().lstrip().startswith("# Routing"), comment
    router = Router(load(EXAMPLE.read_text()))
    targets = router.routes.targets_for("claude-opus-4-1", "anthropic")
    assert [(t.provider, t.model) for t in targets] == [("anthropic", None), ("deepseek", "deepseek-chat")]
