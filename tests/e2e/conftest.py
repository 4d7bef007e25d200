"""Fixtures of the end-to-end tests beside those of tests/conftest.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.claude_code import CLAUDE
from tests.support.codex import CODEX
from tests.support.harness import REPO


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    if not CODEX.exists():
        setup = subprocess.run([str(REPO / "scripts" / "setup-codex")], capture_output=True, text=True, timeout=600)
        if setup.returncode != 0:
            pytest.skip(f"the Codex CLI could not be installed with npm: {setup.stderr.strip()[-500:]}")
    return CODEX


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    if not CLAUDE.exists():
        setup = subprocess.run([str(REPO / "scripts" / "setup-agents"), "claude"], capture_output=True, text=True,
                               timeout=600)
        if setup.returncode != 0:
            pytest.skip(f"Claude Code could not be installed with npm: {setup.stderr.strip()[-500:]}")
    return CLAUDE
