"""The real Claude Code (installed by scripts/setup-agents) run through a proxy; the `claude_bin` fixture is in
tests/e2e/conftest.py.

Claude Code gets only what a user would set: HTTPS_PROXY, NODE_EXTRA_CA_CERTS and ANTHROPIC_API_KEY, with an empty
home and its telemetry and update checks off. `LOOPBACK_ONLY` makes the proxy answer every host but
api.anthropic.com with 403 (mitmproxy's block_list), so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.harness import REPO, Rotator, agent_environ
from tests.support.with_rotator import wrapped

CLAUDE = REPO / ".cache" / "agents" / "claude" / "node_modules" / ".bin" / "claude"
LOOPBACK_ONLY = ("--set", r"block_list=|!~d ^api\.anthropic\.com$|403")


def run_claude(claude: Path, proxy: Rotator, tmp_path: Path, prompt: str = "Say hello", *args: str,
               through_wrapper: bool = False) -> subprocess.CompletedProcess:
    """`claude -p PROMPT` in `tmp_path`'s home and work directory; `args` go before the prompt (`--continue`: the
    next turn of the session the run before in the same `tmp_path` recorded). `through_wrapper`: run by
    scripts/with-rotator, which sets the proxy and CA variables."""
    work, env = agent_environ(tmp_path, proxy)
    env |= {
        "NODE_EXTRA_CA_CERTS": str(proxy.ca_cert),
        "ANTHROPIC_API_KEY": "sk-ant-api03-client-placeholder",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    command = [str(claude), "-p", *args, prompt]
    if through_wrapper:
        command, env = wrapped(command, env, proxy)
    return subprocess.run(command, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=90)
