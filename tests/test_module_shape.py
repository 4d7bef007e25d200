"""The shape the project keeps (issues 29, 30 and 35): no module of addons/, protocols/ or rewrite/ over 400 lines, no
class there over 15 methods. A class that implements a standard-library interface (`asyncio.Transport`: the methods
are the interface's, not ours to split) is held to none, known by its base."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("addons", "protocols", "rewrite")
MOST_LINES = 400
MOST_METHODS = 15
# The standard library's interfaces whose implementations have as many methods as the interface asks, as a class's
# base is written.
INTERFACES = frozenset({"asyncio.Transport"})


def modules() -> list:
    return [pytest.param(p, id=str(p.relative_to(ROOT))) for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]


def classes(path: Path) -> list[tuple[str, int]]:
    """Each class of the module that implements none of INTERFACES, with its number of methods."""
    return [(node.name, sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in node.body))
            for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)
            and not any(ast.unparse(base) in INTERFACES for base in node.bases)]


@pytest.mark.parametrize("path", modules())
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= MOST_LINES


@pytest.mark.parametrize("path", modules())
def test_no_class_is_over_15_methods(path):
    over = [(name, n) for name, n in classes(path) if n > MOST_METHODS]
    assert not over, f"over {MOST_METHODS} methods: {over}"


def test_the_counts_see_what_they_limit(tmp_path):
    """A class's methods are counted (nested functions and nested classes' methods apart), a module's lines, and
    only a class whose base is a standard-library interface is left out."""
    module = tmp_path / "shape.py"
    module.write_text("import asyncio\n\n"
                      "class A:\n    def a(self):\n        def inner(): pass\n    async def b(self): pass\n"
                      "    class B:\n        def c(self): pass\n"
                      "class Transport(asyncio.Transport):\n    def write(self, data): pass\n"
                      "class Named(Transport):\n    def d(self): pass\n")
    assert classes(module) == [("A", 2), ("Named", 1), ("B", 1)]
