"""The core promise, end to end: an unmodified tool pointed at `mitmdump -s addons/rotator.py` with HTTPS_PROXY and
SSL_CERT_FILE gets exactly what the vendor answered, served with pooled keys, streamed as it comes, and every flow
stays honest (vendor URL, real status and body, masked keys) for mitmweb and saved flows.

Each test asserts what a user sees: what the SDK returned, what the vendor (tests/support/fake_vendor.py) received, what
the proxy wrote to its log, its saved flows and its web API.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anthropic
import httpx
import pytest
from google.genai import types as gtypes

from tests.support.clients import FINISH, MODELS, PROTOCOLS, WEATHER_SCHEMA, call, make_client
from tests.support.fake_vendor import (
    ANTHROPIC_MODELS,
    GEMINI_MODELS,
    OPENAI_MODELS,
    TEXT,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    Fault,
)
from tests.support.flows import read_flows
from tests.support.harness import (
    ADDON,
    CLIENT_KEYS,
    MITMDUMP,
    POOL_KEYS,
    REPO,
    Rotator,
    clean_environ,
    default_config,
    dies_with_test_run,
    free_port,
    merge,
)
from tests.support.masks import masked
from tests.support.mitmweb import MitmwebProcess
from tests.support.raw_http import client_headers, through
from tests.support.timing import QUIET

pytestmark = pytest.mark.e2e

BOTH = [pytest.param(False, id="whole"), pytest.param(True, id="stream")]
ANSWERS = [pytest.param(False, id="text"), pytest.param(True, id="tool")]
FAMILY = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
VENDOR_URL = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}
CREDENTIAL_HEADER = {"openai": "authorization", "anthropic": "x-api-key", "gemini": "x-goog-api-key"}
# Raw requests (httpx, no SDK) per protocol: path on the vendor host, JSON body, and what makes it a stream.
HI = [{"role": "user", "content": "hi"}]
WIRE = {
    "chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": HI}),
    "responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}),
    "anthropic": ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": HI}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [{"text": "hi"}]}]}),
}
# Headers that belong to one hop (the connection, the body's framing and encoding): not the client's request.
HOP_HEADERS = {"host", "connection", "content-length", "accept-encoding", "transfer-encoding"}


def wire_url(protocol: str, base: str, stream: bool = False) -> tuple[str, dict]:
    path, body = WIRE[protocol]
    if stream:
        if protocol == "gemini":
            path = path.replace(":generateContent", ":streamGenerateContent?alt=sse")
        else:
            body = {**body, "stream": True}
        if protocol == "chat":  # (without it Rotator asks for the usage chunk and hides it: tests/e2e/test_usage.py)
            body["stream_options"] = {"include_usage": True}
    return base + path, body


def direct_client(protocol: str, vendor) -> Any:
    """The SDK pointed straight at the fake vendor, no proxy (built before the proxy's env is applied), with the
    same settings as the one built with no arguments, so it sends the same headers."""
    return make_client(protocol, base_url=vendor.url)


# --- what an SDK call returned, in full: every chunk / event, as the SDK's own models dump it


def capture(protocol: str, client: Any, stream: bool, tools: bool) -> list[dict]:
    if protocol == "chat":
        kwargs: dict = {}
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {"name": TOOL_NAME, "parameters": WEATHER_SCHEMA}}]
        args = dict(model=MODELS["chat"], messages=[{"role": "user", "content": "Say hello."}], **kwargs)
        if not stream:
            return [client.chat.completions.create(**args).model_dump()]
        chunks = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **args)
        return [chunk.model_dump() for chunk in chunks]
    if protocol == "responses":
        kwargs = {}
        if tools:
            kwargs["tools"] = [{"type": "function", "name": TOOL_NAME, "parameters": WEATHER_SCHEMA}]
        args = dict(model=MODELS["responses"], input="Say hello.", **kwargs)
        if not stream:
            return [client.responses.create(**args).model_dump()]
        return [event.model_dump() for event in client.responses.create(stream=True, **args)]
    if protocol == "anthropic":
        kwargs = {}
        if tools:
            kwargs["tools"] = [{"name": TOOL_NAME, "input_schema": WEATHER_SCHEMA}]
        args = dict(model=MODELS["anthropic"], max_tokens=256, messages=[{"role": "user", "content": "Hi."}], **kwargs)
        if not stream:
            return [client.messages.create(**args).model_dump()]
        with client.messages.stream(**args) as s:
            events = [event.model_dump() for event in s]
            return events + [s.get_final_message().model_dump()]
    config = None
    if tools:
        declaration = gtypes.FunctionDeclaration(name=TOOL_NAME, parameters_json_schema=WEATHER_SCHEMA)
        config = gtypes.GenerateContentConfig(tools=[gtypes.Tool(function_declarations=[declaration])])
    args = dict(model=MODELS["gemini"], contents="Say hello.", config=config)
    # sdk_http_response holds the transport's headers (date, ...): not part of the answer.
    if not stream:
        return [client.models.generate_content(**args).model_dump(exclude={"sdk_http_response"})]
    return [c.model_dump(exclude={"sdk_http_response"}) for c in client.models.generate_content_stream(**args)]


TIMESTAMP_FIELDS = {"created", "created_at", "completed_at"}


def normalized(obj: Any, received: int) -> Any:
    """The vendor stamps answers with the second it received the request: show that as a placeholder, so two
    calls a second apart compare equal (a timestamp that is not the vendor's stays as it is, and differs)."""
    if isinstance(obj, dict):
        return {
            k: "<received>" if k in TIMESTAMP_FIELDS and v in (received, received + 0.0) else normalized(v, received)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [normalized(v, received) for v in obj]
    return obj


def forwarded_headers(headers: dict[str, str], family: str) -> dict[str, str]:
    drop = HOP_HEADERS | {CREDENTIAL_HEADER[family], "authorization", "x-api-key", "x-goog-api-key"}
    return {k: v for k, v in headers.items() if k not in drop}


def run_once(vendor, protocol: str, client: Any, stream: bool, tools: bool) -> tuple[list[dict], Any, Any]:
    """One call on a freshly reset vendor (so ids, which count requests, match): (dumps, summary, request)."""
    vendor.reset()
    if tools:
        vendor.always(Fault.tool_call())
    dumps = capture(protocol, client, stream, tools)
    [req] = vendor.wait_for(1)
    vendor.reset()
    if tools:
        vendor.always(Fault.tool_call())
    result = call(protocol, client, stream, tools=tools)
    result.raw = None
    received = int(req.received_at)
    summary = {k: v for k, v in vars(result).items() if k not in ("arrivals", "raw")}
    return normalized(dumps, received), summary, req


# ------------------------------------------------------------------------------------------------------------------
# 1. Through the proxy, every SDK gets exactly what a direct call gets


@pytest.mark.parametrize("tools", ANSWERS)
@pytest.mark.parametrize("stream", BOTH)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sdk_gets_exactly_what_a_direct_call_gets(fake_vendor, rotator, protocol, stream, tools):
    direct = run_once(fake_vendor, protocol, direct_client(protocol, fake_vendor), stream, tools)
    rotator()  # from here on, HTTPS_PROXY / SSL_CERT_FILE / the client's placeholder key are in the environment
    proxied = run_once(fake_vendor, protocol, make_client(protocol), stream, tools)

    (direct_dumps, direct_summary, direct_req), (dumps, summary, req) = direct, proxied
    # The answer, piece by piece as the SDK yields it: text, finish reason, usage, ids, model.
    assert dumps == direct_dumps
    assert summary == direct_summary
    # ... and it is the vendor's answer, not two equally broken ones.
    if tools:
        assert summary["tool_calls"] == [(TOOL_NAME, TOOL_ARGUMENTS)]
        assert summary["finish"] == FINISH[protocol]["tool"]
    else:
        assert summary["text"] == TEXT
        assert summary["finish"] == FINISH[protocol]["text"]
    assert summary["input_tokens"] == 12
    if stream and not (protocol == "gemini" and tools):  # (Gemini sends a lone call in one chunk)
        assert len(dumps) > 3
    # The vendor got the same request: path, query, body byte for byte, headers; only the credential differs.
    if stream:
        assert (req.method, req.path, req.query) == (direct_req.method, direct_req.path, direct_req.query)
        assert req.raw_body == direct_req.raw_body
    else:  # ... asking for a stream, by default (forced upstream streaming)
        assert (req.method, req.path, req.query, req.body) == (direct_req.method, *asked_as_stream(protocol, direct_req))
    family = FAMILY[protocol]
    assert forwarded_headers(req.headers, family) == forwarded_headers(direct_req.headers, family)
    assert req.credential in POOL_KEYS[family]
    assert req.credential_source == CREDENTIAL_HEADER[family]


def asked_as_stream(protocol: str, req: Any) -> tuple[str, str, dict]:
    """(path, query, body) of the non-stream request `req` asking for a stream, as Rotator sends it by default."""
    if protocol == "gemini":
        return req.path.replace(":generateContent", ":streamGenerateContent"), "alt=sse", req.body
    body = {**req.body, "stream": True}
    if protocol == "chat":
        body["stream_options"] = {"include_usage": True}
    return req.path, req.query, body


@pytest.mark.parametrize("stream", BOTH)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_gets_the_vendors_bytes(fake_vendor, rotator, protocol, stream):
    """On the wire: the status, the content type and every body byte the vendor sent reach the client. (A
    non-stream request is sent as it is only by a provider that opts out of forced upstream streaming; what the
    others answer is in tests/e2e/test_nonstream.py.)"""
    proxy = rotator() if stream else rotator(providers={FAMILY[protocol]: {"force_upstream_stream": False}})
    url, body = wire_url(protocol, VENDOR_URL[FAMILY[protocol]], stream)
    with through(proxy) as http:
        response = http.post(url, json=body, headers=client_headers(protocol, "client-key"))

    [req] = fake_vendor.wait_for(1)
    assert response.status_code == req.status == 200
    assert response.content == req.sent
    assert response.headers["content-type"].startswith("text/event-stream" if stream else "application/json")
    request_id = "request-id" if protocol == "anthropic" else "x-request-id"
    assert response.headers[request_id] == f"req_fake{req.index}"  # the vendor's own headers reach the client
    assert req.stream == stream


# ------------------------------------------------------------------------------------------------------------------
# 2. A slow upstream streams through: the first piece arrives long before the last is sent


# Words per answer: about ten events per stream (2.5 s at one event every 0.25 s), whatever the protocol's preamble.
SLOW_WORDS = {"chat": 6, "responses": 3, "anthropic": 5, "gemini": 10}


@pytest.mark.alone  # a latency bound: the wall clock is the thing under test
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_stream_arrives_as_it_is_sent(fake_vendor, rotator, protocol):
    rotator()
    words = " ".join(f"word{i}" for i in range(SLOW_WORDS[protocol]))
    fake_vendor.script(Fault.slow(0.4).ok(text=words))

    result = call(protocol, make_client(protocol), stream=True)

    # (its own request: CI once saw another one, a client-gone stream of one event, recorded first on this vendor
    # after the test before it; which test and which process sent it is not known)
    [req] = [r for r in fake_vendor.wait_for(1) if any(b"word0" in data for _, data in r.events)]
    assert result.text == words
    first_arrival = result.arrivals[0][0]
    last_sent = req.events[-1][0]
    assert last_sent - req.events[0][0] > 3.0  # the vendor really was slow (8 gaps of 0.4 s or more)
    # The client had its first words well before the vendor sent its last event ...
    assert first_arrival < last_sent - 1.5, (first_arrival - req.received_at, last_sent - req.received_at)
    # ... and had them soon after the vendor sent them.
    first_sent = next(t for t, data in req.events if b"word0" in data)
    assert first_arrival - first_sent < 1.5, first_arrival - first_sent  # (loose: 2 cores, 4 test workers)


# ------------------------------------------------------------------------------------------------------------------
# 3. Pooled keys: round robin, in order, per provider; never the client's placeholder


def test_pooled_keys_rotate_in_order(fake_vendor, rotator):
    proxy = rotator(fresh=True)

    for i in range(4):
        call("chat" if i % 2 == 0 else "responses", make_client("chat"), stream=i >= 2)
    for i in range(3):
        call("anthropic", make_client("anthropic"), stream=i == 1)
    call("gemini", make_client("gemini"), stream=False)
    call("gemini", make_client("gemini"), stream=True)
    with through(proxy) as http:  # a client that puts its key in the query, as curl examples do
        url, body = wire_url("gemini", VENDOR_URL["gemini"])
        assert http.post(url + "?key=client-query-key", json=body).status_code == 200
        url, body = wire_url("gemini", VENDOR_URL["gemini"], stream=True)  # (...?alt=sse)
        assert http.post(url + "&key=client-query-key", json=body).status_code == 200

    reqs = fake_vendor.requests
    assert [r.credential for r in reqs] == [
        "sk-pool-1", "sk-pool-2", "sk-pool-3", "sk-pool-1",
        "sk-ant-pool-1", "sk-ant-pool-2", "sk-ant-pool-1",
        "g-pool-1", "g-pool-2", "g-pool-1", "g-pool-2",
    ]  # fmt: skip
    assert reqs[-1].query == "alt=sse"  # the client's key removed, the rest of the query kept
    for r in reqs:
        family = FAMILY[r.protocol]
        assert r.credential_source == CREDENTIAL_HEADER[family], r.summary()
        assert r.headers[CREDENTIAL_HEADER[family]] == ("Bearer " if family == "openai" else "") + r.credential
        others = {"authorization", "x-api-key", "x-goog-api-key", "api-key"} - {CREDENTIAL_HEADER[family]}
        assert not others & set(r.headers), r.headers
        assert "key" not in r.params, r.query
        seen = json.dumps([r.headers, r.query])
        for placeholder in [*CLIENT_KEYS.values(), "client-query-key"]:
            assert placeholder not in seen
    for keys in POOL_KEYS.values():
        for key in keys:
            assert key not in proxy.full_log


def test_without_keys_the_clients_credential_goes_upstream(fake_vendor, rotator):
    proxy = rotator(providers={name: {"keys": None} for name in ("openai", "anthropic", "gemini")})

    for protocol in PROTOCOLS:
        call(protocol, make_client(protocol), stream=True)
    url, body = wire_url("gemini", VENDOR_URL["gemini"])
    with through(proxy) as http:
        assert http.post(url + "?key=client-query-key", json=body).status_code == 200

    # (in whichever header the SDK put it: this anthropic SDK sends `Authorization: Bearer`, not x-api-key)
    assert [r.credential for r in fake_vendor.requests] == [
        CLIENT_KEYS["OPENAI_API_KEY"],
        CLIENT_KEYS["OPENAI_API_KEY"],
        CLIENT_KEYS["ANTHROPIC_API_KEY"],
        CLIENT_KEYS["GEMINI_API_KEY"],
        "client-query-key",
    ]
    assert fake_vendor.requests[-1].params["key"] == "client-query-key"
    pooled = {key for keys in POOL_KEYS.values() for key in keys}
    assert not any(key in json.dumps([r.headers, r.query]) for r in fake_vendor.requests for key in pooled)


# ------------------------------------------------------------------------------------------------------------------
# 4. A broken config stops start-up with one line naming the field; ${ENV_VAR} keys work


# name: (the config file's text, or None for no file; what the one error line must name)
BAD_CONFIGS = {
    "bad-url": ("providers:\n  openai: {base_url: 'api.openai.com/v1'}\n", ["providers.openai.base_url"]),
    "negative-timeout": ("streaming:\n  idle_timeout: -5\n", ["streaming.idle_timeout"]),
    "infinite-timeout": ("streaming:\n  first_token_timeout: .inf\n", ["streaming.first_token_timeout", "finite"]),
    "unknown-key": ("streaming:\n  first_token_timeout: 3\n  idle_timout: 10\n", ["streaming.idle_timout"]),
    "undefined-env-var": (
        "providers:\n  openai: {keys: ['${ROTATOR_E2E_UNSET_VARIABLE}']}\n",
        ["providers.openai.keys", "ROTATOR_E2E_UNSET_VARIABLE"],
    ),
    "invalid-yaml": ("providers:\n  openai: {keys: [sk-x\nstreaming: 1\n", ["rotator.yaml", "YAML"]),
    "missing-file": (None, ["no-such-rotator.yaml"]),
    "custom-provider-without-kind": (
        "providers:\n  openrouter: {hosts: [openrouter.ai], base_url: 'https://openrouter.ai/api/v1'}\n",
        ["providers.openrouter.kind"],
    ),
    "bad-adapter-option": (
        "providers:\n  anthropic: {models: {glm-4.6: {adapters: [{cap: {max_tokens: lots}}]}}}\n",
        ["providers.anthropic.models.glm-4.6.adapters.0.cap.max_tokens", "valid number"],
    ),
    "unknown-adapter": ("providers:\n  openai: {adapters: [{uppercase: true}]}\n", ["providers.openai.adapters.0"]),
    "route-to-unknown-provider": (
        "routes:\n  - {models: ['claude-*'], targets: [anthropic, deepseek/deepseek-chat]}\n",
        ["routes.0.targets.1", "deepseek"],
    ),
    "keys-on-a-login": (
        "providers:\n  claude_login: {keys: [sk-ant-oat01-someone-elses]}\n",
        ["providers.claude_login.keys", "never pooled", "terms"],
    ),
    "keys-on-chatgpt": (
        "providers:\n  chatgpt: {keys: [sk-not-a-chatgpt-login]}\n",
        ["providers.chatgpt.keys", "never pooled", "terms"],
    ),
    "a-login-as-a-target-of-other-requests": (
        "routes:\n  - {models: ['gpt-*'], targets: [openai, copilot]}\n",
        ["routes.0.targets.1", "from: copilot"],
    ),
    # A key pasted from a file in another encoding: not UTF-8, the file cannot be read as text.
    "not-utf-8": (b"providers:\n  openai: {keys: [sk-\xe9t\xe9]}\n", ["rotator.yaml", "UTF-8"]),
    # A YAML alias inside the node it names: a tree without an end.
    "self-referencing-alias": ("routes: &r\n  - *r\n", ["rotator.yaml", "nested too deeply"]),
    # A port no connection can be made to: every request would fail.
    "base-url-port-out-of-range": ("providers:\n  openai: {base_url: 'http://127.0.0.1:99999/v1'}\n",
                                   ["providers.openai.base_url", "port"]),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_broken_config_stops_startup_with_one_line(tmp_path, name):
    text, needles = BAD_CONFIGS[name]
    path = tmp_path / ("no-such-rotator.yaml" if text is None else "rotator.yaml")
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    command = [
        str(MITMDUMP), "-s", ADDON, "--listen-host", "127.0.0.1", "--listen-port", str(free_port()),
        "--set", f"confdir={tmp_path / 'confdir'}", "--set", f"rotator_config={path}",
    ]  # fmt: skip
    env = clean_environ()
    env.pop("ROTATOR_E2E_UNSET_VARIABLE", None)

    lines: list[tuple[float, str]] = []  # (when it was printed, line)
    start = time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=dies_with_test_run())

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        returncode = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("mitmdump still running 30 s after starting with a bad config:\n" + "\n".join(line for _, line in lines))
    exited = time.monotonic()
    reader.join(5)
    output = "\n".join(line for _, line in lines)

    assert returncode != 0, output
    assert "Traceback" not in output, output
    naming = [(when, line) for when, line in lines if needles[0] in line]
    assert len(naming) == 1, output
    when, line = naming[0]
    assert line.split("] ", 1)[-1].startswith("rotator_config: "), output
    assert all(needle in line for needle in needles), line
    # It stops as soon as the error is known. Bounded loosely, and by the process's own pace: what follows the error
    # line is Python's exit (~0.45 s on a quiet 2-core VM, its garbage collections over every module loaded), which
    # a machine loaded with other tests' processes slows as much as the start-up before it (measured: loading the
    # addon 6.2 s against 1.0 s quiet, then 5.5 s to exit).
    bound = max(5.0, 2 * (when - start))
    assert exited - when < bound, f"exited {exited - when:.1f}s after the error line (bound {bound:.1f}s)\n{output}"
    assert exited - start < 20, f"exited {exited - start:.1f}s after starting\n{output}"


def test_env_var_keys_are_resolved(fake_vendor, rotator):
    proxy = rotator(
        providers={"openai": {"keys": ["${ROTATOR_E2E_KEY}"]}, "anthropic": {"keys": ["sk-ant-${ROTATOR_E2E_PART}-x"]}},
        env={"ROTATOR_E2E_KEY": "sk-from-the-environment", "ROTATOR_E2E_PART": "middle"},
    )

    call("chat", make_client("chat"), stream=False)
    call("anthropic", make_client("anthropic"), stream=True)

    assert fake_vendor.keys() == ["sk-from-the-environment", "sk-ant-middle-x"]
    assert "sk-from-the-environment" not in proxy.full_log
    assert "sk-ant-middle-x" not in proxy.full_log


# ------------------------------------------------------------------------------------------------------------------
# 5. Other paths on a vendor host are forwarded with only the credential changed


def _side_calls(clients: dict[str, Any]) -> list[Any]:
    oa, an, ge = clients["chat"], clients["anthropic"], clients["gemini"]
    return [
        [m.model_dump() for m in oa.models.list()],
        oa.models.retrieve("gpt-4.1").model_dump(),
        an.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}]).model_dump(),
        [m.model_dump() for m in an.models.list()],
        [m.model_dump() for m in ge.models.list()],
        ge.models.count_tokens(model="gemini-2.5-flash", contents="x").model_dump(exclude={"sdk_http_response"}),
    ]


def test_other_paths_on_a_vendor_host_are_forwarded(fake_vendor, rotator):
    direct = _side_calls({p: direct_client(p, fake_vendor) for p in ("chat", "anthropic", "gemini")})
    direct_reqs = fake_vendor.requests
    fake_vendor.reset()
    rotator()
    proxied = _side_calls({p: make_client(p) for p in ("chat", "anthropic", "gemini")})
    reqs = fake_vendor.requests

    assert proxied == direct
    assert [m["id"] for m in proxied[0]] == OPENAI_MODELS
    assert [m["id"] for m in proxied[3]] == ANTHROPIC_MODELS
    assert [m["name"] for m in proxied[4]] == [f"models/{m}" for m in GEMINI_MODELS]
    assert proxied[2]["input_tokens"] == 12
    expected = [
        ("GET", "/v1/models", "openai-models"),
        ("GET", "/v1/models/gpt-4.1", "openai-model"),
        ("POST", "/v1/messages/count_tokens", "anthropic-count_tokens"),
        ("GET", "/v1/models", "anthropic-models"),
        ("GET", "/v1/models", "gemini-models"),  # (google-genai 3.x calls v1; 2.x called v1beta)
        ("POST", "/v1/models/gemini-2.5-flash:countTokens", "gemini-count_tokens"),
    ]
    assert [(r.method, r.path, r.protocol) for r in reqs] == expected
    for r, d in zip(reqs, direct_reqs):
        family = r.protocol.split("-")[0]
        assert r.credential in POOL_KEYS[family], r.summary()
        assert r.credential_source == CREDENTIAL_HEADER[family]
        assert (r.query, r.raw_body) == (d.query, d.raw_body)
        assert forwarded_headers(r.headers, family) == forwarded_headers(d.headers, family)


# ------------------------------------------------------------------------------------------------------------------
# 6. Traffic to other hosts is not touched


class RecordingServer:
    """An HTTP/1.1 server on 127.0.0.1 (plain, or TLS with a self-signed certificate for localhost) that records each
    request and answers with fixed headers and body."""

    ANSWER = b'{"other": "service", "authorization": "Bearer sk-in-the-answer"}'

    def __init__(self, cert_dir: Path | None = None) -> None:
        self.requests: list[dict] = []
        self.cert: Path | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": [(k.lower(), v) for k, v in self.headers.items()],
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(201, "Created")
                self.send_header("content-type", "application/json")
                self.send_header("x-other-service", "kept")
                self.send_header("authorization", "Bearer sk-answer-header")
                self.send_header("content-length", str(len(server.ANSWER)))
                self.end_headers()
                self.wfile.write(server.ANSWER)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads, self.httpd.block_on_close = True, False  # (a kept-alive connection: no waiting)
        self.port = self.httpd.server_address[1]
        if cert_dir is not None:
            self.cert, key = self_signed_cert(cert_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https://localhost' if self.cert else 'http://127.0.0.1'}:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 (its own CA), and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "other-cert.pem", directory / "other-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def other_server():
    server = RecordingServer()
    yield server
    server.stop()


@pytest.fixture
def other_tls_server(tmp_path):
    server = RecordingServer(tmp_path / "tls")
    yield server
    server.stop()


# Even an LLM-looking request to another host is not Rotator's: it goes where it was sent, as it was sent.
OTHER_BODY = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": false}'
OTHER_HEADERS = {
    "authorization": "Bearer sk-other-service-secret",
    "x-api-key": "other-api-key",
    "content-type": "application/json",
    "x-custom": "value",
}


def assert_untouched(server: RecordingServer, response: httpx.Response, fake_vendor) -> None:
    [got] = server.requests
    assert (got["method"], got["path"], got["body"]) == ("POST", "/v1/chat/completions?key=q", OTHER_BODY)
    sent = dict(got["headers"])
    for name, value in OTHER_HEADERS.items():
        assert sent[name] == value
    assert (response.status_code, response.content) == (201, RecordingServer.ANSWER)
    assert response.headers["x-other-service"] == "kept"
    assert response.headers["authorization"] == "Bearer sk-answer-header"
    assert fake_vendor.requests == []


def test_other_hosts_pass_untouched(fake_vendor, rotator, other_server):
    proxy = rotator()
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=30) as http:  # plain HTTP: HTTP_PROXY
        response = http.post(f"{other_server.url}/v1/chat/completions?key=q", content=OTHER_BODY, headers=OTHER_HEADERS)
    assert_untouched(other_server, response, fake_vendor)


def test_other_https_hosts_pass_untouched(fake_vendor, rotator, other_tls_server):
    # Tunnelled (addons/scope.py): the client meets the host's own certificate, and trusts only its own CA.
    proxy = rotator()
    with httpx.Client(proxy=proxy.url, verify=ssl.create_default_context(cafile=str(other_tls_server.cert)),
                      timeout=30, trust_env=False) as http:
        url = f"{other_tls_server.url}/v1/chat/completions?key=q"
        response = http.post(url, content=OTHER_BODY, headers=OTHER_HEADERS)
    assert_untouched(other_tls_server, response, fake_vendor)


# ------------------------------------------------------------------------------------------------------------------
# 7. Saved flows show the vendor URL, the real status, the body the client received, and masked keys only

SECRET_KEYS = {
    "openai": ["sk-proj-SecretOpenAIKey-0000-aaaa1111", "sk-proj-SecretOpenAIKey-0000-bbbb2222"],
    "anthropic": ["sk-ant-api03-SecretAnthropicKey-cccc3333", "sk-ant-api03-SecretAnthropicKey-ffff6666"],
    "gemini": ["AIzaSySecretGeminiKey-0000-dddd4444", "AIzaSySecretGeminiKey-0000-eeee5555"],
}
SECRETS = [key for keys in SECRET_KEYS.values() for key in keys]



def shown_credential(family: str, key: str) -> str:
    return f"Bearer {masked(key)}" if family == "openai" else masked(key)


def sse_data(body: bytes) -> list[dict]:
    """The JSON payloads of an SSE body (any line ending), without [DONE]."""
    out = []
    for line in body.replace(b"\r\n", b"\n").split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            out.append(json.loads(line[5:]))
    return out


def as_sent(model: Any) -> Any:
    """An openai / anthropic SDK object as the JSON it was built from (they keep every field the vendor sent)."""
    return model.model_dump(mode="json", exclude_unset=True)


def gemini_answer(obj: Any) -> dict:
    """A Gemini answer (wire JSON or the SDK's object) as the SDK's model, without what the SDK adds itself."""
    if isinstance(obj, dict):
        obj = gtypes.GenerateContentResponse.model_validate(obj)
    return obj.model_dump(exclude={"sdk_http_response", "automatic_function_calling_history"})


def test_saved_flows_show_the_vendor_url_real_answer_and_masked_keys(fake_vendor, rotator, tmp_path):
    flows_path = tmp_path / "flows.mitm"
    providers = {name: {"keys": keys} for name, keys in SECRET_KEYS.items()}
    proxy = rotator(fresh=True, args=("-w", str(flows_path)), providers=providers)
    oa, an, ge = make_client("chat"), make_client("anthropic"), make_client("gemini")
    prompt, claude, flash = HI, "claude-haiku-4-5", "/v1/models/gemini-2.5-flash"  # (google-genai 3.x: v1)

    calls: list[tuple[str, str, Any]] = []  # (family, path on the vendor host, what the client got), in order
    calls.append(("openai", "/v1/chat/completions", oa.chat.completions.create(model="gpt-4o-mini", messages=prompt)))
    chunks = list(oa.chat.completions.create(model="gpt-4o-mini", messages=prompt, stream=True,
                                             stream_options={"include_usage": True}))  # (see wire_url)
    calls.append(("openai", "/v1/chat/completions", chunks))
    calls.append(("openai", "/v1/responses", oa.responses.create(model="gpt-4o-mini", input="hi")))
    calls.append(("openai", "/v1/models", list(oa.models.list())))
    calls.append(("anthropic", "/v1/messages", an.messages.create(model=claude, max_tokens=9, messages=prompt)))
    with an.messages.stream(model=claude, max_tokens=9, messages=prompt) as s:
        calls.append(("anthropic", "/v1/messages", s.get_final_message()))
    answer = ge.models.generate_content(model="gemini-2.5-flash", contents="hi")
    calls.append(("gemini", f"{flash}:generateContent", answer))
    chunks = list(ge.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    calls.append(("gemini", f"{flash}:streamGenerateContent?alt=sse", chunks))
    url, body = wire_url("gemini", VENDOR_URL["gemini"])
    with through(proxy) as http:  # the key in the query: the saved URL must not show a pooled key there either
        calls.append(("gemini", f"{WIRE['gemini'][0]}?key=", http.post(url + "?key=client-query-key", json=body)))
    # Two retried calls (a 500, then the next key answers), whole and streamed, and one the vendor refuses (400).
    fake_vendor.script(Fault.status(500))
    calls.append(("openai", "/v1/chat/completions", oa.chat.completions.create(model="gpt-4o-mini", messages=prompt)))
    fake_vendor.script(Fault.status(500))
    with an.messages.stream(model=claude, max_tokens=9, messages=prompt) as s:
        calls.append(("anthropic", "/v1/messages", s.get_final_message()))
    fake_vendor.script(Fault.status(400))
    with pytest.raises(anthropic.BadRequestError) as refused:
        an.with_options(max_retries=0).messages.create(model=claude, max_tokens=9, messages=prompt)
    calls.append(("anthropic", "/v1/messages", refused.value))
    vendor_reqs = fake_vendor.wait_for(len(calls) + 2)
    proxy.proc.stop()  # the flow file is complete once mitmdump has exited

    flows = read_flows(flows_path)
    raw = flows_path.read_bytes()
    log = proxy.full_log
    for secret in SECRETS:
        assert secret.encode() not in raw, f"pooled key {secret} in the saved flows"
        assert secret not in log, f"pooled key {secret} in the proxy's log"
    assert [f"{f.request.host}{unquote(f.request.path)}" for f in flows] == [
        VENDOR_URL[family].removeprefix("https://") + path.replace("?key=", f"?key={masked(req.credential)}")
        for (family, path, _), req in zip(calls, [r for r in vendor_reqs if r.status != 500])
    ]

    by_index = {r.index: r for r in vendor_reqs}
    for flow, (family, path, answer) in zip(flows, calls):
        req = by_index[int(flow.response.headers["x-fake-vendor-request"])]  # the attempt that answered
        where = f"{flow.request.method} {flow.request.pretty_url}"
        # the vendor's URL, not where Rotator sent it
        assert (flow.request.scheme, flow.request.port) == ("https", 443), where
        assert flow.request.pretty_url.startswith(VENDOR_URL[family] + path.removesuffix("?key=")), where
        # the request as the client sent it: a non-stream call went upstream asking for a stream (by default)
        asked_stream = ":streamGenerateContent" in path or json.loads(flow.request.content or "{}").get("stream") is True
        folded = req.stream and not asked_stream
        if folded:
            unasked = ("stream", "stream_options")
            assert json.loads(flow.request.content) == {k: v for k, v in req.body.items() if k not in unasked}, where
        else:
            assert flow.request.content == req.raw_body, where
        # the real status and the body the client received: byte for byte what the vendor sent, unless it was
        # folded from the vendor's stream (compared below with what the client got)
        assert flow.response.status_code == req.status, where
        if not folded or req.status != 200:
            assert flow.response.content == req.sent, where
        # the credential shown is the masked pooled key that served it
        assert flow.request.headers.get(CREDENTIAL_HEADER[family]) == shown_credential(family, req.credential), where
        assert flow.metadata.get("rotator", {}).get("provider") == family, where
        # ... and that body is what the client got
        content = flow.response.content
        if isinstance(answer, httpx.Response):
            assert (answer.status_code, answer.content) == (flow.response.status_code, content), where
        elif isinstance(answer, anthropic.APIStatusError):
            assert answer.status_code == flow.response.status_code == 400, where
            assert answer.body == json.loads(content), where
        elif family == "gemini":
            wire = sse_data(content) if asked_stream else [json.loads(content)]
            assert [gemini_answer(d) for d in wire] == [gemini_answer(c) for c in listed(answer)], where
        elif path == "/v1/models":
            assert [as_sent(model) for model in answer] == json.loads(content)["data"], where
        elif family == "anthropic" and asked_stream:  # (the helper's final message: compare what it is made of)
            deltas = [d["delta"]["text"] for d in sse_data(content) if d["type"] == "content_block_delta"]
            assert "".join(deltas) == answer.content[0].text and deltas, where
            assert sse_data(content)[0]["message"]["id"] == answer.id, where
        elif asked_stream:
            assert [as_sent(chunk) for chunk in answer] == sse_data(content), where
        else:
            assert as_sent(answer) == json.loads(content), where

    # The retried calls: a 500 on one key, answered by the next; the flow says so, and so does the log.
    for flow, req in zip(flows[-3:-1], [r for r in vendor_reqs if r.status == 500]):
        events = flow.metadata["rotator"]["events"]
        assert [e["kind"] for e in events if e["kind"] != "committed"] == ["retry"], events
        assert flow.comment == "retried 1× (status 500)", flow.comment
        assert flow.response.status_code == 200
        answered = by_index[int(flow.response.headers["x-fake-vendor-request"])]
        assert answered.index == req.index + 1 and answered.credential != req.credential
    assert log.count("retry") >= 2, log
    # Plain calls carry no comment.
    assert [f.comment for f in flows[:-3] + flows[-1:]] == [""] * (len(flows) - 2)


def listed(answer: Any) -> list:
    return answer if isinstance(answer, list) else [answer]


# ------------------------------------------------------------------------------------------------------------------
# 8. A malformed JSON body on a generation path is forwarded untouched, and its answer comes back


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_json_is_forwarded_untouched(fake_vendor, rotator, protocol):
    proxy = rotator()
    url, _ = wire_url(protocol, VENDOR_URL[FAMILY[protocol]])
    body = b'{"model": '
    headers = {**client_headers(protocol, "client-key"), "content-type": "application/json"}
    with through(proxy) as http:
        response = http.post(url, content=body, headers=headers)

    [req] = fake_vendor.wait_for(1)
    assert req.raw_body == body
    assert req.protocol == protocol
    assert req.credential in POOL_KEYS[FAMILY[protocol]]
    assert response.status_code == req.status
    assert response.content == req.sent
    time.sleep(QUIET)  # stays: absence. Anything the proxy logs about it is written by now
    assert "Traceback" not in proxy.log, proxy.log
    assert "engine failed" not in proxy.log, proxy.log


# ------------------------------------------------------------------------------------------------------------------
# 9. mitmweb shows the same: the vendor URL and no pooled key


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_mitmweb_shows_the_vendor_url_and_no_pooled_key(fake_vendor, tmp_path, monkeypatch, request):
    password = "rotator-e2e-web-password"
    config = merge(default_config(fake_vendor.url), {"providers": {n: {"keys": k} for n, k in SECRET_KEYS.items()}})
    proc = MitmwebProcess(config, tmp_path / "mitmweb", args=("--set", "web_host=127.0.0.1"), password=password)
    proc.start()
    web_port = proc.web_port
    try:
        request.node._rotators = [Rotator(proc, monkeypatch).apply_env()]  # (its log goes into a failure report)
        wait_listening(web_port)
        call("chat", make_client("chat"), stream=True)
        whole = call("anthropic", make_client("anthropic"), stream=False)
        call("gemini", make_client("gemini"), stream=True)
        reqs = fake_vendor.wait_for(3)

        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", trust_env=False, timeout=10) as web:
            assert web.get("/flows").status_code == 403  # (the API does ask for the password)
            auth = {"authorization": f"Bearer {password}"}
            deadline = time.monotonic() + 10
            while len(flows := web.get("/flows", headers=auth).json()) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            bodies = [web.get(f"/flows/{f['id']}/response/content.data", headers=auth).content for f in flows]
            listing = web.get("/flows", headers=auth).text
    finally:
        proc.stop()

    assert [(f["request"]["scheme"], f["request"]["pretty_host"], f["request"]["port"]) for f in flows] == [
        ("https", "api.openai.com", 443),
        ("https", "api.anthropic.com", 443),
        ("https", "generativelanguage.googleapis.com", 443),
    ]
    assert [f["request"]["path"] for f in flows] == [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse",  # (google-genai 3.x calls v1)
    ]
    for flow, req, body in zip(flows, reqs, bodies):
        family = {"chat": "openai"}.get(req.protocol, req.protocol)
        headers = {name.lower(): value for name, value in flow["request"]["headers"]}
        assert headers[CREDENTIAL_HEADER[family]] == shown_credential(family, req.credential)
        assert flow["response"]["status_code"] == 200
        if req.protocol == "anthropic":  # a non-stream call, folded from the vendor's stream: what the client got
            assert json.loads(body) == as_sent(whole.raw)
        else:
            assert body == req.sent
    for secret in SECRETS:
        assert secret not in listing
        assert not any(secret.encode() in body for body in bodies)
        assert secret not in proc.log_text()
