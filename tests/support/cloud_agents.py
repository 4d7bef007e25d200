"""The real agent CLIs in their cloud modes, run inside the cloud kit's namespace (tests/support/cloud_kit.py) through
a proxy, with what a user of each would set and nothing else: an empty home, HTTPS_PROXY and the proxy's CA.

- Claude Code on Vertex: `CLAUDE_CODE_USE_VERTEX=1`, the project and region; its token from the GCE metadata server
  (ADC on a VM: `GCE_METADATA_HOST=metadata.google.internal`), for the project's service account.
- Gemini CLI on Vertex: `GOOGLE_GENAI_USE_VERTEXAI=true`, `GOOGLE_CLOUD_PROJECT`, `GOOGLE_CLOUD_LOCATION`, the
  `vertex-ai` auth type; its token from the metadata server too.
- Claude Code on Bedrock: `CLAUDE_CODE_USE_BEDROCK=1`, `AWS_REGION`, and the AWS keys in the environment (it signs
  with SigV4), or `CLAUDE_CODE_SKIP_BEDROCK_AUTH=1` (it sends unsigned, still to the real host: Rotator's pool signs).
- Codex with an Azure provider: `base_url = "https://{resource}/openai"`, the key in `AZURE_OPENAI_API_KEY`,
  `wire_api = "responses"` and an `api-version` query (Codex then sends the key as a bearer).

The CLIs are installed by scripts/setup-agents and scripts/setup-codex (the `claude_bin`, `gemini_bin` and
`codex_bin` fixtures install them or skip).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.cloud_certs import METADATA_HOST
from tests.support.cloud_kit import AWS_CLIENT, AZURE_A, AZURE_KEYS, PROJECT_A, CloudKit
from tests.support.harness import REPO, Rotator

GEMINI = REPO / ".cache" / "agents" / "gemini" / "node_modules" / ".bin" / "gemini"
QUIET = {"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
         "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
GEMINI_SETTINGS = {"security": {"auth": {"selectedType": "vertex-ai"}}, "privacy": {"usageStatisticsEnabled": False},
                   "telemetry": {"enabled": False}, "general": {"disableAutoUpdate": True, "disableUpdateNag": True}}


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    return home, work


def _agent_env(cloud: CloudKit, proxy: Rotator, home: Path, extra: dict[str, str]) -> dict[str, str]:
    """Only what the user would set: no variable of this machine's but PATH (node)."""
    ca = str(cloud.trusted(proxy))
    return {"PATH": os.environ["PATH"], "HOME": str(home), "HTTPS_PROXY": proxy.url, "NODE_EXTRA_CA_CERTS": ca,
            "SSL_CERT_FILE": ca, **extra}


def run_claude_vertex(cloud: CloudKit, proxy: Rotator, claude: Path, tmp_path: Path, prompt: str = "Say hello",
                      project: str = PROJECT_A, region: str = "us-east5", extra: dict[str, str] | None = None,
                      timeout: float = 60) -> subprocess.CompletedProcess:
    """`claude -p PROMPT` with CLAUDE_CODE_USE_VERTEX=1 (the token from the metadata server)."""
    home, work = _dirs(tmp_path)
    env = _agent_env(cloud, proxy, home, {
        **QUIET, "CLAUDE_CODE_USE_VERTEX": "1", "ANTHROPIC_VERTEX_PROJECT_ID": project, "CLOUD_ML_REGION": region,
        "GCE_METADATA_HOST": METADATA_HOST, **(extra or {})})
    return cloud.net.run([str(claude), "-p", prompt], env=env, cwd=work, timeout=timeout)


def run_claude_bedrock(cloud: CloudKit, proxy: Rotator, claude: Path, tmp_path: Path, prompt: str = "Say hello",
                       keys: tuple[str, ...] | None = AWS_CLIENT, region: str = "us-east-1",
                       extra: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    """`claude -p PROMPT` with CLAUDE_CODE_USE_BEDROCK=1: signed with `keys` from the environment, or unsigned
    (`keys` None: CLAUDE_CODE_SKIP_BEDROCK_AUTH=1); a third of `keys` is a session token."""
    home, work = _dirs(tmp_path)
    auth = ({"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1], **_session(keys)} if keys is not None
            else {"CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1"})
    env = _agent_env(cloud, proxy, home, {**QUIET, "CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": region, **auth,
                                          **(extra or {})})
    return cloud.net.run([str(claude), "-p", prompt], env=env, cwd=work, timeout=timeout)


def _session(keys: tuple[str, ...]) -> dict[str, str]:
    return {"AWS_SESSION_TOKEN": keys[2]} if len(keys) > 2 else {}


def run_gemini_vertex(cloud: CloudKit, proxy: Rotator, gemini: Path, tmp_path: Path, prompt: str = "Say hello",
                      project: str = PROJECT_A, location: str = "us-east5", model: str = "gemini-2.5-flash",
                      timeout: float = 90) -> subprocess.CompletedProcess:
    """`gemini -m MODEL -p PROMPT` on Vertex (the token from the metadata server)."""
    home, work = _dirs(tmp_path)
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(GEMINI_SETTINGS))
    env = _agent_env(cloud, proxy, home, {
        "GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": project, "GOOGLE_CLOUD_LOCATION": location,
        "GCE_METADATA_HOST": METADATA_HOST, "GEMINI_TELEMETRY_ENABLED": "false", "GEMINI_CLI_NO_RELAUNCH": "true",
        "GEMINI_CLI_TRUST_WORKSPACE": "true"})
    return cloud.net.run([str(gemini), "-m", model, "-p", prompt], env=env, cwd=work, timeout=timeout)


def codex_azure_config(host: str = AZURE_A, deployment: str = "gpt-5-deploy",
                       api_version: str = "2025-04-01-preview") -> str:
    return (f'model = "{deployment}"\nmodel_provider = "azure"\n\n[model_providers.azure]\nname = "Azure"\n'
            f'base_url = "https://{host}/openai"\nenv_key = "AZURE_OPENAI_API_KEY"\n'
            f'query_params = {{ api-version = "{api_version}" }}\nwire_api = "responses"\n')


def run_codex_azure(cloud: CloudKit, proxy: Rotator, codex: Path, tmp_path: Path, prompt: str = "Say hello",
                    host: str = AZURE_A, deployment: str = "gpt-5-deploy", timeout: float = 60
                    ) -> subprocess.CompletedProcess:
    """`codex exec PROMPT` with an Azure provider (its key from AZURE_OPENAI_API_KEY)."""
    home, work = _dirs(tmp_path)
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_azure_config(host, deployment))
    env = _agent_env(cloud, proxy, home, {"CODEX_HOME": str(codex_home), "AZURE_OPENAI_API_KEY": AZURE_KEYS[host]})
    return cloud.net.run([str(codex), "exec", "--skip-git-repo-check", prompt], env=env, cwd=work, timeout=timeout)
