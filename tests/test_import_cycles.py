"""No module of addons/, protocols/ or rewrite/ imports itself through others (issue 35), counting the imports made
only for type checking (`if TYPE_CHECKING:`) too: a cycle there is still two modules that cannot be read apart.
What two modules share goes where both import it (a small module of their folder), not into either."""

from __future__ import annotations

import grimp

PACKAGES = ("addons", "protocols", "rewrite")


def cycle_in(*packages: str) -> list[str]:
    """One import cycle among the modules of `packages`, as its modules in import order (the first repeated at the
    end); [] when there is none."""
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=False, cache_dir=None)
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                return [module, *back]
    return []


def test_no_module_imports_itself_through_others():
    cycle = cycle_in(*PACKAGES)
    assert not cycle, "an import cycle: " + " -> ".join(cycle)


def test_a_cycle_is_found_and_named(tmp_path, monkeypatch):
    """A cycle made of a type-checking import, two modules apart, is found and named; the same package without it
    has none."""
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic import b\n")
    (package / "b.py").write_text("from cyclic import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from cyclic import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycle_in("cyclic") == ["cyclic.a", "cyclic.b", "cyclic.c", "cyclic.a"]
    (package / "c.py").write_text("")
    assert cycle_in("cyclic") == []
