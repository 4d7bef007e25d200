"""scripts/with-rotator as the tests run it: a command through the wrapper, for a harness-started proxy (its port
and confdir named), in an environment that holds nothing of the proxy (the wrapper must be what adds it)."""

from __future__ import annotations

from collections.abc import Mapping

from tests.support.harness import REPO, Rotator

WRAPPER = REPO / "scripts" / "with-rotator"
# What the wrapper sets: a test's environment holds none of them before it runs.
ADDED = ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
         "AWS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CODEX_CA_CERTIFICATE", "NODE_USE_ENV_PROXY")


def wrapper_args(proxy: Rotator) -> list[str]:
    return [str(WRAPPER), "--proxy", proxy.url, "--confdir", str(proxy.proc.confdir)]


def wrapped(command: list[str], env: Mapping[str, str], proxy: Rotator) -> tuple[list[str], dict[str, str]]:
    """`command` run through the wrapper for `proxy`, and `env` without what the wrapper adds."""
    return [*wrapper_args(proxy), *command], {k: v for k, v in env.items() if k not in ADDED}
