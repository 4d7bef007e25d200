"""Who may use the pool and what leaves the proxy, end to end through a real `mitmdump -s addons/rotator.py`:
the address it binds, proxy authentication, client keys per protocol, client credentials kept out of saved flows,
and the client's own account headers kept away from pooled keys."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import ipaddress
import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.clients import PROTOCOLS, call, make_client
from tests.support.fake_vendor import Fault
from tests.support.fake_vendor_ws import FakeWebSocketVendor
from tests.support.gate import (
    CLIENTS,
    FALLBACK_MODEL,
    ROUTED_MODEL,
    STRANGER,
    TARGET_KEYS,
    TEAM_A,
    TEAM_B,
    routed_config,
)
from tests.support.harness import (
    ADDON,
    MITMDUMP,
    POOL_KEYS,
    REPO,
    Rotator,
    RotatorProcess,
    clean_environ,
    default_config,
    dies_with_test_run,
    free_port,
    port_taken,
)
from tests.support.masks import masked
from tests.support.timing import QUIET, wait_until

pytestmark = pytest.mark.e2e

FAMILY = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
KEY_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
VENDOR_HOST = {"openai": "api.openai.com", "anthropic": "api.anthropic.com", "gemini": "generativelanguage.googleapis.com"}
POOLED = [key for keys in POOL_KEYS.values() for key in keys]
GEMINI_GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
HI = {"contents": [{"parts": [{"text": "hi"}]}]}


def with_key(protocol: str, key: str, monkeypatch: pytest.MonkeyPatch):
    """The protocol's SDK, built with no arguments, sending `key` as its API key."""
    monkeypatch.setenv(KEY_VARS[FAMILY[protocol]], key)
    client = make_client(protocol)
    return client.with_options(max_retries=0) if FAMILY[protocol] != "gemini" else client


def through(proxy: Rotator) -> httpx.Client:
    tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
    return httpx.Client(proxy=proxy.url, verify=tls, timeout=30, trust_env=False)


def read_flows(path: Path) -> list:
    from mitmproxy import io as mitm_io

    with path.open("rb") as f:
        return list(mitm_io.FlowReader(f).stream())



# ------------------------------------------------------------------------------------------------------------------
# 1. The listening address: loopback unless asked; beyond it with a pool only if clients must authenticate


def listening(pid: int, port: int) -> set[str]:
    """The addresses process `pid` has a listening TCP socket on, at `port` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            address, _, hex_port = local.partition(":")
            if state != "0A" or inode not in inodes or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # each 32-bit word in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(str(ipaddress.ip_address(words)))
    return found


def settled_listening(proc: RotatorProcess, expected: set[str], timeout: float = 10.0) -> set[str]:
    """What the proxy listens on once start-up has settled (mitmdump binds before it loads the addon)."""
    with contextlib.suppress(AssertionError):  # (the caller asserts what it found)
        wait_until(lambda: listening(proc.process.pid, proc.port) == expected, timeout)
    return listening(proc.process.pid, proc.port)


class DefaultHostProcess(RotatorProcess):
    """mitmdump started the way a user starts it: without --listen-host."""

    def command(self) -> list[str]:
        command = super().command()
        i = command.index("--listen-host")
        return command[:i] + command[i + 2 :]


def test_scripts_run_is_never_bound_beyond_loopback_not_even_while_starting(fake_vendor, tmp_path):
    """mitmdump binds its servers before it loads the addon that moves them to loopback (its log then says
    "listening at *:PORT" for a moment); the README's command gives mitmdump the loopback address from the start."""
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(json.dumps(default_config(fake_vendor.url)))
    log = tmp_path / "run.log"
    for _ in range(2):  # (again on another port when the drawn one was taken before the bind)
        port = free_port()
        with log.open("w") as out:
            proc = subprocess.Popen(
                [str(REPO / "scripts/run"), "--listen-port", str(port), "--set", f"confdir={tmp_path / 'conf'}",
                 "--set", f"rotator_config={cfg}"],
                cwd=REPO, env=clean_environ(), stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=dies_with_test_run())
        try:
            wait_until(lambda p=proc: "rotator: ready" in log.read_text() or p.poll() is not None, 60)
            if proc.poll() is not None and port_taken(log.read_text()):
                continue
            assert listening(proc.pid, port) == {"127.0.0.1"}  # (scripts/run execs mitmdump: the same process)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        break
    text = log.read_text()
    assert "rotator: ready" in text and f"proxy listening at 127.0.0.1:{port}" in text, text[-2000:]
    assert "listening at *:" not in text and "listening at 0.0.0.0" not in text, text[-2000:]


def test_listens_on_loopback_unless_asked(fake_vendor, tmp_path, monkeypatch, request):
    proc = DefaultHostProcess(default_config(fake_vendor.url), tmp_path / "default-host")
    proc.start()
    try:
        proxy = Rotator(proc, monkeypatch).apply_env()
        request.node._rotators = [proxy]
        assert settled_listening(proc, {"127.0.0.1"}) == {"127.0.0.1"}
        call("chat", make_client("chat"), stream=False)  # it serves there
        assert listening(proc.process.pid, proc.port) == {"127.0.0.1"}
        assert f"listening at 127.0.0.1:{proc.port}" in proxy.full_log
    finally:
        proc.stop()


@pytest.mark.parametrize(
    "opened_with",
    [
        pytest.param({"args": ("--proxyauth", "rotator:e2e-proxy-pass")}, id="proxyauth"),
        pytest.param({"clients": CLIENTS}, id="clients"),
    ],
)
def test_an_explicit_address_is_kept_when_clients_must_authenticate(rotator, opened_with):
    args = ("--listen-host", "0.0.0.0", *opened_with.get("args", ()))
    overrides = {"clients": opened_with["clients"]} if "clients" in opened_with else None
    proxy = rotator(overrides, fresh=True, args=args)
    try:
        assert settled_listening(proxy.proc, {"0.0.0.0"}) == {"0.0.0.0"}
        wait_until(lambda: "key pools: anthropic (2 keys)" in proxy.full_log)  # it started with its config
        time.sleep(0.5)  # stays: that it stays up (does not exit) is only seen by letting time pass
        assert proxy.proc.alive(), proxy.full_log
        assert "refusing" not in proxy.full_log
    finally:
        proxy.proc.stop()  # (listening beyond loopback no longer than needed)


def run_to_exit(command: list[str], timeout: float = 30.0) -> tuple[int, str]:
    proc = subprocess.Popen(command, cwd=REPO, env=clean_environ(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=dies_with_test_run())
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"mitmdump still running {timeout:g}s after start:\n{out}")
    return proc.returncode, out


@pytest.mark.parametrize(
    "exposure",
    [
        pytest.param(["--listen-host", "0.0.0.0"], id="listen-host"),
        pytest.param(["--set", "listen_host=0.0.0.0", "--proxyauth", "any"], id="proxyauth-any"),
        pytest.param(["--mode", "regular@0.0.0.0:{port}"], id="mode-address"),
    ],
)
def test_a_pool_beyond_loopback_without_authentication_stops_startup_with_one_line(fake_vendor, tmp_path, exposure):
    config = tmp_path / "rotator.yaml"
    config.write_text(json.dumps(default_config(fake_vendor.url)))  # (JSON is YAML)
    port = free_port()
    command = [str(MITMDUMP), "-s", ADDON, "--listen-port", str(port), "--set", f"confdir={tmp_path / 'confdir'}",
               "--set", f"rotator_config={config}", *[a.format(port=port) for a in exposure]]  # fmt: skip

    returncode, output = run_to_exit(command)

    assert returncode != 0, output
    assert "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "refusing" in line]
    assert "0.0.0.0" in line and "--proxyauth" in line and "clients" in line and "127.0.0.1" in line, line
    assert not any(key in output for key in POOLED)


# ------------------------------------------------------------------------------------------------------------------
# 2. Proxy authentication (mitmproxy's proxyauth) with real SDKs


# google-genai 3.x speaks through httpx2, which has its own exception classes.
PROXY_ERRORS = (httpx.ProxyError, *(importlib.import_module(m).ProxyError for m in ("httpx2",)
                                   if importlib.util.find_spec(m)))


def test_proxy_authentication_lets_in_only_clients_with_the_password(fake_vendor, rotator, monkeypatch):
    proxy = rotator(args=("--proxyauth", "rotator:e2e-proxy-pass"))

    monkeypatch.setenv("HTTPS_PROXY", f"http://rotator:e2e-proxy-pass@127.0.0.1:{proxy.port}")
    for protocol in PROTOCOLS:
        assert call(protocol, make_client(protocol), stream=False).text
    fake_vendor.wait_for(len(PROTOCOLS))

    monkeypatch.setenv("HTTPS_PROXY", f"http://rotator:wrong-pass@127.0.0.1:{proxy.port}")
    with pytest.raises(openai.APIConnectionError):
        call("chat", make_client("chat", max_retries=0), stream=False)
    with pytest.raises(anthropic.APIConnectionError):
        call("anthropic", make_client("anthropic", max_retries=0), stream=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(PROXY_ERRORS, match="407"):
        call("gemini", make_client("gemini"), stream=False)

    time.sleep(QUIET)  # stays: absence. Anything that got through would have reached the vendor by now
    assert len(fake_vendor.requests) == len(PROTOCOLS)
    assert "e2e-proxy-pass" not in proxy.log  # (full_log starts with the command line that holds it)


# ------------------------------------------------------------------------------------------------------------------
# 3. Client keys: only a client's key is served from the pools; anything else gets 401 in the protocol's shape


def assert_refused(protocol: str, error: Exception) -> None:
    """The SDK's own 401 error, with the vendor's error shape."""
    if FAMILY[protocol] == "openai":
        assert isinstance(error, openai.AuthenticationError), error
        assert error.code == "invalid_api_key" and "client key" in error.message
    elif protocol == "anthropic":
        assert isinstance(error, anthropic.AuthenticationError), error
        assert error.body["error"]["type"] == "authentication_error" and "client key" in error.message
    else:
        assert isinstance(error, genai_errors.ClientError), error
        assert (error.code, error.status) == (401, "UNAUTHENTICATED") and "client key" in error.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_keys_are_served_from_the_pool_and_others_refused(fake_vendor, rotator, monkeypatch, protocol):
    proxy = rotator(clients=CLIENTS)
    family = FAMILY[protocol]

    whole = call(protocol, with_key(protocol, TEAM_A, monkeypatch), stream=False)
    streamed = call(protocol, with_key(protocol, TEAM_B, monkeypatch), stream=True)
    for key in (STRANGER, "x"):
        with pytest.raises(Exception) as refused:
            call(protocol, with_key(protocol, key, monkeypatch), stream=key == "x")
        assert_refused(protocol, refused.value)

    assert whole.text and streamed.text
    reqs = fake_vendor.wait_for(2)
    time.sleep(QUIET)  # stays: absence. A refused request that got through would have reached the vendor by now
    assert len(fake_vendor.requests) == 2, [r.summary() for r in fake_vendor.requests]
    assert all(r.credential in POOL_KEYS[family] for r in reqs)
    seen = json.dumps([[r.headers, r.query] for r in reqs])
    assert TEAM_A not in seen and TEAM_B not in seen
    log = proxy.wait_log("client: team-b")
    assert "client: team-a" in log and log.count("refused: no client key") == 2
    assert not any(secret in proxy.full_log for secret in (TEAM_A, TEAM_B, STRANGER))


def test_client_keys_cover_every_path_and_the_query_key(fake_vendor, rotator, monkeypatch):
    proxy = rotator(fresh=True, clients=CLIENTS)  # (its failed attempts are its own: see the rate limit below)

    # Other paths on a vendor host, through the SDKs.
    assert list(with_key("chat", TEAM_A, monkeypatch).models.list())
    with pytest.raises(openai.AuthenticationError):
        list(with_key("chat", STRANGER, monkeypatch).models.list())
    with pytest.raises(anthropic.AuthenticationError):
        list(with_key("anthropic", STRANGER, monkeypatch).models.list())
    gemini = with_key("gemini", STRANGER, monkeypatch)
    with pytest.raises(genai_errors.ClientError) as refused:
        list(gemini.models.list())
    assert refused.value.code == 401
    # Gemini's `?key=`, and no credential at all.
    url = f"https://{VENDOR_HOST['gemini']}{GEMINI_GENERATE}"
    with through(proxy) as http:
        accepted = http.post(f"{url}?key={TEAM_B}", json=HI)
        wrong = http.post(f"{url}?key={STRANGER}", json=HI)
        missing = http.post(url, json=HI)
        anthropic_missing = http.post(f"https://{VENDOR_HOST['anthropic']}/v1/messages", json={})

    assert accepted.status_code == 200
    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert anthropic_missing.status_code == 401
    assert anthropic_missing.json()["error"]["type"] == "authentication_error"
    reqs = fake_vendor.wait_for(2)
    time.sleep(QUIET)  # stays: absence. A request that got through would have reached the vendor by now
    assert [(r.protocol, r.credential in POOLED) for r in fake_vendor.requests] == [
        ("openai-models", True), ("gemini", True),
    ]  # fmt: skip
    assert "key" not in reqs[1].params


def test_saved_flows_name_the_client_and_hold_no_client_key(fake_vendor, rotator, monkeypatch, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("-w", str(flows_path)), clients=CLIENTS)

    call("chat", with_key("chat", TEAM_A, monkeypatch), stream=True)
    call("anthropic", with_key("anthropic", TEAM_B, monkeypatch), stream=False)
    with pytest.raises(genai_errors.ClientError):
        call("gemini", with_key("gemini", STRANGER, monkeypatch), stream=False)
    with through(proxy) as http:
        http.post(f"https://{VENDOR_HOST['gemini']}{GEMINI_GENERATE}?key={TEAM_A}", json=HI)
    fake_vendor.wait_for(3)
    proxy.proc.stop()

    raw = flows_path.read_bytes()
    for secret in (TEAM_A, TEAM_B, STRANGER, *POOLED):
        assert secret.encode() not in raw, secret
    flows = read_flows(flows_path)
    assert [(f.request.pretty_host, f.response.status_code, f.metadata["rotator"].get("client")) for f in flows] == [
        (VENDOR_HOST["openai"], 200, "team-a"),
        (VENDOR_HOST["anthropic"], 200, "team-b"),
        (VENDOR_HOST["gemini"], 401, None),
        (VENDOR_HOST["gemini"], 200, "team-a"),
    ]
    refused = flows[2]
    assert refused.request.headers["x-goog-api-key"] == masked(STRANGER)
    assert "refused" in refused.comment and refused.metadata["rotator"]["refused"]


@pytest.fixture(scope="module")
def ws_vendor() -> Iterator[FakeWebSocketVendor]:
    vendor = FakeWebSocketVendor().start()
    yield vendor
    vendor.stop()


def test_websocket_upgrades_need_a_client_key(rotator, ws_vendor, fake_vendor):
    ws_vendor.reset()
    proxy = rotator({"providers": {"openai": {"base_url": f"{ws_vendor.url}/v1"}}}, clients=CLIENTS)
    tls = ssl.create_default_context(cafile=str(proxy.ca_cert))

    async def echo(key: str) -> dict:
        async with connect(f"wss://{VENDOR_HOST['openai']}/v1/realtime?model=gpt-realtime", proxy=proxy.url,
                           ssl=tls, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=15) as ws:
            await ws.send(json.dumps({"hello": "world"}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(echo(STRANGER))
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_api_key"
    assert asyncio.run(echo(TEAM_A)) == {"echo": {"hello": "world"}}

    [hs] = ws_vendor.wait_for(1)
    assert hs.credential in POOL_KEYS["openai"]
    proxy.wait_log("client: team-a")
    assert "refused: no client key" in proxy.log


# ------------------------------------------------------------------------------------------------------------------
# 4. Without a pool, the client's own credential goes upstream but is never stored in a flow


def test_without_a_pool_the_clients_own_key_is_masked_in_saved_flows(fake_vendor, rotator, monkeypatch, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    own = {
        "chat": "sk-proj-OwnOpenAIKey-0000-1111",
        "anthropic": "sk-ant-api03-OwnAnthropicKey-2222",
        "gemini": "AIzaSyOwnGeminiKey-0000-3333",
    }
    query_key = "AIzaSyOwnQueryKey-0000-4444"
    proxy = rotator(fresh=True, args=("-w", str(flows_path)), providers={n: {"keys": None} for n in KEY_VARS})

    call("chat", with_key("chat", own["chat"], monkeypatch), stream=True)
    call("anthropic", with_key("anthropic", own["anthropic"], monkeypatch), stream=False)
    call("gemini", with_key("gemini", own["gemini"], monkeypatch), stream=True)
    assert list(with_key("chat", own["chat"], monkeypatch).models.list())
    with through(proxy) as http:
        url = f"https://{VENDOR_HOST['gemini']}{GEMINI_GENERATE}?key={query_key}&alt=json"
        assert http.post(url, json=HI).status_code == 200
    reqs = fake_vendor.wait_for(5)
    proxy.proc.stop()

    # Upstream: each client's own key, as it sent it.
    assert [r.credential for r in reqs] == [own["chat"], own["anthropic"], own["gemini"], own["chat"], query_key]
    assert reqs[-1].query.startswith(f"key={query_key}&alt=")  # in its place in the query
    # Stored: only masked forms.
    raw = flows_path.read_bytes()
    for secret in [*own.values(), query_key]:
        assert secret.encode() not in raw, secret
    flows = read_flows(flows_path)
    assert flows[0].request.headers["authorization"] == f"Bearer {masked(own['chat'])}"
    shown_anthropic = flows[1].request.headers.get("x-api-key") or flows[1].request.headers["authorization"]
    assert shown_anthropic.endswith(masked(own["anthropic"]))
    assert flows[2].request.headers["x-goog-api-key"] == masked(own["gemini"])
    assert flows[4].request.query["key"] == masked(query_key)
    assert flows[4].request.query["alt"] == "json"
    assert own["chat"] not in proxy.full_log


# ------------------------------------------------------------------------------------------------------------------
# 5. With a pool, headers of the client's own account stay behind, or the key's own account is sent


def test_pooled_keys_never_carry_the_clients_account_headers(fake_vendor, rotator, monkeypatch):
    providers = {"openai": {"keys": ["sk-pool-plain", {"key": "sk-pool-org", "organization": "org-pool",
                                                       "project": "proj_pool"}]}}
    rotator(providers=providers)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-client")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_client")
    cookie = {"Cookie": "session=client-session"}
    oa = make_client("chat", default_headers=cookie)
    an = make_client("anthropic", default_headers=cookie)

    call("chat", oa, stream=False)
    call("chat", oa, stream=True)
    call("anthropic", an, stream=False)
    tls = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    with httpx.Client(proxy=os.environ["HTTPS_PROXY"], verify=tls, trust_env=False) as http:
        headers = {"x-goog-api-key": "client-placeholder", "x-goog-user-project": "client-gcp-project", **cookie}
        assert http.post(f"https://{VENDOR_HOST['gemini']}{GEMINI_GENERATE}", json=HI, headers=headers).is_success
    reqs = fake_vendor.wait_for(4)

    account = [{h: r.headers.get(h) for h in ("openai-organization", "openai-project")} for r in reqs[:2]]
    assert [r.credential for r in reqs[:2]] == ["sk-pool-plain", "sk-pool-org"]
    assert account == [
        {"openai-organization": None, "openai-project": None},
        {"openai-organization": "org-pool", "openai-project": "proj_pool"},
    ]
    assert not any("cookie" in r.headers for r in reqs)
    assert "x-goog-user-project" not in reqs[3].headers
    assert reqs[2].headers["anthropic-version"]  # the rest of the request is the client's


def test_without_a_pool_the_clients_account_headers_go_upstream(fake_vendor, rotator, monkeypatch):
    rotator(providers={"openai": {"keys": None}})
    monkeypatch.setenv("OPENAI_ORG_ID", "org-client")
    call("chat", make_client("chat", default_headers={"Cookie": "session=client-session"}), stream=False)
    [req] = fake_vendor.wait_for(1)
    assert req.headers["openai-organization"] == "org-client"
    assert req.headers["cookie"] == "session=client-session"


# ------------------------------------------------------------------------------------------------------------------
# 6. The gate decides on every pool a request could draw from; one credential per request; guesses are limited;
#    browsers do not spend the pools

CHAT_PATH = "/v1/chat/completions"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_keyless_provider_routed_to_a_pool_needs_a_client_key(fake_vendor, rotator, monkeypatch):
    proxy = rotator(routed_config(fake_vendor.url), clients=CLIENTS)
    own = "sk-ant-api03-OwnAnthropicKey-5555"

    with pytest.raises(anthropic.AuthenticationError) as refused:
        call("anthropic", with_key("anthropic", STRANGER, monkeypatch), stream=True, model=ROUTED_MODEL)
    assert_refused("anthropic", refused.value)
    time.sleep(QUIET)  # stays: absence. A refused request that got through would have reached the vendor by now
    assert fake_vendor.requests == []

    served = call("anthropic", with_key("anthropic", TEAM_A, monkeypatch), stream=True, model=ROUTED_MODEL)
    unrouted = call("anthropic", with_key("anthropic", own, monkeypatch), stream=False)  # no pool: own key, unchecked

    assert served.text and unrouted.text
    routed, direct = fake_vendor.wait_for(2)
    assert (routed.protocol, routed.model, routed.credential in TARGET_KEYS) == ("chat", "deepseek-chat", True)
    assert direct.credential == own
    assert TEAM_A not in json.dumps([[r.headers, r.query] for r in fake_vendor.requests])
    log = proxy.wait_log("client: team-a")
    assert log.count("refused: no client key matched (401)") == 1


def test_a_client_key_never_goes_upstream_not_even_to_a_keyless_fallback(fake_vendor, rotator, monkeypatch):
    rotator(routed_config(fake_vendor.url), clients=CLIENTS)
    fake_vendor.script(Fault.status(404))  # the pooled target lacks the model: the keyless anthropic is next

    call("anthropic", with_key("anthropic", TEAM_A, monkeypatch), stream=False, model=FALLBACK_MODEL)

    lacking, fallback = fake_vendor.wait_for(2)
    assert (lacking.protocol, lacking.credential in TARGET_KEYS) == ("chat", True)
    assert (fallback.protocol, fallback.credential) == ("anthropic", None)
    assert TEAM_A not in json.dumps([[r.headers, r.query] for r in fake_vendor.requests])


SEVERAL = [  # (family, path and query, headers): each request carries the right key beside another
    ("openai", CHAT_PATH, [("authorization", f"Bearer {STRANGER}"), ("authorization", f"Bearer {TEAM_A}")]),
    ("openai", CHAT_PATH, [("authorization", f"Bearer {TEAM_A}"), ("api-key", STRANGER)]),
    ("anthropic", "/v1/messages", [("x-api-key", TEAM_A), ("x-api-key", STRANGER)]),
    ("gemini", f"{GEMINI_GENERATE}?key={STRANGER}&key={TEAM_A}", []),
    ("gemini", f"{GEMINI_GENERATE}?key={TEAM_A}", [("x-goog-api-key", STRANGER)]),
]
ONE_KEY = {"openai": ("authorization", f"Bearer {TEAM_A}"), "anthropic": ("x-api-key", TEAM_A),
           "gemini": ("x-goog-api-key", TEAM_A)}
BODY = {"openai": CHAT, "anthropic": {**CHAT, "max_tokens": 16}, "gemini": HI}
REFUSED_SHAPE = {"openai": ("code", "invalid_api_key"), "anthropic": ("type", "authentication_error"),
                 "gemini": ("status", "UNAUTHENTICATED")}


def test_a_request_with_several_credentials_is_refused(fake_vendor, rotator):
    proxy = rotator(fresh=True, clients=CLIENTS)  # (its failed attempts are its own)

    with through(proxy) as http:
        for family, path, headers in SEVERAL:
            url = f"https://{VENDOR_HOST[family]}{path}"
            refused = http.post(url, json=BODY[family], headers=headers)
            one_key = http.post(url.partition("?")[0], json=BODY[family], headers=[ONE_KEY[family]])

            assert refused.status_code == 401, (path, headers, refused.text)
            error = refused.json()["error"]
            field, value = REFUSED_SHAPE[family]
            assert error[field] == value and "several credentials" in error["message"], error
            assert one_key.status_code == 200, one_key.text

    fake_vendor.wait_for(len(SEVERAL))
    time.sleep(QUIET)  # stays: absence. A refused request that got through would have reached the vendor by now
    assert len(fake_vendor.requests) == len(SEVERAL)
    assert proxy.log.count("refused: several credentials in one request (401)") == len(SEVERAL)


def test_failed_client_keys_are_rate_limited_per_address_with_one_log_line(fake_vendor, rotator, monkeypatch):
    proxy = rotator(fresh=True, clients=CLIENTS)
    url = f"https://{VENDOR_HOST['openai']}{CHAT_PATH}"

    with through(proxy) as http:
        guesses = [http.post(url, json=CHAT, headers={"authorization": f"Bearer rk-guess-{i:04d}-0123456789"})
                   for i in range(12)]
        right_key_too = http.post(url, json=CHAT, headers={"authorization": f"Bearer {TEAM_A}"})
        status_page = http.get("http://rotator.status/", headers={"authorization": f"Bearer {TEAM_A}"})
    with pytest.raises(openai.RateLimitError) as limited:
        call("chat", with_key("chat", TEAM_B, monkeypatch), stream=True)

    burst = 10
    assert [r.status_code for r in guesses] == [401] * burst + [429] * 2
    for response in (*guesses[burst:], right_key_too, status_page):
        assert response.status_code == 429
        assert 0 < int(response.headers["retry-after"]) <= 60
    assert guesses[-1].json()["error"]["type"] == "rate_limit_error"
    assert "failed client-key attempts" in guesses[-1].json()["error"]["message"]
    assert "failed client-key attempts" in limited.value.message
    time.sleep(QUIET)  # stays: absence. A request that got through would have reached the vendor by now
    assert fake_vendor.requests == []
    log = proxy.log
    assert log.count("refused: no client key matched (401)") == burst
    [line] = [line for line in log.splitlines() if "failed client-key attempts from 127.0.0.1" in line]
    assert "(429)" in line
    assert not any(secret in proxy.full_log for secret in (TEAM_A, TEAM_B, "rk-guess-"))


BROWSER_HEADERS = [  # a page's POST, a `fetch(..., {mode: "no-cors"})`, and the address typed into the browser
    {"Origin": "https://some-page.example", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "empty"},
    {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"},
]
NODE_FETCH = {"Sec-Fetch-Mode": "cors"}  # what Node's fetch (Claude Code, the Node SDKs) sends on every request


def test_a_browser_cannot_spend_the_pool_without_a_client_key_or_the_option(fake_vendor, rotator):
    url = f"https://{VENDOR_HOST['openai']}{CHAT_PATH}"
    plain = rotator()
    with through(plain) as http:
        refused = [http.post(url, json=CHAT, headers=h) for h in BROWSER_HEADERS]
        not_a_browser = [http.post(url, json=CHAT), http.post(url, json=CHAT, headers=NODE_FETCH)]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "web browser" in response.json()["error"]["message"]
    assert [r.status_code for r in not_a_browser] == [200, 200]
    fake_vendor.wait_for(2)
    time.sleep(QUIET)  # stays: absence. A request that got through would have reached the vendor by now
    assert len(fake_vendor.requests) == 2

    with through(rotator(allow_browsers=True)) as http:  # opened deliberately
        assert [http.post(url, json=CHAT, headers=h).status_code for h in BROWSER_HEADERS] == [200] * 3
    with through(rotator(clients=CLIENTS)) as http:  # a page that sends a client key is a client
        matched = http.post(url, json=CHAT, headers={**BROWSER_HEADERS[0], "authorization": f"Bearer {TEAM_A}"})
    assert matched.status_code == 200
    assert len(fake_vendor.wait_for(6)) == 6
