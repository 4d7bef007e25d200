"""The repository names no path of a developer's machine: its docs and docstrings point at what ships in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The developers' machine: its shared notes, checkouts and tool folders, and root's home (a pyenv, a cache).
MACHINE_PATH = re.compile(r"/work/(?:shared|main|wt|\.library|\.mirror)\b|/root/\.")
CAPTURED = ("tests/fixtures/",)  # what real tools sent, kept as they sent it
HERE = "tests/test_repo_paths.py"  # (its own check of the pattern names such paths)


def tracked_texts() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / n for n in names.decode().split("\0") if n and n != HERE and not n.startswith(CAPTURED)]


def test_no_machine_path_in_code_or_docs():
    found = []
    for path in tracked_texts():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        found += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert found == []


def test_the_pattern_finds_a_machine_path():
    assert MACHINE_PATH.search("see /work/shared/docs/cloud-platforms.md")
    assert MACHINE_PATH.search("/root/.pyenv/versions/3.12.1/bin/python3")
    assert not MACHINE_PATH.search("/work/project/notes.txt")  # (an agent's working folder in a test's body)
