"""Every access to another library's private attributes (asyncio's, mitmproxy's, httpx's) lives in rewrite/internals.py.

An AST scan of addons/ and rewrite/: outside that module, a private name (`_x`) may only be one a class of the same
module defines (its own methods and attributes, used on its own instances), or Rotator's own mark on a flow
(`_rotator_...`); reading one through `self` counts too when the class does not define it (an inherited private)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERNALS = ROOT / "rewrite" / "internals.py"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and not name.startswith("_rotator")


def own_privates(tree: ast.Module) -> set[str]:
    """The private names the module's classes define: methods, class attributes, and `self._x = ...`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in ast.walk(node):
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif (isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store)
                      and isinstance(item.value, ast.Name) and item.value.id in ("self", "cls")):
                    names.add(item.attr)
                elif isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
                    names.add(item.id)
                elif isinstance(item, ast.Constant) and isinstance(item.value, str):
                    names.update(item.value.split())  # (__slots__)
    return {n for n in names if _private(n)}


def private_accesses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    own = own_privates(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value) and node.args[1].value not in own):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}(…, {node.args[1].value!r})")
        elif isinstance(node, ast.Attribute) and node.attr in ("f_locals", "cr_frame", "gi_frame"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr} (a frame's locals)")
    return found


def test_private_attributes_of_other_libraries_are_touched_only_in_rewrite_internals():
    found = [hit for folder in ("addons", "rewrite") for path in sorted((ROOT / folder).rglob("*.py"))
             if path != INTERNALS for hit in private_accesses(path)]
    assert found == []


def test_the_scan_sees_private_accesses():
    assert private_accesses(INTERNALS)  # (the module that holds them all)
