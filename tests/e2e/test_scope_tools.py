"""A shell pointed at Rotator (HTTPS_PROXY exported, or each tool run by scripts/with-rotator) goes on working as usual: in a private namespace where github.com, pypi.org,
registry.npmjs.org and plain.example are local TLS sites whose CA is in the system's trust store (not mitmproxy's,
tests/support/tool_sites.py), real git, pip, npm and curl reach them through the real `mitmdump -s addons/rotator.py`
with their own trust, and the flow file it writes holds none of them (tunnelled, never opened); an LLM call from the
same shell, trusting the system's roots with mitmproxy's CA added, is still intercepted and repaired."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cloud_net import unavailable
from tests.support.fake_vendor import Fault
from tests.support.flows import read_flows
from tests.support.harness import REPO, Rotator
from tests.support.tool_sites import (
    PACKAGE,
    PLAIN,
    PLAIN_TEXT,
    PYPI,
    SITES,
    VENDOR_PORT,
    VIAS,
    ToolWorld,
    command,
    missing_tools,
    tool_env,
)

POOL = ["sk-scope-pool-a", "sk-scope-pool-b"]
CONFIG = {"providers": {"openai": {"base_url": f"http://127.0.0.1:{VENDOR_PORT}/v1", "keys": POOL}},
          "streaming": {"first_token_timeout": 1, "idle_timeout": 30}}
LLM_CALL = """
import openai
stream = openai.OpenAI(max_retries=0).chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
print("".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[ToolWorld]:
    why = unavailable() or missing_tools()
    if why:
        pytest.skip(why)
    world = ToolWorld(tmp_path_factory.mktemp("tool-world")).start()
    yield world
    world.stop()


def run_tools(world: ToolWorld, via: str, proxy: Rotator, env: dict[str, str], tmp_path: Path) -> dict:
    """git clone, pip download, npm view and install, curl, each run `via` the shell or the wrapper: each one's run,
    by name."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "project", "version": "1.0.0"}')

    def run(argv: list[str], cwd: Path):
        return world.run(command(via, argv, proxy), env, cwd)

    return {
        "git": run(["git", "clone", "-q", world.repo_url, str(tmp_path / "clone")], tmp_path),
        "pip": run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp_path / "wheels"),
                    "--index-url", f"https://{PYPI}/simple/", PACKAGE], tmp_path),
        "npm view": run(["npm", "view", PACKAGE, "version"], project),
        "npm install": run(["npm", "install", "--no-audit", "--no-fund", PACKAGE], project),
        "curl": run(["curl", "-sS", "--fail", f"https://{PLAIN}/"], tmp_path),
    }


@pytest.mark.parametrize("via", VIAS)
def test_a_shells_tools_are_tunnelled_and_its_llm_calls_still_repaired(world, via, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    proxy = world.rotator(CONFIG, args=("-w", str(flows_path)))
    env = tool_env(via, world, proxy, tmp_path / "home")

    done = run_tools(world, via, proxy, env, tmp_path)
    for tool, run in done.items():
        assert run.returncode == 0, f"{tool} failed:\n{run.stdout[-1500:]}\n{run.stderr[-3000:]}"
    assert (tmp_path / "clone" / "README").read_text() == "cloned through a tunnel\n"
    assert (tmp_path / "wheels" / f"{PACKAGE}-1.0-py3-none-any.whl").is_file()
    assert done["npm view"].stdout.strip() == "1.0.0"
    assert (tmp_path / "project" / "node_modules" / PACKAGE / "index.js").is_file()
    assert done["curl"].stdout.encode() == PLAIN_TEXT

    assert world.vendor is not None
    world.vendor.script(Fault.stall_before_headers(5), Fault.ok("repaired after a stall"))
    llm_env = env | {"OPENAI_API_KEY": "sk-client-own"}
    if via == "shell":  # (the wrapper adds mitmproxy's CA to the system's roots itself)
        llm_env["SSL_CERT_FILE"] = str(world.combined_bundle(proxy))
    answer = world.run(command(via, [sys.executable, "-c", LLM_CALL], proxy), llm_env, REPO, timeout=60)
    assert (answer.returncode, answer.stdout.strip()) == (0, "repaired after a stall"), answer.stderr[-3000:]
    first, second = world.vendor.wait_for(2, done=False)[:2]
    assert {first.credential, second.credential} == set(POOL)  # the stalled key's attempt retried on the other

    log = proxy.full_log
    for host in SITES:  # every tool went through Rotator, to the site itself
        assert f"server connect {host}:443" in log, log[-3000:]
    proxy.proc.stop()
    flows = read_flows(flows_path)
    assert {flow.request.pretty_host for flow in flows} == {"api.openai.com"}
    [flow] = flows
    assert flow.metadata["rotator"]["key"] is not None and "retried" in (flow.comment or "")
    assert {host for host, _ in world.sites.seen} == set(SITES)
