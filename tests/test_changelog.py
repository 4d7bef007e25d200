"""The version a user runs, the changelog's newest entry and the start-up block agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from addons.welcome import Setup, version, welcome

REPO = Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def entries() -> list[tuple[str, str]]:
    return ENTRY.findall((REPO / "CHANGELOG.md").read_text())


def test_the_version_is_the_changelogs_newest():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert entries()[0][0] == project
    assert version() == project


def test_the_changelog_is_newest_first_with_one_entry_a_version():
    found = entries()
    numbers = [tuple(int(n) for n in v.split(".")) for v, _ in found]
    assert numbers == sorted(numbers, reverse=True) and len(set(numbers)) == len(numbers)
    assert [d for _, d in found] == sorted((d for _, d in found), reverse=True)


def test_the_start_up_block_names_the_version():
    block = welcome(Setup(None, [], Path("/ca.pem"), "http://127.0.0.1:8080", proxyauth=False, clients=False,
                          version=version()))
    assert f"Rotator {entries()[0][0]} (CHANGELOG.md" in block
