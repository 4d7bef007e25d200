""""Is this a login" is asked only inside the who-pays plug-in (rewrite/plugins/payers/, issue 35): elsewhere a
wire's `claims` says whose request it is (rewrite/providers/wire.py), a provider's wire checks its own config, the
router decides a WebSocket upgrade, and a payer says whether the top level's hedging applies to it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("addons", "protocols", "rewrite")
ASKED_IN = ROOT / "rewrite/plugins/payers"
QUESTION = re.compile(r"\blogin is (not )?None\b")


def asked_outside(root: Path, folders: tuple[str, ...], allowed: Path) -> list[str]:
    """Each line of a module under `folders` (but not under `allowed`) that asks whether something is a login."""
    return [f"{path.relative_to(root)}:{n}: {line.strip()}"
            for folder in folders for path in sorted((root / folder).rglob("*.py")) if allowed not in path.parents
            for n, line in enumerate(path.read_text().splitlines(), 1) if QUESTION.search(line)]


def test_only_the_who_pays_plugin_asks_whether_a_request_is_a_login():
    assert asked_outside(ROOT, FOLDERS, ASKED_IN) == []


def test_the_question_is_found_wherever_else_it_is_asked(tmp_path):
    (tmp_path / "rewrite/routing").mkdir(parents=True)
    (tmp_path / "rewrite/plugins/payers").mkdir(parents=True)
    (tmp_path / "rewrite/routing/router.py").write_text("if p.login is not None:\n    pass\nx = login is None\n")
    (tmp_path / "rewrite/plugins/payers/login.py").write_text("if self.login is None:\n    pass\n")
    assert asked_outside(tmp_path, FOLDERS, tmp_path / "rewrite/plugins/payers") == [
        "rewrite/routing/router.py:1: if p.login is not None:", "rewrite/routing/router.py:3: x = login is None"]
