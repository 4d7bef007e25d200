"""The shape the project keeps where it grew fastest (issues 29 and 30): no module of protocols/, rewrite/pool/ or
rewrite/state/ over 450 lines, no class of rewrite/pool/ or rewrite/state/ over 20 methods."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 450
MAX_METHODS = 20


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules("protocols", "rewrite/pool", "rewrite/state"), ids=lambda p: str(p))
def test_no_module_is_over_450_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize("path", modules("rewrite/pool", "rewrite/state"), ids=lambda p: str(p))
def test_no_class_has_over_20_methods(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            assert len(methods) <= MAX_METHODS, f"{node.name} has {len(methods)} methods"
