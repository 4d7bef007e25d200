"""Which of the files that ran code are the project's, and how they are shown.

A file counts when it is a Python file inside the checkout and outside what is not the product: the tests, the
scripts (this measurement among them) and any top-level folder whose name starts with a dot (`.venv`, `.cache`,
`.bench-venv`). Code compiled from a string (`<string>`, dataclasses' generated methods) or frozen in the
interpreter (`<frozen ...>`) names no file and never counts. A path is read as Python gave it (the checkout's own
sys.path entry): a symlinked `.venv` counts as `.venv` whatever it points at.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import PurePosixPath

NOT_PRODUCT = frozenset({"tests", "scripts"})


def project_file(filename: str, root: str) -> str | None:
    """`filename`'s path within the checkout at `root` if it is one of the project's files, else None."""
    if not filename.endswith(".py") or not os.path.isabs(filename):
        return None
    rel = os.path.relpath(os.path.normpath(filename), os.path.normpath(root))
    parts = PurePosixPath(rel.replace(os.sep, "/")).parts
    if not parts or parts[0] == ".." or parts[0].startswith(".") or parts[0] in NOT_PRODUCT:
        return None
    if "site-packages" in parts or "__pycache__" in parts:
        return None
    return "/".join(parts)


def project_files(filenames: list[str], root: str) -> list[str]:
    """The project's files among `filenames`, each once, sorted."""
    return sorted({f for f in (project_file(name, root) for name in filenames) if f is not None})


def by_folder(files: list[str]) -> dict[str, list[str]]:
    """The files grouped by the folder they are in (`rewrite/exchange`, `addons`), folders and files sorted."""
    folders: dict[str, list[str]] = defaultdict(list)
    for f in files:
        folder, _, name = f.rpartition("/")
        folders[folder or "."].append(name)
    return {folder: sorted(names) for folder, names in sorted(folders.items())}
