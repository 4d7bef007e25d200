"""scripts/with-rotator's environment for the tool it runs (scripts/with_rotator_lib/): the proxy, loopback kept
direct, and mitmproxy's CA added to the roots the tool trusts. tests/e2e/test_with_rotator.py runs it for real."""

from __future__ import annotations

import ast
import ssl
import subprocess
from pathlib import Path

import pytest
from mitmproxy.certs import CertStore
from with_rotator_lib.environment import changes, exports, no_proxy
from with_rotator_lib.main import UsageError, parse, script
from with_rotator_lib.trust import REPLACING, system_roots

from tests.support.harness import free_port
from tests.support.with_rotator import WRAPPER

PROXY = "http://127.0.0.1:8080"


def make_ca(confdir: Path, name: str = "mitmproxy") -> Path:
    CertStore.from_store(confdir, name, 2048)
    return confdir / f"{name}-ca-cert.pem"


def subjects(bundle: str | Path) -> set:
    """The subjects of the CA certificates a TLS client trusts with this file."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(bundle))
    return {cert["subject"] for cert in context.get_ca_certs()}


@pytest.fixture
def ca(tmp_path) -> Path:
    return make_ca(tmp_path / "confdir")


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_the_bundle_holds_the_systems_roots_and_the_ca(env, ca):
    changed = changes(env, PROXY, ca)
    bundle = changed["SSL_CERT_FILE"]
    assert {changed[name] for name in REPLACING} == {bundle}
    roots = subjects(system_roots())
    assert roots and subjects(bundle) == roots | subjects(ca)
    assert Path(bundle).parent == Path(env["XDG_CACHE_HOME"]) / "rotator"
    assert changed["NODE_EXTRA_CA_CERTS"] == str(ca)  # Node adds it to its own roots
    assert changed["HTTPS_PROXY"] == changed["https_proxy"] == PROXY
    assert "HTTP_PROXY" not in changed and "http_proxy" not in changed


def test_a_file_the_user_named_is_kept_beside_the_ca(env, ca, tmp_path):
    theirs = make_ca(tmp_path / "corp", "corp")
    env |= {"NODE_EXTRA_CA_CERTS": str(theirs), "SSL_CERT_FILE": str(theirs), "CODEX_CA_CERTIFICATE": str(theirs)}
    changed = changes(env, PROXY, ca)
    assert subjects(changed["NODE_EXTRA_CA_CERTS"]) == subjects(theirs) | subjects(ca)
    assert subjects(changed["CODEX_CA_CERTIFICATE"]) == subjects(theirs) | subjects(ca)  # (Codex reads it first)
    assert subjects(changed["SSL_CERT_FILE"]) == subjects(system_roots()) | subjects(theirs) | subjects(ca)
    assert theirs.read_bytes().count(b"BEGIN CERTIFICATE") == 1  # the user's file is not touched


def test_no_proxy_keeps_the_users_entries_and_adds_loopback():
    env = {"NO_PROXY": "corp.example, .internal", "no_proxy": "corp.example 10.0.0.0/8"}
    assert no_proxy(env) == "corp.example,.internal,10.0.0.0/8,localhost,127.0.0.1,::1"
    assert no_proxy({}) == "localhost,127.0.0.1,::1"
    assert no_proxy({"NO_PROXY": "127.0.0.1,localhost"}) == "127.0.0.1,localhost,::1"


def test_the_bundle_is_rebuilt_when_the_ca_changes(env, ca, tmp_path):
    first = changes(env, PROXY, ca)["SSL_CERT_FILE"]
    assert subjects(ca) <= subjects(first)
    other = make_ca(tmp_path / "other", "other")
    ca.write_bytes(other.read_bytes())  # a confdir whose CA was made again
    again = changes(env, PROXY, ca)["SSL_CERT_FILE"]
    assert again == first and subjects(again) == subjects(system_roots()) | subjects(other)


def test_a_shell_set_up_with_print_env_gets_the_same_variables(env, ca):
    """The wrapper run from a shell that already evaluated its --print-env lines: nothing is joined twice."""
    changed = changes(env, PROXY, ca)
    again = changes(env | changed, PROXY, ca)
    assert again == changed
    assert Path(again["SSL_CERT_FILE"]).read_bytes() == Path(changed["SSL_CERT_FILE"]).read_bytes()


def test_export_lines_are_quoted_for_the_shell():
    out = exports({"SSL_CERT_FILE": "/home/a b/x.pem", "NO_PROXY": "localhost,::1"})
    assert out == "export SSL_CERT_FILE='/home/a b/x.pem'\nexport NO_PROXY=localhost,::1\n"


@pytest.mark.parametrize("argv, env, expected", [
    (["claude", "-p", "hi"], {}, ("http://127.0.0.1:8080", "~/.mitmproxy", False, ["claude", "-p", "hi"])),
    (["--proxy", "http://127.0.0.1:9000", "--confdir=/c", "codex", "--proxy"], {},
     ("http://127.0.0.1:9000", "/c", False, ["codex", "--proxy"])),
    (["--print-env"], {"ROTATOR_PROXY": "http://h:1", "ROTATOR_CONFDIR": "/d"}, ("http://h:1", "/d", True, [])),
    (["--", "-weird"], {}, ("http://127.0.0.1:8080", "~/.mitmproxy", False, ["-weird"])),
])
def test_the_options_come_before_the_command(argv, env, expected):
    proxy, confdir, print_env, command = expected
    assert parse(argv, env) == (proxy, Path(confdir).expanduser(), print_env, command)


@pytest.mark.parametrize("argv", [[], ["--print-env", "ls"], ["--proxy"], ["--nope", "ls"],
                                  ["--proxy", "127.0.0.1:8080", "ls"], ["--proxy", "http://h:port", "ls"]])
def test_a_wrong_command_line_is_refused(argv):
    with pytest.raises(UsageError):
        parse(argv, {})


def test_the_wrapper_parses_on_python_3_9():
    """It runs with the system's python3 before anything is installed (README): no newer syntax."""
    for path in sorted((WRAPPER.parent / "with_rotator_lib").glob("*.py")):
        ast.parse(path.read_text(), str(path), feature_version=(3, 9))


@pytest.mark.parametrize("argv", [["--help"], ["--proxy", "http://h:1", "-h"]])
def test_help_is_asked_among_the_options_and_a_commands_own_is_its(argv):
    assert script(argv, {}).startswith("printf '%s' 'usage: scripts/with-rotator ")
    assert script(["--proxy", "http://127.0.0.1:1", "claude", "--help"], {}) == "exec claude --help\n"


def test_a_wrong_command_line_exits_2_with_one_line_and_the_usage():
    done = subprocess.run([str(WRAPPER), "--proxy", "nonsense", "true"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("rotator: the proxy must be a URL like http://127.0.0.1:8080, not 'nonsense'\n")


def test_print_env_with_nothing_answering_still_prints_the_lines_and_says_so(env, ca, capsys):
    """(A shell set up before Rotator starts.) A tool run with nothing answering gets no line at all instead."""
    proxy = f"http://127.0.0.1:{free_port()}"
    todo = script(["--proxy", proxy, "--confdir", str(ca.parent), "--print-env"], env)
    printed = subprocess.run(["sh", "-c", todo], capture_output=True, text=True, timeout=30)
    assert printed.stdout == exports(changes(env, proxy, ca)) and printed.returncode == 0
    assert f"nothing answers at {proxy.removeprefix('http://')}" in capsys.readouterr().err
    assert script(["--proxy", proxy, "--confdir", str(ca.parent), "ls"], env) == "exec ls\n"
