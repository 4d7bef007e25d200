"""The commands README.md and docs/*.md tell a user to run, checked without the network: every program named exists,
every flag parses as the program parses it, and every `--set NAME=` names an option the real
`mitmdump -s addons/rotator.py` (or mitmweb) has. Also: the README reaches the status page and /metrics as the
start-up block says, docs/translation.md's example runs, every repository path the pages name exists, and links
between the pages resolve, anchors included."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.harness import ADDON, MITMDUMP, REPO, clean_environ

pytestmark = pytest.mark.e2e

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SH_BLOCK = re.compile(r"^ *```sh\n(.*?)^ *```", re.S | re.M)
FENCED = re.compile(r"^ *```.*?^ *```", re.S | re.M)
CODE_SPAN = re.compile(r"`([^`]+)`")  # (a span may wrap onto the next line)
# Code spans in prose that are whole commands a user may paste (not a flag or a value on its own).
COMMAND_SPAN = re.compile(r"^(?:[A-Z0-9_]+=\S+ )*(?:scripts/|\.venv/bin/|mitmdump |mitmweb |curl )")
MITMPROXY_TOOLS = {"scripts/run": "mitmdump", ".venv/bin/mitmdump": "mitmdump", "mitmdump": "mitmdump",
                   ".venv/bin/mitmweb": "mitmweb", "mitmweb": "mitmweb"}
# Tools the docs show how to run through Rotator; installed by scripts/setup-clients and scripts/setup-opencode.
CLIENT_TOOLS = {"aider": REPO / ".cache/aider-venv/bin/aider",
                "claude": REPO / ".cache/agents/claude/node_modules/.bin/claude",
                "opencode": REPO / ".cache/opencode/node_modules/.bin/opencode"}
PLACEHOLDER = "..."


def page_name(page: Path) -> str:
    return str(page.relative_to(REPO))


def without_assignments(argv: list[str]) -> list[str]:
    """The command after any leading `NAME=value` environment assignments."""
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
        argv = argv[1:]
    return argv


def shell_lines(text: str) -> list[str]:
    """A block's commands, one per line, continuation lines joined."""
    return [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for each line of every `sh` block and every command-shaped code span in prose."""
    commands = []
    for page in PAGES:
        text = page.read_text()
        for block in SH_BLOCK.findall(text):
            for line in shell_lines(block):
                argv = shlex.split(line, comments=True)
                if argv:
                    commands.append((f"{page_name(page)}: {line.strip()}", argv))
        prose = FENCED.sub("", text)
        for span in CODE_SPAN.findall(prose):
            span = " ".join(span.split())
            if COMMAND_SPAN.match(span) and is_program(without_assignments(shlex.split(span))[0]):
                commands.append((f"{page_name(page)}: `{span}`", shlex.split(span)))
    return commands


def installed(program: str) -> Path:
    """Where a program the pages name is: `.venv/bin/X` in the environment the tests run in (scripts/setup's)."""
    if program.startswith(".venv/bin/"):
        return MITMDUMP.with_name(program.removeprefix(".venv/bin/"))
    return REPO / program


def is_program(word: str) -> bool:
    """A word of prose that names a program rather than a file (`scripts/constraints-py312.txt`)."""
    path = installed(word)
    return word in MITMPROXY_TOOLS or word == "curl" or path.is_file() and os.access(path, os.X_OK)


COMMANDS = documented_commands()


@functools.cache
def mitmproxy_parser(tool: str):
    """The argument parser the real mitmdump or mitmweb builds (it needs a master's options to exist)."""
    from mitmproxy import options
    from mitmproxy.tools import cmdline

    async def build():
        opts = options.Options()
        if tool == "mitmweb":
            from mitmproxy.tools.web.master import WebMaster
            WebMaster(opts)
            return cmdline.mitmweb(opts)
        from mitmproxy.tools.dump import DumpMaster
        DumpMaster(opts)
        return cmdline.mitmdump(opts)

    return asyncio.run(build())


def option_names(tool: str, home: Path) -> set[str]:
    """Every option `TOOL -s addons/rotator.py` has, Rotator's own included, as its `--options` lists them."""
    done = subprocess.run([str(MITMDUMP.with_name(tool)), "-s", ADDON, "--options"], cwd=REPO,
                          env=clean_environ({"HOME": str(home)}), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return set(re.findall(r"^([a-z_][a-z0-9_]*):", done.stdout, re.M))


@pytest.fixture(scope="module")
def mitmproxy_options(tmp_path_factory) -> dict[str, set[str]]:
    home = tmp_path_factory.mktemp("home")  # (mitmproxy makes its CA in ~/.mitmproxy)
    with ThreadPoolExecutor(2) as pool:
        names = dict(zip(("mitmdump", "mitmweb"), pool.map(lambda tool: option_names(tool, home),
                                                           ("mitmdump", "mitmweb"))))
    assert {"rotator_config", "rotator_status_host", "listen_host"} <= names["mitmdump"], names
    return names


def check_mitmproxy_command(tool: str, args: list[str], known: set[str]) -> None:
    from mitmproxy.proxy import mode_specs

    parsed = mitmproxy_parser(tool).parse_args(["-s", ADDON, *args])  # exits (SystemExit) on an unknown flag
    for setting in parsed.setoptions or []:
        name = setting.split("=", 1)[0]
        assert name in known, f"{tool} has no option {name!r}"
    for spec in parsed.mode or []:
        mode_specs.ProxyMode.parse(spec)


def option_value(args: list[str], flag: str) -> str:
    assert flag in args, f"no {flag} in {args}"
    return args[args.index(flag) + 1]


def scripts_module(name: str):
    """A module of scripts/ (bench_lib, cluster_lib, files_lib), which is not a package of the project."""
    import importlib

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "scripts"))


def help_text(command: list[str]) -> str:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=clean_environ({"HOME": str(Path.home())}))
    return done.stdout + done.stderr


def check_flags_in_help(help_command: list[str], args: list[str]) -> None:
    text = help_text(help_command)
    for arg in args:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), f"{help_command[0]} has no {flag}"


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_a_documented_command_runs_as_written(where, argv, mitmproxy_options):
    check_command(where, argv, mitmproxy_options)


def check_command(where: str, argv: list[str], mitmproxy_options: dict[str, set[str]]) -> None:
    argv = [arg for arg in without_assignments(argv) if arg != PLACEHOLDER]
    program, args = argv[0], argv[1:]
    if program == "eval":  # eval "$(COMMAND)": the command it evaluates the output of
        [inner] = args
        assert inner.startswith("$(") and inner.endswith(")"), where
        check_command(where, shlex.split(inner[2:-1]), mitmproxy_options)
    elif program == "scripts/with-rotator":  # (without arguments: the program named in prose)
        command = scripts_module("with_rotator_lib.main").parse(args, {})[3] if args else []
        if command and (command[0] in ("curl", *CLIENT_TOOLS) or command[0].startswith("scripts/")):
            check_command(where, command, mitmproxy_options)  # (the agent CLIs and python are checked elsewhere)
    elif program == "export":
        assert args and all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", arg) for arg in args), where
    elif program == "scripts/run" and args == ["--help"]:
        assert "Rotator's options:" in help_text([program, "--help"]), where
    elif program in MITMPROXY_TOOLS:
        assert program.count("/") == 0 or installed(program).exists(), f"{where}: no {program}"
        tool = MITMPROXY_TOOLS[program]
        check_mitmproxy_command(tool, args, mitmproxy_options[tool])
    elif program == "scripts/bench":
        parse_args = scripts_module("bench_lib.main").parse_args
        parse_args(args)
    elif program == "scripts/files-per-request":
        scripts_module("files_lib.main").parse_args(args)
    elif program == "scripts/cluster":
        plan = scripts_module("cluster_lib.arguments").parse(args)  # its own options; the rest are mitmdump's
        check_mitmproxy_command("mitmdump", plan.worker_args, mitmproxy_options["mitmdump"])
    elif program in ("scripts/setup", "scripts/setup-clients", "scripts/setup-opencode", "scripts/setup-codex"):
        assert args in ([], ["--test"] if program == "scripts/setup" else []), where
    elif program == "scripts/lint":
        assert args == [], where
    elif program in ("scripts/setup-agents", "scripts/capture-agent-requests"):
        assert set(args) <= {"aider", "claude", "codex", "gemini"}, f"{where}: {args} are not agent CLIs"
    elif program == ".venv/bin/pip":
        done = subprocess.run([str(installed(program)), *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{where}: {done.stderr}"
    elif program == "scripts/test":
        for arg in args:
            assert arg.startswith("-") or (REPO / arg.split("::")[0]).exists(), f"{where}: no {arg}"
    elif program == "curl":
        if shutil.which("curl") is None:
            pytest.skip("curl is not installed")
        check_flags_in_help(["curl", "--help", "all"], args)
    elif program == "docker":  # (not installed here: the compose file it names is checked by tests/test_deploy.py)
        assert args[0] == "compose" and (REPO / option_value(args, "-f")).is_file(), where
    elif program in CLIENT_TOOLS:
        if not CLIENT_TOOLS[program].exists():
            pytest.skip(f"{program} is not installed ({CLIENT_TOOLS[program].relative_to(REPO)})")
        subcommand = args[:1] if program == "opencode" else []  # (`opencode run ...`: the flags are run's)
        check_flags_in_help([str(CLIENT_TOOLS[program]), *subcommand, "--help"], args[len(subcommand):])
    else:
        pytest.fail(f"{where}: {program} is neither a script of the repository nor a program the docs explain")
    if program.startswith("scripts/"):
        assert (REPO / program).stat().st_mode & 0o111, f"{program} is not executable"


def test_every_option_the_pages_name_exists(mitmproxy_options):
    """`--set NAME=...` anywhere in the pages, prose included, names an option of mitmdump or mitmweb with Rotator."""
    known = mitmproxy_options["mitmdump"] | mitmproxy_options["mitmweb"]
    named = {(page_name(page), name) for page in PAGES for name in re.findall(r"--set (\w+)=", page.read_text())}
    assert {name for _, name in named} >= {"rotator_config", "rotator_status_host", "rotator_in_memory"}
    assert [(page, name) for page, name in sorted(named) if name not in known] == []


def test_the_readme_reaches_the_status_page_and_metrics_as_the_start_up_block_does():
    from addons.welcome import Setup, welcome

    block = welcome(Setup(None, [], Path("/ca.pem"), "http://127.0.0.1:8080", proxyauth=False, clients=False,
                          status_host="rotator.status"))
    hints = [line.split(": ", 1)[1] for line in block.splitlines() if ": curl " in line]
    assert len(hints) == 2, block  # the status page and the metrics
    readme = [" ".join(argv) for where, argv in COMMANDS if where.startswith("README.md: ")]
    assert [hint for hint in hints if hint not in readme] == []


def test_the_documented_commands_are_found():
    """The extraction itself: the pages' commands are seen (a change in the pages' markup would hide them)."""
    found = [" ".join(argv) for _, argv in COMMANDS]
    assert "scripts/run" in found and "scripts/test" in found
    assert any(command.startswith("scripts/run --listen-host 0.0.0.0 --proxyauth") for command in found)
    assert any(command.startswith("curl -x http://127.0.0.1:8080 http://rotator.status/metrics") for command in found)
    assert any(command.startswith("scripts/with-rotator opencode run") for command in found)
    assert 'eval $(scripts/with-rotator --print-env)' in found
    assert "ROTATOR_E2E_HANDOFF=tcp scripts/test tests/e2e" in found


def test_the_translation_example_runs_as_written():
    """docs/translation.md's Python block, with its free names bound to small samples of what they stand for."""
    [block] = re.findall(r"^```python\n(.*?)^```", (REPO / "docs" / "translation.md").read_text(), re.S | re.M)
    names = {
        "time": time, "model": "gemini-2.5-flash", "status": 429,
        "body": {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]},
        "upstream_json": {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                                       "finish_reason": "stop"}]},
        "upstream_error_bytes": b'{"error": {"message": "slow down", "type": "rate_limit_error"}}',
    }
    exec(block, names)
    assert names["path"].endswith("/models/gemini-2.5-flash:streamGenerateContent")
    assert names["answer"]["content"] == [{"type": "text", "text": "hello"}]
    assert (names["status"], json.loads(names["error_body"])["error"]["type"]) == (429, "rate_limit_error")


REPO_PATH = re.compile(r"(?<![\w./-])((?:addons|rewrite|protocols|scripts|tests|docs)/[\w./-]*\w)")


def test_every_file_the_pages_name_exists():
    """A path of the repository named in prose (`rewrite/exchange/exchange.py`, docs/security.md) is there."""
    named = {(page_name(page), path) for page in PAGES
             for path in REPO_PATH.findall(re.sub(r"\]\([^)]*\)", "]", FENCED.sub("", page.read_text())))}
    assert len(named) > 30
    assert [(page, path) for page, path in sorted(named) if not (REPO / path).exists()] == []


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation other than - and _ dropped, spaces as -."""
    text = FENCED.sub("", page.read_text())
    slugs: set[str] = set()
    for heading in HEADING.findall(text):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in slugs:
            n += 1
            unique = f"{slug}-{n}"
        slugs.add(unique)
    return slugs


def relative_links() -> list[tuple[str, Path, str]]:
    links = []
    for page in PAGES:
        text = FENCED.sub("", page.read_text())
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            links.append((f"{page_name(page)}: {target}", page, target))
    return links


LINKS = relative_links()


@pytest.mark.parametrize("where, page, target", LINKS, ids=[where for where, _, _ in LINKS])
def test_a_link_between_pages_resolves(where, page, target):
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    assert linked.exists(), f"{where}: no file {linked}"
    if anchor:
        assert anchor in anchors(linked), f"{where}: {page_name(linked)} has no heading #{anchor}"
