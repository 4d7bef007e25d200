"""The CA files a tool run through Rotator trusts: the roots it trusted already, with mitmproxy's CA added, never in
their place. Each file is written once per set of sources under the user's cache directory, and written again
(atomically) when a source's content changes."""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

CA_FILE = "mitmproxy-ca-cert.pem"
# Where systems keep their bundle of trusted roots, after the one this Python's OpenSSL was built to read.
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Arch, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, the BSDs
)
# Variables whose file is the whole set of roots a client trusts (OpenSSL and so Python's ssl, httpx and the SDKs,
# Go and rustls-native-certs tools: SSL_CERT_FILE; requests and pip: REQUESTS_CA_BUNDLE; curl; boto3 and the AWS
# CLI). Each names the combined bundle, which holds the system's roots, so hosts Rotator tunnels stay trusted.
REPLACING = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE")
# Variables whose file is added to a client's own roots: Node and Bun (Claude Code, Gemini CLI, Copilot CLI,
# opencode) always get mitmproxy's CA there; Codex reads CODEX_CA_CERTIFICATE before SSL_CERT_FILE, so a file the
# user named there must hold the CA too.
ADDING_ALWAYS = "NODE_EXTRA_CA_CERTS"
ADDING_IF_SET = ("CODEX_CA_CERTIFICATE",)


class TrustError(Exception):
    """No trust store to add mitmproxy's CA to, or no CA: the tool runs without Rotator."""


def cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "rotator"


def system_roots() -> Path | None:
    """The system's bundle of trusted roots; certifi's (where it is installed) on a system without one."""
    for name in (ssl.get_default_verify_paths().openssl_cafile, *SYSTEM_BUNDLES):
        if name and os.path.isfile(name):
            return Path(name)
    try:
        import certifi
    except ImportError:
        return None
    return Path(certifi.where())


def ours(path: Path, cache: Path) -> bool:
    """A file this wrapper wrote (a shell set up with --print-env names them): never a source of itself."""
    return path.resolve().parent == cache.resolve()


def user_files(env: Mapping[str, str], names: Iterable[str], cache: Path) -> list[Path]:
    """The existing files the user's own variables name, once each, leaving out the wrapper's own."""
    out: list[Path] = []
    for name in names:
        value = env.get(name, "")
        path = Path(value).expanduser() if value else None
        if path is not None and path.is_file() and not ours(path, cache) and path.resolve() not in out:
            out.append(path.resolve())
    return out


def joined(sources: list[Path], cache: Path, stem: str) -> Path:
    """One file holding each source's certificates in turn, named by the sources; rewritten only when it would
    change, atomically, so a tool reading it meanwhile reads either version whole."""
    digest = hashlib.sha256("\n".join(map(str, sources)).encode()).hexdigest()[:16]
    target = cache / f"{stem}-{digest}.pem"
    content = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in sources)
    try:
        if target.read_bytes() == content:
            return target
    except FileNotFoundError:
        pass
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=cache, prefix=f".{stem}-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


def trust_env(env: Mapping[str, str], ca: Path) -> dict[str, str]:
    """The CA variables a tool gets: the combined bundle in each REPLACING one, mitmproxy's CA added in the
    ADDING ones. Raises TrustError when there is no CA, or no roots to add it to."""
    if not ca.is_file():
        raise TrustError(f"no mitmproxy CA at {ca} (Rotator makes it on its first start; another confdir: "
                         "--confdir or ROTATOR_CONFDIR)")
    cache = cache_dir(env)
    roots = system_roots()
    base = list(dict.fromkeys(([roots.resolve()] if roots else []) + user_files(env, REPLACING, cache)))
    if not base:
        raise TrustError("found no trust store to add mitmproxy's CA to (looked at " + ", ".join(SYSTEM_BUNDLES)
                         + " and certifi)")
    try:
        bundle = str(joined([*base, ca.resolve()], cache, "ca-bundle"))
        out = dict.fromkeys(REPLACING, bundle)
        for name in (ADDING_ALWAYS, *(n for n in ADDING_IF_SET if env.get(n))):
            out[name] = added(env, name, ca, cache)
    except OSError as e:
        raise TrustError(f"could not make the CA bundle in {cache}: {e.strerror or e}") from None
    return out


def added(env: Mapping[str, str], name: str, ca: Path, cache: Path) -> str:
    """An ADDING variable's file: mitmproxy's CA, or the user's file there joined with it."""
    value = Path(env.get(name, "") or ca).expanduser()
    if value.is_file() and ours(value, cache):
        return str(value)  # (a shell set up with --print-env: it holds the CA already)
    mine = user_files(env, [name], cache)
    if not mine or mine[0] == ca.resolve():
        return str(ca)
    return str(joined([mine[0], ca.resolve()], cache, name.lower().replace("_", "-")))
