"""Fixtures of the end-to-end tests beside those of tests/conftest.py: the agent CLIs, and the cloud test kit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import cloud_net
from tests.support.claude_code import CLAUDE
from tests.support.cloud_agents import GEMINI
from tests.support.cloud_kit import CloudKit
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


@pytest.fixture(scope="session")
def gemini_bin() -> Path:
    if not GEMINI.exists():
        setup = subprocess.run([str(REPO / "scripts" / "setup-agents"), "gemini"], capture_output=True, text=True,
                               timeout=600)
        if setup.returncode != 0:
            pytest.skip(f"Gemini CLI could not be installed with npm: {setup.stderr.strip()[-500:]}")
    return GEMINI


@pytest.fixture(scope="session")
def _cloud_kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudKit]:
    reason = cloud_net.unavailable()
    if reason is not None:
        pytest.skip(reason)
    try:
        kit = CloudKit(tmp_path_factory.mktemp("cloud")).start()
    except cloud_net.NamespaceUnavailable as e:
        pytest.skip(str(e))
    yield kit
    kit.stop()


@pytest.fixture
def cloud(_cloud_kit: CloudKit) -> Iterator[CloudKit]:
    """The cloud test kit (tests/support/cloud_kit.py): the fake platform at the clouds' real hostnames, mitmdump
    and the clients in one private namespace; its records and scripts reset around each test."""
    _cloud_kit.reset()
    yield _cloud_kit
    _cloud_kit.end_test()
