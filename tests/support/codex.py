"""The real Codex CLI (installed by scripts/setup-codex) run through a proxy; the `codex_bin` fixture is in
tests/e2e/conftest.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.harness import REPO, Rotator
from tests.support.with_rotator import wrapped

CODEX = REPO / ".cache" / "codex" / "node_modules" / ".bin" / "codex"
LOOPBACK_ONLY = ("--set", r"block_list=|!~d ^api\.openai\.com$|403")


def run_codex(codex: Path, proxy: Rotator, tmp_path: Path, prompt: str = "Say hello", resume: bool = False,
              through_wrapper: bool = False) -> subprocess.CompletedProcess:
    """`codex exec PROMPT` in `tmp_path`'s home and work directory; `resume`: `codex exec resume --last PROMPT`, the
    next turn of the session the run before in the same `tmp_path` recorded. `through_wrapper`: run by
    scripts/with-rotator, which sets the proxy and CA variables."""
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],  # node, which runs Codex's launcher
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "HTTPS_PROXY": proxy.url,
        "SSL_CERT_FILE": str(proxy.ca_cert),
        "OPENAI_API_KEY": "sk-client-placeholder",
    }
    command = [str(codex), "exec", "--skip-git-repo-check", *(("resume", "--last") if resume else ()), prompt]
    if through_wrapper:
        command, env = wrapped(command, env, proxy)
    return subprocess.run(command, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=90)
