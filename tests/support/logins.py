"""The four login CLIs driven in tests: Codex with a ChatGPT login, Claude Code with a Pro/Max login, Gemini CLI on
Code Assist and the Copilot CLI, each with fake credentials in a temporary home, through a proxy.

    proxy = rotator(DIRECT, **proxy_options(fake_vendor, forward=True))   # the addon, not Rotator, serving generation
    proxy = rotator(served(fake_vendor), **proxy_options(fake_vendor))     # Rotator's login providers serving it
    done = run(codex_chatgpt(tmp_path, proxy))                               # a CompletedProcess
    done = run(claude_login(tmp_path, proxy), "Say hello")

Each `Login` holds the command, environment and work directory of one run; `run` starts it. The CLIs are installed
by scripts/setup-agents (and scripts/setup-codex); `need(...)` skips a test, saying why, when one could not be.
Side calls go to the stand-ins (tests/support/logins_addon.py), so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import stand_ins
from tests.support.fake_vendor import FakeVendor
from tests.support.flows import chosen
from tests.support.harness import ADDON, REPO, Rotator, merge

AGENTS = REPO / ".cache" / "agents"
BINS = {
    "codex": REPO / ".cache" / "codex" / "node_modules" / ".bin" / "codex",
    "claude": AGENTS / "claude" / "node_modules" / ".bin" / "claude",
    "gemini": AGENTS / "gemini" / "node_modules" / ".bin" / "gemini",
    "copilot": AGENTS / "copilot" / "node_modules" / ".bin" / "copilot",
}
# Where scripts/setup-agents unpacks the Copilot CLI's 235 MB once (it would otherwise do it in every new home).
COPILOT_PKG_CACHE = AGENTS / "copilot" / "pkg-cache"
STAND_INS = "tests/support/logins_addon.py"
WITNESS = "tests/support/witness_addon.py"
# Rotator leaves the login hosts to the stand-in addon (which forwards them): its anthropic provider and its login
# providers are moved to hosts no test calls.
DIRECT = {"providers": {"anthropic": {"hosts": ["anthropic.rotator-tests.invalid"]},
                        "claude_login": {"hosts": ["claude-login.rotator-tests.invalid"]},
                        "copilot": {"hosts": ["copilot.rotator-tests.invalid"]},
                        "chatgpt": {"hosts": ["chatgpt.rotator-tests.invalid"]},
                        "code_assist": {"hosts": ["code-assist.rotator-tests.invalid"]}}}


def served(vendor: FakeVendor) -> dict:
    """Config overrides: Rotator's login providers serve the logins, sending them to the fake vendor."""
    return {"providers": {"claude_login": {"base_url": vendor.url}, "copilot": {"base_url": vendor.url},
                          "code_assist": {"base_url": vendor.url},
                          "chatgpt": {"base_url": vendor.url + "/backend-api/codex"}}}

CLAUDE_TOKEN = "sk-ant-oat01-fake-login-token"
GEMINI_TOKEN = "ya29.fake-access-token"
COPILOT_TOKEN = "gho_fakeGitHubToken000000000000000000"
PROMPT = "Say hello"


@dataclass
class Login:
    """One run of a login CLI: what to start, where, with which environment."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    home: Path
    files: dict[str, Path] = field(default_factory=dict)  # the credentials and settings written for it
    timeout: float = 120


def need(cli: str) -> Path:
    """The CLI's executable, installing it if needed; skips the test (saying why) when it cannot be installed."""
    path = BINS[cli]
    if not path.exists():
        script = "setup-codex" if cli == "codex" else "setup-agents"
        setup = subprocess.run([str(REPO / "scripts" / script), *([] if cli == "codex" else [cli])],
                               capture_output=True, text=True, timeout=900)
        if setup.returncode != 0 or not path.exists():
            pytest.skip(f"the {cli} CLI could not be installed with npm: {setup.stderr.strip()[-500:]}")
    return path


def stand_in_args(vendor: FakeVendor, forward: bool = False, copilot_api: str | None = None) -> tuple[str, ...]:
    """mitmdump arguments that load the stand-in addon after Rotator: side calls answered, nothing else leaves.
    `forward`: the login hosts' generation paths go to the fake vendor (Rotator does not serve them)."""
    args = ["-s", STAND_INS, "--set", f"logins_vendor={vendor.url}"]
    if forward:
        args += ["--set", "logins_forward=true"]
    if copilot_api:
        args += ["--set", f"logins_copilot_api={copilot_api}"]
    return tuple(args)


def proxy_options(vendor: FakeVendor, forward: bool = False, copilot_api: str | None = None,
                  witness: Path | None = None) -> dict:
    """Keyword arguments for the `rotator` fixture: the stand-ins after Rotator (`stand_in_args`) and, with
    `witness`, the witness addon before it, recording into that directory the bodies as the clients sent them
    (tests/support/witness_addon.py)."""
    args = stand_in_args(vendor, forward, copilot_api)
    if witness is None:
        return {"args": args}
    return {"script": WITNESS, "args": ("-s", ADDON, "--set", f"witness_dir={witness}", *args)}


def _base(tmp_path: Path, proxy: Rotator) -> tuple[Path, Path, dict[str, str]]:
    home, work, tmp = tmp_path / "home", tmp_path / "work", tmp_path / "tmp"
    for d in (home, work, tmp):
        d.mkdir(exist_ok=True)
    # (TMPDIR: Gemini CLI writes an error report there for each failed turn)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TMPDIR": str(tmp), "NO_PROXY": "", "no_proxy": "",
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
           "XDG_STATE_HOME": str(home / ".local" / "state"), "XDG_DATA_HOME": str(home / ".local" / "share")}
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[name] = proxy.url
    return home, work, env


# --- Codex with a ChatGPT login


def codex_auth(expires_in: float = 3600) -> dict:
    """$CODEX_HOME/auth.json of a ChatGPT login (a past expiry makes Codex refresh it first)."""
    token = stand_ins.jwt(stand_ins.chatgpt_claims(expires_in))
    return {"auth_mode": "chatgpt", "OPENAI_API_KEY": None,
            "tokens": {"id_token": token, "access_token": token, "refresh_token": "rt_fake_initial",
                       "account_id": stand_ins.CHATGPT_ACCOUNT},
            "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def codex_chatgpt(tmp_path: Path, proxy: Rotator, prompt: str = PROMPT, expires_in: float = 3600) -> Login:
    home, work, env = _base(tmp_path, proxy)
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    auth = codex_home / "auth.json"
    auth.write_text(json.dumps(codex_auth(expires_in)))
    auth.chmod(0o600)
    env |= {"CODEX_HOME": str(codex_home), "SSL_CERT_FILE": str(proxy.ca_cert),
            "CODEX_CA_CERTIFICATE": str(proxy.ca_cert)}
    command = [str(BINS["codex"]), "exec", "--skip-git-repo-check", prompt]
    return Login("codex", command, env, work, home, {"auth": auth})


def codex_tui(tmp_path: Path, proxy: Rotator) -> Login:
    """Codex's TUI (`codex`, no command) on the same login, for a pseudo-terminal (tests/support/terminal.py): its
    work directory trusted and its update check off, so that it opens on its composer, and its app server in its own
    process (`daemon_auto_start` off: else it starts one in the background that outlives it)."""
    login = codex_chatgpt(tmp_path, proxy)
    config = login.env["CODEX_HOME"] + "/config.toml"
    Path(config).write_text("check_for_update_on_startup = false\n\n[features]\ndaemon_auto_start = false\n\n"
                            f"[projects.{json.dumps(str(login.cwd))}]\n"
                            'trust_level = "trusted"\n')
    login.command = [str(BINS["codex"])]
    login.env["TZ"] = "UTC"  # (the dates it shows)
    return login


# --- Claude Code with a Pro/Max login


def claude_credentials(expires_in: float = 8 * 3600) -> dict:
    """~/.claude/.credentials.json of a stored claude.ai login (refreshed 5 minutes before `expires_in` runs out)."""
    return {"claudeAiOauth": {"accessToken": CLAUDE_TOKEN, "refreshToken": "sk-ant-ort01-fake-refresh-token",
                              "expiresAt": int((time.time() + expires_in) * 1000),
                              "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
                              "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"}}


def claude_login(tmp_path: Path, proxy: Rotator, prompt: str = PROMPT, token: str = CLAUDE_TOKEN,
                 stored_expires_in: float | None = None) -> Login:
    """`CLAUDE_CODE_OAUTH_TOKEN` (what `claude setup-token` gives: never refreshed, not checked at start); or,
    with `stored_expires_in`, a stored login in ~/.claude/.credentials.json instead."""
    home, work, env = _base(tmp_path, proxy)
    files = {}
    if stored_expires_in is None:
        env |= {"CLAUDE_CODE_OAUTH_TOKEN": token, "CLAUDE_CODE_SUBSCRIPTION_TYPE": "max"}
    else:
        files["credentials"] = home / ".claude" / ".credentials.json"
        files["credentials"].parent.mkdir(exist_ok=True)
        files["credentials"].write_text(json.dumps(claude_credentials(stored_expires_in)))
        files["credentials"].chmod(0o600)
    env |= {"NODE_EXTRA_CA_CERTS": str(proxy.ca_cert), "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    command = [str(BINS["claude"]), "-p", prompt, "--max-turns", "1"]
    return Login("claude", command, env, work, home, files)


# --- Gemini CLI on Code Assist

GEMINI_SETTINGS = {"privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
                   "general": {"disableAutoUpdate": True, "disableUpdateNag": True}}


def gemini_oauth_creds(expires_in: float = 3600) -> dict:
    """~/.gemini/oauth_creds.json of a stored Google login (refreshed 5 minutes before `expires_in` runs out)."""
    return {"access_token": "ya29.fake-stored-token", "refresh_token": "1//fake-refresh-token",
            "scope": stand_ins.GOOGLE_SCOPES, "token_type": "Bearer", "id_token": "x.y.z",
            "expiry_date": int((time.time() + expires_in) * 1000)}


def gemini_code_assist(tmp_path: Path, proxy: Rotator, prompt: str = PROMPT, model: str = "gemini-2.5-flash",
                       stored_expires_in: float | None = None) -> Login:
    """`GOOGLE_GENAI_USE_GCA` with `GOOGLE_CLOUD_ACCESS_TOKEN` (a token as given: no tokeninfo, no refresh); or,
    with `stored_expires_in`, a stored login in ~/.gemini/oauth_creds.json instead (checked at tokeninfo)."""
    home, work, env = _base(tmp_path, proxy)
    files = {"settings": home / ".gemini" / "settings.json"}
    files["settings"].parent.mkdir(parents=True, exist_ok=True)
    settings = dict(GEMINI_SETTINGS)
    if stored_expires_in is None:
        env |= {"GOOGLE_GENAI_USE_GCA": "true", "GOOGLE_CLOUD_ACCESS_TOKEN": GEMINI_TOKEN}
    else:
        settings["security"] = {"auth": {"selectedType": "oauth-personal"}}
        files["credentials"] = home / ".gemini" / "oauth_creds.json"
        files["credentials"].write_text(json.dumps(gemini_oauth_creds(stored_expires_in)))
        files["credentials"].chmod(0o600)
    files["settings"].write_text(json.dumps(settings))
    env |= {"NODE_EXTRA_CA_CERTS": str(proxy.ca_cert), "GEMINI_CLI_TRUST_WORKSPACE": "true",
            "GEMINI_CLI_NO_RELAUNCH": "true", "GEMINI_TELEMETRY_ENABLED": "false"}
    command = [str(BINS["gemini"]), "-m", model, "-p", prompt, "-o", "text"]
    return Login("gemini", command, env, work, home, files)


# --- Copilot CLI


def copilot(tmp_path: Path, proxy: Rotator, prompt: str = PROMPT, token: str = COPILOT_TOKEN) -> Login:
    """`COPILOT_GITHUB_TOKEN` (a GitHub token; the API host comes from api.github.com/copilot_internal/user)."""
    home, work, env = _base(tmp_path, proxy)
    env |= {"COPILOT_GITHUB_TOKEN": token, "COPILOT_AUTO_UPDATE": "false",
            "COPILOT_PKG_CACHE_HOME": str(COPILOT_PKG_CACHE), "NODE_EXTRA_CA_CERTS": str(proxy.ca_cert),
            "SSL_CERT_FILE": str(proxy.ca_cert)}
    command = [str(BINS["copilot"]), "-p", prompt, "-s", "--no-auto-update"]
    return Login("copilot", command, env, work, home)


def run(login: Login, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(login.command, cwd=login.cwd, env=login.env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout or login.timeout)


def start(login: Login) -> subprocess.Popen:
    """The CLI started and left running (for a run a test does not wait out); the caller ends it."""
    return subprocess.Popen(login.command, cwd=login.cwd, env=login.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def side_calls(proxy: Rotator) -> list[str]:
    """What the stand-in addon did during this test, one `<what> <METHOD> <host><path> -> <status>` per call."""
    return [line.split("logins: ", 1)[1].strip() for line in proxy.log.splitlines() if "logins: " in line]


def carried_on(first, second, provider: str) -> None:
    """The saved flows of a plan carried on by a pool: the first left the exhausted login for `provider`'s pool
    (whose key was chosen for the conversation, new to it: its decision trail says so), the second did not ask the
    login again."""
    rotator = first.metadata["rotator"]
    assert [n["kind"] for n in rotator["events"]] == ["fallback"]
    assert chosen(first) == ["new"]
    assert rotator["provider"] == provider
    assert "was not asked (plan exhausted until" in second.metadata["rotator"]["events"][0]["detail"]


def proxy_for(rotator, fake_vendor: FakeVendor, tmp_path: Path, *overrides: dict, witness: bool = False,
              fresh: bool = True, **sections) -> Rotator:
    """Rotator serving the logins (the fake vendor their base_url, `overrides` merged over it), the stand-ins after
    it (with `witness`, the witness addon before it, into tmp_path/witness), its flows saved in tmp_path/flows."""
    config: dict = served(fake_vendor)
    for override in overrides:
        config = merge(config, override)
    options = proxy_options(fake_vendor, witness=tmp_path / "witness" if witness else None)
    options["args"] = (*options["args"], "-w", str(tmp_path / "flows"))
    return rotator(config, apply_env=False, fresh=fresh, **options, **sections)


def no_stray_calls(proxy: Rotator) -> None:
    """No side call of the CLI reached a host the stand-ins do not answer."""
    assert not [call for call in side_calls(proxy) if call.startswith("refused")]

