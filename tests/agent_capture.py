"""Captures what real agent CLIs send, as fixtures for the fidelity suite (tests/test_fidelity.py).

Run through `scripts/capture-agent-requests` (it installs the CLIs first). Each CLI runs against the fake vendor
on 127.0.0.1 through its own base-URL variable (plain HTTP: nothing between the CLI and the recorder), except
Codex, which opens a WebSocket first and so goes through a real Rotator that passes its HTTPS POSTs on unchanged
(as in tests/e2e/test_codex.py). Each gets an empty home, telemetry and update checks off, and every other host
unreachable (HTTPS_PROXY to a closed port). Two runs per CLI: a plain question, and a task the fake vendor answers
with a call of one of the CLI's read-only tools, so that the CLI's follow-up carries the tool's result (aider has no
tools: only the first run). Each generation request is written to tests/fixtures/agents/<cli>-<version>/<run>-<n>.json
with the headers that shape it; machine paths, user and host names, and session, device and account ids are
replaced by stable placeholders.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.fake_vendor import FakeVendor, Fault
from tests.support.harness import RotatorProcess, default_config

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "agents"
AGENTS = REPO / ".cache" / "agents"
PROTOCOL_NAMES = {"chat": "openai_chat", "responses": "openai_responses", "anthropic": "anthropic_messages",
                  "gemini": "gemini"}
KEPT_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta", "content-type")
PROMPTS = {"plain": "Say hello in one short sentence.", "tool": "Which files are in the current directory?"}


@dataclasses.dataclass(frozen=True)
class Agent:
    name: str
    binary: Path
    tool: str | None  # the read-only tool the fake vendor calls (None: the CLI has no tools, only a plain run)
    arguments: dict  # its arguments; "{work}" in a value stands for the directory the CLI runs in

    def version(self) -> str:
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True, check=True).stdout
        return re.search(r"\d+\.\d+\.\d+", out).group(0)

    def command(self, prompt: str) -> list[str]:
        if self.name == "codex":
            return [str(self.binary), "exec", "--skip-git-repo-check", "--sandbox", "read-only", prompt]
        if self.name == "aider":
            return [str(self.binary), "--model", "openai/gpt-4.1", "--message", prompt, "--yes-always", "--no-git",
                    "--no-check-update", "--analytics-disable", "--no-show-model-warnings", "--no-pretty"]
        if self.name == "gemini":  # a named model: "auto" first asks a router model for a JSON verdict
            return [str(self.binary), "-m", "gemini-2.5-flash", "-p", prompt]
        return [str(self.binary), "-p", prompt]

    def environ(self, vendor: str, home: Path, proxy: RotatorProcess | None) -> dict[str, str]:
        env = {
            "PATH": os.environ["PATH"], "HOME": str(home), "USER": "user", "LANG": "C.UTF-8", "TERM": "dumb",
            # Every host but the fake vendor is unreachable: no telemetry, update check or plugin list leaves.
            "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1",
        }
        if self.name == "aider":
            env |= {"OPENAI_API_BASE": f"{vendor}/v1", "OPENAI_API_KEY": "sk-capture",
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no price list fetched from GitHub
        elif self.name == "claude":
            env |= {"ANTHROPIC_BASE_URL": vendor, "ANTHROPIC_API_KEY": "sk-ant-api03-capture",
                    "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CONFIG_DIR": str(home / ".claude")}
        elif self.name == "gemini":
            env |= {"GOOGLE_GEMINI_BASE_URL": vendor, "GEMINI_API_KEY": "capture-key",
                    "GEMINI_TELEMETRY_ENABLED": "false", "GEMINI_CLI_NO_RELAUNCH": "true",
                    "GEMINI_CLI_TRUST_WORKSPACE": "true"}
            settings = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                        "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
                        "general": {"disableAutoUpdate": True, "disableUpdateNag": True}}
            (home / ".gemini").mkdir(parents=True, exist_ok=True)
            (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
        else:
            (home / ".codex").mkdir(parents=True, exist_ok=True)
            (home / ".codex" / "config.toml").write_text("check_for_update_on_startup = false\n"
                                                          "[analytics]\nenabled = false\n")
            env |= {"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}", "SSL_CERT_FILE": str(proxy.ca_cert),
                    "OPENAI_API_KEY": "sk-capture", "CODEX_HOME": str(home / ".codex")}
        return env


def agents() -> dict[str, Agent]:
    codex = REPO / ".cache" / "codex" / "node_modules" / ".bin" / "codex"
    return {
        "aider": Agent("aider", REPO / ".cache" / "aider-venv" / "bin" / "aider", None, {}),  # scripts/setup-clients
        "claude": Agent("claude", AGENTS / "claude" / "node_modules" / ".bin" / "claude", "Read",
                        {"file_path": "{work}/notes.txt"}),
        "codex": Agent("codex", codex, "list_agents", {}),
        "gemini": Agent("gemini", AGENTS / "gemini" / "node_modules" / ".bin" / "gemini", "list_directory",
                        {"dir_path": "."}),
    }


class ToolCallingVendor(FakeVendor):
    """Answers a request that offers `tool`, and carries no tool result yet, with a call of it; any other with text."""

    tool: tuple[str, dict] | None = None
    _next = Fault()

    def _record(self, request, raw, peer=None):
        self._next = self._answer(raw)
        return super()._record(request, raw, peer)

    def _pick(self, credential):
        return self._next

    def _answer(self, raw: bytes) -> Fault:
        if self.tool is None:
            return Fault()
        name, arguments = self.tool
        text = raw.decode("utf-8", "replace")
        offered = f'"{name}"' in text
        answered = any(marker in text for marker in ('"tool_result"', '"function_call_output"', '"functionResponse"',
                                                     '"custom_tool_call_output"', '"role":"tool"'))
        return Fault.tool_call(name, arguments) if offered and not answered else Fault()


def scrubber(home: Path, work: Path):
    """A function that replaces what identifies this machine, user or session in a text, the same way every time."""
    user, host = getpass.getuser(), socket.gethostname()
    slug = re.sub(r"[^A-Za-z0-9]", "-", str(work))  # how Claude Code names a project directory
    literal = [(str(work), "/work/project"), (slug, "-work-project"), (str(home), "/home/user"),
               (str(home.parent), "/tmp/capture"), (home.parent.name, "capture")]
    if user not in ("user", "root"):
        literal.append((user, "user"))
    literal.append((host, "host"))
    seen: dict[str, dict[str, str]] = {"uuid": {}, "hex": {}}

    def placeholder(kind: str, value: str) -> str:
        known = seen[kind]
        if value not in known:
            n = len(known) + 1
            known[value] = f"00000000-0000-4000-8000-{n:012d}" if kind == "uuid" else f"hex-id-{n}"
        return known[value]

    def scrub(text: str) -> str:
        for old, new in literal:
            text = text.replace(old, new)
        text = re.sub(r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])",
                      lambda m: placeholder("uuid", m.group(0)), text)
        text = re.sub(r"\b[0-9a-f]{32,}\b", lambda m: placeholder("hex", m.group(0)), text)
        return re.sub(r"\bcch=[0-9a-f]+", "cch=00000", text)  # Claude Code's per-request billing hash

    return scrub


def capture(agent: Agent, out: Path) -> list[Path]:
    vendor = ToolCallingVendor().start()
    written: list[Path] = []
    proxy, proxy_dir = None, Path(tempfile.mkdtemp(prefix="capture-rotator-"))
    if agent.name == "codex":
        loopback_only = ("--set", r"block_list=|!~d ^api\.openai\.com$|403")
        proxy = RotatorProcess(default_config(vendor.url), proxy_dir, {}, loopback_only).start()
    try:
        for run, prompt in PROMPTS.items():
            if run == "tool" and agent.tool is None:
                continue
            vendor.reset()
            with tempfile.TemporaryDirectory(prefix="capture-") as tmp:
                home, work = Path(tmp) / "home", Path(tmp) / "project"
                arguments = json.loads(json.dumps(agent.arguments).replace("{work}", str(work)))
                vendor.tool = (agent.tool, arguments) if run == "tool" else None
                home.mkdir()
                work.mkdir()
                (work / "notes.txt").write_text("a file for the agent to find\n")
                done = subprocess.run(agent.command(prompt), cwd=work, env=agent.environ(vendor.url, home, proxy),
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
                print(f"{agent.name} {run}: exit {done.returncode}; {len(vendor.calls())} generation requests",
                      file=sys.stderr)
                if done.returncode != 0:
                    print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
                scrub = scrubber(home, work)
                for n, call in enumerate(vendor.calls(), 1):
                    fixture = {
                        "agent": agent.name,
                        "protocol": PROTOCOL_NAMES[call.protocol],
                        "path": call.path + (f"?{call.query}" if call.query else ""),
                        "model": call.model,
                        "stream": call.stream,
                        "headers": {k: v for k, v in call.headers.items() if k in KEPT_HEADERS},
                        "body": call.body,
                    }
                    path = out / f"{run}-{n}.json"
                    path.write_text(scrub(json.dumps(fixture, indent=1, ensure_ascii=False)) + "\n")
                    written.append(path)
    finally:
        vendor.stop()
        if proxy is not None:
            proxy.stop()
        shutil.rmtree(proxy_dir, ignore_errors=True)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Capture real agent CLI requests as fixtures.")
    parser.add_argument("clis", nargs="*", default=sorted(agents()), help="aider, claude, codex, gemini (default: all)")
    args = parser.parse_args()
    for name in args.clis:
        agent = agents()[name]
        out = FIXTURES / f"{name}-{agent.version()}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for path in capture(agent, out):
            print(f"  {path.relative_to(REPO)} ({path.stat().st_size // 1024} KB)", file=sys.stderr)


if __name__ == "__main__":
    main()
