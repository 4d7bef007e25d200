"""scripts/with-rotator's command line, read for the shell that runs it: what this answers is a short POSIX shell
script that scripts/with-rotator evaluates, setting CMD's variables and then becoming CMD (`exec`). So CMD keeps the
terminal, gets every signal sent to the wrapper's pid or typed at the terminal, its exit status is the wrapper's,
and its environment is the one the user's shell gave, plus what is set here: nothing of how Python was started (a
version manager's shim puts its own PATH in Python's environment) reaches it."""

from __future__ import annotations

import os
import shlex
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from with_rotator_lib.environment import DEFAULT_PROXY, changes, exports
from with_rotator_lib.trust import CA_FILE, TrustError

USAGE = """usage: scripts/with-rotator [--proxy URL] [--confdir DIR] CMD [ARGS...]
       scripts/with-rotator [--proxy URL] [--confdir DIR] --print-env

Runs CMD through Rotator, leaving your shell as it is: CMD gets HTTPS_PROXY for the running Rotator, NO_PROXY
keeping loopback direct, and mitmproxy's CA added to the roots it trusts (never in their place):
SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and AWS_CA_BUNDLE name a bundle of the system's roots (and any
file you named there) plus the CA, written under $XDG_CACHE_HOME/rotator/ (~/.cache/rotator/);
NODE_EXTRA_CA_CERTS names the CA (joined with a file you named there, as is a CODEX_CA_CERTIFICATE of yours);
NODE_USE_ENV_PROXY=1 sends Node 24's own fetch through the proxy. CMD then runs in the wrapper's place: it keeps
the terminal and the signals, and its exit status is the wrapper's.

When nothing answers at the proxy's address (or there is no CA yet), CMD runs exactly as it would without
Rotator, and one line on stderr says the repairs are off and why.

  --proxy URL      Rotator's address (default: $ROTATOR_PROXY, else http://127.0.0.1:8080)
  --confdir DIR    mitmproxy's confdir, where its CA is (default: $ROTATOR_CONFDIR, else ~/.mitmproxy)
  --print-env      print the `export` lines instead, for a shell of tools all run through Rotator:
                   eval "$(scripts/with-rotator --print-env)"
  -h, --help       this text
"""
CONNECT_TIMEOUT = 2.0  # seconds for the proxy to accept a connection


class UsageError(Exception):
    pass


class HelpAsked(Exception):
    pass


def parse(argv: list[str], env: Mapping[str, str]) -> tuple[str, Path, bool, list[str]]:
    """(proxy URL, confdir, --print-env, CMD): the options come before CMD; `--` ends them."""
    values = {"--proxy": env.get("ROTATOR_PROXY") or DEFAULT_PROXY, "--confdir": env.get("ROTATOR_CONFDIR") or ""}
    print_env, i = False, 0
    while i < len(argv) and argv[i].startswith("-"):
        name, equals, value = argv[i].partition("=")
        if name == "--":
            i += 1
            break
        if name in ("-h", "--help"):
            raise HelpAsked
        if name == "--print-env" and not equals:
            print_env = True
        elif name in values:
            if not equals:
                i += 1
                if i == len(argv):
                    raise UsageError(f"{name} needs a value")
                value = argv[i]
            values[name] = value
        else:
            raise UsageError(f"unknown option {argv[i]}")
        i += 1
    command = argv[i:]
    if print_env == bool(command):
        raise UsageError("--print-env takes no command" if print_env else "no command to run")
    proxy = values["--proxy"]
    address(proxy)
    return proxy, Path(values["--confdir"] or "~/.mitmproxy").expanduser(), print_env, command


def address(proxy: str) -> tuple[str, int]:
    """The proxy URL's host and port (raises UsageError for what is no proxy URL)."""
    parts = urlsplit(proxy)
    try:
        port = parts.port or {"http": 80, "https": 443}[parts.scheme]
    except (KeyError, ValueError):
        port = 0
    if not parts.hostname or not port:
        raise UsageError(f"the proxy must be a URL like {DEFAULT_PROXY}, not {proxy!r}")
    return parts.hostname, port


def invocation(wrapper: Path, proxy: str, confdir: Path) -> str:
    """The wrapper's command line for a Rotator at `proxy` whose CA is in `confdir` (as a start-up block prints it):
    each option named only where it is not the default."""
    words = [str(wrapper)]
    if proxy != DEFAULT_PROXY:
        words += ["--proxy", proxy]
    if confdir.expanduser() != Path("~/.mitmproxy").expanduser():
        words += ["--confdir", str(confdir.expanduser())]
    return " ".join(map(shlex.quote, words))


def silent(proxy: str) -> str | None:
    """Why nothing answers at the proxy's address; None when it accepts a connection."""
    host, port = address(proxy)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        return f"nothing answers at {host}:{port} ({e.strerror or e})"
    return None


def say(line: str) -> None:
    print(f"rotator: {line}", file=sys.stderr, flush=True)


def shown(text: str, status: int = 0) -> str:
    """The script that prints `text` and ends with `status`."""
    return f"printf '%s' {shlex.quote(text)}\nexit {status}\n" if text else f"exit {status}\n"


def script(argv: list[str], env: Mapping[str, str] = os.environ) -> str:
    """What the shell that runs scripts/with-rotator is to do: `export` lines and `exec CMD`, or a text to print and
    an exit status. The reasons it runs CMD without Rotator are said on stderr here."""
    try:
        proxy, confdir, print_env, command = parse(argv, env)
    except HelpAsked:
        return shown(USAGE)
    except UsageError as e:
        say(f"{e}\n{USAGE.splitlines()[0]}  (--help says more)")
        return shown("", 2)
    why = silent(proxy)
    changed: dict[str, str] = {}
    if print_env or not why:
        try:
            changed = changes(env, proxy, confdir / CA_FILE)
        except TrustError as e:
            why = why or str(e)
    if print_env:
        if not changed:
            say(f"no export lines: {why}")
            return shown("", 1)
        if why:
            say(f"{why}: the lines are printed, but tools will fail to connect until Rotator runs there")
        return shown(exports(changed))
    if why:
        say(f"repairs off for this run of {command[0]}: {why}; running it without Rotator")
        changed = {}
    return exports(changed) + f"exec {shlex.join(command)}\n"


def main(argv: list[str]) -> int:
    print(script(argv), end="")
    return 0
