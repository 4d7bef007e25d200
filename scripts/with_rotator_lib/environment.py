"""What a tool run through Rotator finds in its environment, on top of the user's: the proxy for HTTPS, loopback
kept direct, and trust added (trust.py). Nothing is removed."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from with_rotator_lib.trust import trust_env

DEFAULT_PROXY = "http://127.0.0.1:8080"
LOOPBACK = ("localhost", "127.0.0.1", "::1")
# Only HTTPS goes to Rotator: every LLM call is HTTPS, and a plain-http proxy variable would send a tool's other
# plain-http traffic (a local dev server by name, an apt mirror) through the proxy for nothing. The status page is
# reached with `curl -x`, as the start-up block says.
PROXY_VARS = ("HTTPS_PROXY", "https_proxy")
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
# Node 24+'s own fetch and http go through HTTPS_PROXY only with this set (the Vercel AI SDK, docs/clients.md);
# older Nodes ignore it, and the agent CLIs read the proxy variables themselves either way.
NODE_PROXY = "NODE_USE_ENV_PROXY"


def no_proxy(env: Mapping[str, str]) -> str:
    """The user's NO_PROXY and no_proxy entries, then loopback's, once each."""
    entries = [e for name in NO_PROXY_VARS for e in re.split(r"[,\s]+", env.get(name, "")) if e]
    return ",".join(dict.fromkeys([*entries, *LOOPBACK]))


def changes(env: Mapping[str, str], proxy: str, ca: Path) -> dict[str, str]:
    """The variables set for the tool (raises trust.TrustError when its trust cannot be made)."""
    out = dict.fromkeys(PROXY_VARS, proxy)
    out |= dict.fromkeys(NO_PROXY_VARS, no_proxy(env))
    out |= trust_env(env, ca)
    out[NODE_PROXY] = env.get(NODE_PROXY) or "1"
    return out


def exports(changed: Mapping[str, str]) -> str:
    """The lines a POSIX shell evaluates to hold the same variables."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in changed.items())
