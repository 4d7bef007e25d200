"""A newcomer's first ten minutes: what the start-up log says, how a broken or copied-literally config stops it, and
what `scripts/run --help` says. Real `mitmdump -s addons/rotator.py` processes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from tests.support.fake_vendor import TEXT
from tests.support.harness import (
    ADDON,
    CLIENT_KEYS,
    MITMDUMP,
    POOL_KEYS,
    REPO,
    clean_environ,
    dies_with_test_run,
    free_port,
    listen_port_drawn_again,
    port_taken,
)
from tests.support.startup import start_up_block, wait_for_block
from tests.support.with_rotator import WRAPPER

pytestmark = pytest.mark.e2e

LISTENING = "proxy listening"


def test_the_start_up_block_says_what_runs_and_how_to_run_a_tool_through_it(fake_vendor, rotator):
    proxy = rotator(apply_env=False)
    block = wait_for_block(proxy)
    ca = proxy.ca_cert
    assert f"config: {proxy.config_path}\n" in block, block
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"  Rotator {version} (CHANGELOG.md" in block, block  # the version a user reports, as it runs
    assert "intercepting: " in block
    for host, provider in [("api.openai.com", "openai"), ("api.anthropic.com", "anthropic"),
                           ("generativelanguage.googleapis.com", "gemini")]:
        assert f"{host} ({provider})" in block, block
    assert f"clients must trust mitmproxy's CA: {ca}\n" in block, block
    wrapper = f"{WRAPPER} --proxy http://127.0.0.1:{proxy.port} --confdir {proxy.proc.confdir}"
    assert f"    {wrapper} CMD [ARGS...]\n" in block, block
    assert f'    eval "$({wrapper} --print-env)"' in block, block
    assert "export " not in block and "SSL_CERT_FILE" not in block, block  # (no trust store replaced)
    assert ca.exists()  # the file it names is the one mitmproxy made
    assert not any(key in proxy.full_log for key in ("sk-pool-1", "sk-ant-pool-1", "g-pool-1"))


def test_every_hint_in_the_start_up_block_works_as_printed(fake_vendor, rotator):
    """The block's lines pasted into a shell: its wrapper runs curl through Rotator to a vendor, its --print-env
    line sets a shell up to do the same, and its status command works by itself (curl sends only https:// URLs to
    HTTPS_PROXY, so the plain http page needs `-x`)."""
    proxy = rotator(apply_env=False, fresh=True)  # (its metrics count this test's one request alone)
    block = wait_for_block(proxy)
    [wrapper] = [line.strip().removesuffix(" CMD [ARGS...]") for line in block.splitlines()
                 if line.strip().startswith(str(WRAPPER))]
    [shell_setup] = [line.strip() for line in block.splitlines() if line.strip().startswith("eval ")]
    [status] = [line.split(": ", 1)[1] for line in block.splitlines() if "pools, keys and usage: " in line]
    shell = clean_environ({"HOME": str(proxy.proc.workdir)})

    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    vendor_call = ("curl -sS --fail https://api.openai.com/v1/chat/completions -H 'content-type: application/json' "
                   f"-H 'authorization: Bearer {CLIENT_KEYS['OPENAI_API_KEY']}' -d '{body}'")
    for script in (f"{wrapper} {vendor_call}", f"{shell_setup}\n{vendor_call}"):
        done = subprocess.run(["bash", "-c", script], env=shell, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (block, done.stderr)
        assert json.loads(done.stdout)["choices"][0]["message"]["content"] == TEXT

    for script in (status, f"{shell_setup}\n{status}"):  # alone, and in the shell set up as the block says
        done = subprocess.run(["bash", "-c", script], env=shell, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (block, done.stderr)
        assert "openai (round-robin): " in done.stdout and "requests 1h / all" in done.stdout, done.stdout
    [metrics] = [line.split(": ", 1)[1] for line in block.splitlines() if "Prometheus metrics: " in line]
    done = subprocess.run(["bash", "-c", metrics], env=shell, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (block, done.stderr)
    assert 'rotator_requests_total{model="gpt-4o-mini",outcome="ok",provider="openai"} 2.0' in done.stdout, done.stdout
    assert not any(key in proxy.full_log for keys in POOL_KEYS.values() for key in keys)


def run_briefly(command: list[str], env: dict[str, str], until: str | None, timeout: float = 30.0,
                cwd: Path = REPO) -> tuple[int | None, str]:
    """Start mitmdump; stop it once `until` is in its output (None: wait for it to exit). (exit code, output).
    Started again on another port when its drawn --listen-port was taken before it bound it."""
    for _ in range(2):
        returncode, output = _run_briefly(command, env, until, timeout, cwd)
        if not port_taken(output):
            break
        command = listen_port_drawn_again(command)
    return returncode, output


def _run_briefly(command: list[str], env: dict[str, str], until: str | None, timeout: float,
                 cwd: Path) -> tuple[int | None, str]:
    out = Path(env["HOME"]) / "mitmdump.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=dies_with_test_run())
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None or (until is not None and until in out.read_text(errors="replace")):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"mitmdump did not get to {until!r} in {timeout:g}s:\n{out.read_text(errors='replace')}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
    return proc.returncode, out.read_text(errors="replace")


def mitmdump(tmp_path: Path, *args: str) -> list[str]:
    return [str(MITMDUMP), "-s", ADDON, "--listen-host", "127.0.0.1", "--listen-port", str(free_port()),
            "--set", f"confdir={tmp_path / 'confdir'}", *args]


def test_without_a_config_the_block_says_the_embedded_defaults_are_in_use(tmp_path):
    env = clean_environ({"HOME": str(tmp_path)})  # no ~/.config/rotator/config.yaml there
    _, output = run_briefly(mitmdump(tmp_path), env, until="--print-env")
    block = start_up_block(output)
    assert "config: none (~/.config/rotator/config.yaml does not exist" in block, block
    assert "the embedded defaults" in block and "rotator.example.yaml" in block, block


def test_a_listen_port_taken_before_the_bind_is_drawn_again(tmp_path):
    """The tests' own start-up: a port free_port() drew may be taken by another test's connection before mitmdump
    binds it; mitmdump then exits ("address already in use") and run_briefly starts it on another."""
    env = clean_environ({"HOME": str(tmp_path)})
    command = mitmdump(tmp_path)
    port = int(command[command.index("--listen-port") + 1])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        _, output = run_briefly(command, env, until="--print-env")
    assert "--proxy http://127.0.0.1:" in start_up_block(output), output
    assert f"127.0.0.1:{port}" not in start_up_block(output), output


def test_a_proxy_asked_for_port_0_names_the_port_it_listens_on(tmp_path):
    command = mitmdump(tmp_path)
    command[command.index("--listen-port") + 1] = "0"  # (the system chooses: no port to be taken meanwhile)
    _, output = run_briefly(command, clean_environ({"HOME": str(tmp_path)}), until="--print-env")
    [port] = re.findall(r"proxy listening at 127\.0\.0\.1:(\d+)", output)
    block = start_up_block(output)
    assert port != "0" and f" --proxy http://127.0.0.1:{port} " in block, output
    assert f"curl -x http://127.0.0.1:{port} http://rotator.status/" in block, block


def readme_yaml() -> str:
    """The README's configuration example, exactly as a newcomer would copy it."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## A pool"):]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_copied_literally_is_refused_with_one_line(tmp_path):
    path = tmp_path / "rotator.yaml"
    path.write_text(readme_yaml())
    env = clean_environ({"HOME": str(tmp_path), "OPENAI_KEY_2": "sk-real-looking-key-2"})

    returncode, output = run_briefly(mitmdump(tmp_path, "--set", f"rotator_config={path}"), env, until=None)

    assert returncode != 0, output
    assert "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "rotator_config: " in line]
    assert line.endswith("rotator_config: providers.openai.keys.0.key: Value error, is a placeholder (it contains "
                         "'...'): put the real key here, or ${ENV_VAR}"), line
    assert LISTENING not in output, output  # nothing says it is serving
    assert "sk-real-looking-key-2" not in output


@pytest.mark.parametrize("text, field", [
    ("streaming: {idle_timeout: -1}\n", "streaming.idle_timeout"),
    ("providers: {anthropic: {keys: [...]}}\n", "providers.anthropic.keys.0.key"),
    ("clients: [{name: a, key: 'sk-...'}]\n", "clients.0.key"),
])
def test_a_config_error_exits_before_the_proxy_listens(tmp_path, text, field):
    path = tmp_path / "rotator.yaml"
    path.write_text(text)
    returncode, output = run_briefly(mitmdump(tmp_path, "--set", f"rotator_config={path}"),
                                     clean_environ({"HOME": str(tmp_path)}), until=None)
    assert returncode != 0, output
    assert f"rotator_config: {field}: " in output, output
    assert LISTENING not in output and "rotator: ready." not in output, output


def test_a_short_client_key_stops_start_up_with_one_line_naming_the_entry_not_the_key(tmp_path):
    path = tmp_path / "rotator.yaml"
    path.write_text("clients:\n  - {name: team-a, key: rk-team-a-Secret-0001}\n  - {name: ci, key: ci-Short-Key1}\n")
    returncode, output = run_briefly(mitmdump(tmp_path, "--set", f"rotator_config={path}"),
                                     clean_environ({"HOME": str(tmp_path)}), until=None)
    assert returncode != 0, output
    assert "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "rotator_config: " in line]
    assert "rotator_config: clients.1.key: " in line and "at least 16 characters" in line, line
    assert "ci-Short-Key1" not in output and "rk-team-a-Secret-0001" not in output
    assert LISTENING not in output, output


def test_run_help_starts_with_rotators_own_usage():
    done = subprocess.run([str(REPO / "scripts" / "run"), "--help"], cwd=REPO, env=clean_environ(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: scripts/run [mitmdump options]\n\nRotator: "), done.stdout[:500]
    ours, _, theirs = done.stdout.partition("usage: mitmdump")
    assert "--set rotator_config=PATH" in ours and "rotator.example.yaml" in ours and "--listen-host" in ours
    assert "--set option=value" in theirs or "--set" in theirs  # mitmdump's own help follows


@pytest.mark.parametrize("text, problem", [
    ("streaming: {idle_timeout: -1}\n", "streaming.idle_timeout: "),
    ("providers: {mine: {kind: openai, hosts: [api.openai.com], base_url: 'http://x/v1'}}\n",
     "providers.mine.hosts: api.openai.com is already intercepted"),
])
def test_an_error_in_the_default_config_file_names_that_file(tmp_path, text, problem):
    path = tmp_path / ".config" / "rotator" / "config.yaml"  # read when no rotator_config is given
    path.parent.mkdir(parents=True)
    path.write_text(text)
    returncode, output = run_briefly(mitmdump(tmp_path), clean_environ({"HOME": str(tmp_path)}), until=None)
    assert returncode != 0 and "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "rotator_config: " in line]
    assert f"rotator_config: {path}: {problem}" in line, line
    assert LISTENING not in output, output


def test_every_missing_environment_variable_is_named_at_the_first_start(tmp_path):
    path = tmp_path / "rotator.yaml"
    path.write_text('providers:\n  openai: {keys: ["${ROTATOR_KEY_A}", "${ROTATOR_KEY_SET}"]}\n'
                    '  anthropic: {keys: ["${ROTATOR_KEY_B}"]}\n')
    env = clean_environ({"HOME": str(tmp_path), "ROTATOR_KEY_SET": "sk-a-value-never-shown"})
    returncode, output = run_briefly(mitmdump(tmp_path, "--set", f"rotator_config={path}"), env, until=None)
    assert returncode != 0 and "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "rotator_config: " in line]
    assert line.endswith("rotator_config: 2 environment variables are not set: ROTATOR_KEY_A "
                         "(providers.openai.keys.0), ROTATOR_KEY_B (providers.anthropic.keys.0)"), line
    assert "sk-a-value-never-shown" not in output


def setup_checkout(tmp_path: Path, python: str) -> Path:
    """scripts/setup beside this checkout's pyproject.toml and pins, over a .venv whose python is `python` (a shell
    script's body): it returns where that python writes the arguments it is called with."""
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/setup", "scripts/constraints-py312.txt", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    calls = tmp_path / "python-calls"
    for name, body in (("mitmdump", "exit 1"), ("python", python)):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return calls


def run_setup(checkout: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(checkout / "scripts" / "setup"), *args], capture_output=True, text=True, timeout=30,
                          env=clean_environ({"HOME": str(checkout)}))


def test_run_after_test_installs_nothing(tmp_path):
    """README: after `scripts/test`, `scripts/run` starts at once (a test install holds all a plain one does)."""
    setup_checkout(tmp_path, "exit 1")  # (a python that fails: any install attempt would fail loudly)
    installed = b"".join((REPO / name).read_bytes() for name in ("pyproject.toml", "scripts/constraints-py312.txt"))
    (tmp_path / ".venv" / ".rotator-installed[test]").write_text(hashlib.sha256(installed).hexdigest() + "\n")
    done = run_setup(tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_moved_pin_is_installed_by_the_next_run(tmp_path):
    """A .venv set up before scripts/constraints-py312.txt moved a pin gets the new version on the next scripts/run
    or scripts/test (a user's, CI's), not only on a fresh clone."""
    calls = setup_checkout(tmp_path, f'echo "$*" >> {tmp_path / "python-calls"}')
    assert run_setup(tmp_path).returncode == 0 and calls.exists()
    calls.unlink()
    assert run_setup(tmp_path).returncode == 0 and not calls.exists()  # (nothing changed: nothing installed)
    pins = tmp_path / "scripts" / "constraints-py312.txt"
    pins.write_text(re.sub(r"(?m)^openai==.*$", "openai==9.9.9", pins.read_text()))
    done = run_setup(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "-m pip install --quiet --disable-pip-version-check --no-deps -r scripts/constraints-py312.txt" in \
        calls.read_text().splitlines()


def test_run_reads_a_relative_config_where_it_is_run(tmp_path):
    """`scripts/run --set rotator_config=rotator.yaml` (README, Security) names the file in the user's directory."""
    (tmp_path / "rotator.yaml").write_text("streaming: {idle_timeout: 60}\n")
    command = [str(REPO / "scripts" / "run"), "--listen-port", str(free_port()),
               "--set", f"confdir={tmp_path / 'confdir'}", "--set", "rotator_config=rotator.yaml"]
    _, output = run_briefly(command, clean_environ({"HOME": str(tmp_path)}), until="--print-env", cwd=tmp_path)
    assert "config: rotator.yaml\n" in start_up_block(output), output
