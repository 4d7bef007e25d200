"""The addons (addons/) reach the engine through rewrite/surface.py alone: lint-imports' contract forbids them every
other module of rewrite/, one added later included."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = "the mitmproxy glue (addons/) reaches the engine through its surface"


def contract() -> dict:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(CONTRACT))


def test_every_module_of_the_engine_but_its_surface_is_forbidden_to_the_addons():
    below = {p.stem if p.suffix == ".py" else p.name for p in (ROOT / "rewrite").iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert contract()["source_modules"] == ["addons"]
    assert set(contract()["forbidden_modules"]) == {f"rewrite.{name}" for name in below - {"surface"}}

