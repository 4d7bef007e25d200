"""The shape the project keeps (issues 29, 30, 35 and 67): no module of addons/, protocols/ or rewrite/ over 380 lines,
no class there over 15 methods, no public class name defined twice there (one name, one thing: "go to definition" and
a reader's grep find it). A class that implements a standard-library interface (`asyncio.Transport`: the methods
are the interface's, not ours to split) is held to none, known by its base."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from rewrite.exchange.job import Job

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("addons", "protocols", "rewrite")
MOST_LINES = 380
MOST_METHODS = 15
MOST_FIELDS = 15  # of a Job
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
def test_no_module_is_over_380_lines(path):
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


def test_a_job_holds_at_most_15_fields():
    """What the engine tells the addon of a flow stays a page a reader takes in (what the addon hands over is its
    `Intake`; what the plug-ins record, their `records`)."""
    assert len(dataclasses.fields(Job)) <= MOST_FIELDS


def public_classes(path: Path) -> list[str]:
    """The names of the public classes the module defines (at any depth)."""
    return [node.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_")]


def doubled(paths: list[Path]) -> dict[str, list[str]]:
    """Each public class name defined in more than one place, with where."""
    where: dict[str, list[str]] = {}
    for path in paths:
        for name in public_classes(path):
            where.setdefault(name, []).append(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
    return {name: places for name, places in where.items() if len(places) > 1}


def test_no_public_class_name_is_defined_twice():
    paths = [p for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    assert not doubled(paths), "one name for each class; defined more than once: " + str(doubled(paths))


def test_a_doubled_name_is_seen_in_two_modules_and_in_one(tmp_path):
    (tmp_path / "a.py").write_text("class Route:\n    pass\nclass _Private:\n    pass\n")
    (tmp_path / "b.py").write_text("def f():\n    class Route:\n        pass\nclass _Private:\n    pass\n")
    (tmp_path / "c.py").write_text("class Once:\n    class Twice:\n        pass\nclass Twice:\n    pass\n")
    found = doubled(sorted(tmp_path.glob("*.py")))
    assert found == {"Route": [str(tmp_path / "a.py"), str(tmp_path / "b.py")],
                     "Twice": [str(tmp_path / "c.py")] * 2}
