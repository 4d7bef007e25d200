"""mitmweb as a user sees it: a real `mitmweb -s addons/rotator.py`, a retried and a repaired call through it by the
OpenAI SDK, then the page rendered by headless Chromium (Debian's `chromium`) and mitmweb's own flow API, as the
page loads it: neither flow is in error, the LLM view shows the assembled text, the usage and the attempts.

With ROTATOR_SCREENSHOTS=DIR the test also saves the two screenshots the README shows (flow list, repaired flow).
"""

from __future__ import annotations

import html
import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support import mitmweb as mitmweb_support
from tests.support.browser import CHROMIUM, chromium
from tests.support.clients import MODELS, PROMPT, make_client
from tests.support.fake_vendor import TEXT, Fault, split_text
from tests.support.harness import Rotator, default_config, free_port, merge
from tests.support.mitmweb import MitmwebProcess
from tests.support.reliability import RESUME_OFF, UNHURRIED

pytestmark = pytest.mark.e2e

PASSWORD = "rotator-test-web-password"
PREFIX = "".join(split_text(TEXT)[:2])


@pytest.fixture
def mitmweb(fake_vendor, tmp_path, monkeypatch):
    proc = MitmwebProcess(merge(default_config(fake_vendor.url), {"streaming": UNHURRIED, "resume": RESUME_OFF}),
                          tmp_path / "mitmweb", password=PASSWORD)
    proc.start()
    Rotator(proc, monkeypatch).apply_env()
    yield proc
    proc.stop()


def api(proc: MitmwebProcess, path: str):
    response = httpx.get(proc.web + path, headers={"Authorization": f"Bearer {PASSWORD}"}, timeout=10)
    response.raise_for_status()
    return response.json()


def rendered(url: str, expected: str, tries: int = 3) -> str:
    """The page as the browser renders it, once it shows `expected`. (On a loaded machine the page's WebSocket to
    mitmweb may still be connecting when the browser's virtual time runs out: the page then shows no flows yet.)"""
    dom = ""
    for _ in range(tries):
        dom = html.unescape(chromium("--dump-dom", url=url))
        if expected in dom:
            break
    return dom


def chat_stream() -> str:
    chunks = make_client("chat").chat.completions.create(
        model=MODELS["chat"], messages=[{"role": "user", "content": PROMPT}], stream=True,
        stream_options={"include_usage": True})
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_web_port_taken_before_mitmweb_binds_it_is_drawn_again(fake_vendor, tmp_path, monkeypatch):
    """mitmweb exits when its web port is taken ("Address already in use"); the harness draws both ports again, as it
    draws the proxy's (another test's connection may take a drawn port before the bind)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        drawn = iter([port])
        monkeypatch.setattr(mitmweb_support, "free_port", lambda: next(drawn, None) or free_port())
        proc = MitmwebProcess(default_config(fake_vendor.url), tmp_path / "mitmweb", password=PASSWORD)
        try:
            proc.start()
            assert proc.web_port != port and api(proc, "/flows") == []
            assert f"failed to listen on 127.0.0.1:{port}" in proc.log_text()
        finally:
            proc.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_mitmweb_shows_retried_and_repaired_calls_honestly(fake_vendor, mitmweb, tmp_path):
    fake_vendor.script(Fault.status(500))
    assert chat_stream() == TEXT
    fake_vendor.script(Fault.cut_after(deltas=2, how="reset"))
    assert chat_stream() == PREFIX
    fake_vendor.wait_for(3)

    # mitmweb's flow list, as the page loads it
    deadline = time.monotonic() + 10
    while len(flows := [f for f in api(mitmweb, "/flows") if f["request"]["pretty_host"] == "api.openai.com"]) < 2:
        assert time.monotonic() < deadline, flows
        time.sleep(0.1)
    retried, repaired = flows
    for flow in (retried, repaired):
        assert "error" not in flow, flow.get("error")
        assert flow["request"]["scheme"] == "https" and flow["request"]["port"] == 443
        # the Connection tab: the upstream Rotator called (the fake vendor's base_url), not its loopback server
        assert flow["server_conn"]["address"] == ["127.0.0.1", httpx.URL(fake_vendor.url).port]
    assert retried["comment"] == "retried 1× (status 500)" and retried["marked"] == "🔁"
    assert repaired["comment"].startswith("repaired (upstream reset") and repaired["marked"] == "🩹"

    # the LLM view of each answer, as the page asks for it
    views = {name: api(mitmweb, f"/flows/{flow['id']}/response/content/auto.json")
             for name, flow in (("retried", retried), ("repaired", repaired))}
    for view in views.values():
        view["text"] = "\n".join(line.rstrip() for line in view["text"].split("\n"))  # (blank lines hold a space)
    for view in views.values():
        assert view["view_name"] == "LLM", view
        assert view["text"].startswith(f"Rotator · OpenAI Chat Completions · {MODELS['chat']} · stream\n"), view
    assert f"\n{TEXT}\n" in views["retried"]["text"]
    assert "usage: input 12 · output " in views["retried"]["text"]
    assert "attempts:\n  1. key …" in views["retried"]["text"] and " · status 500 · " in views["retried"]["text"]
    assert f"\n{PREFIX}\n" in views["repaired"]["text"]
    assert "finish: length (the upstream was cut: Rotator ended the answer as truncated)" in views["repaired"]["text"]

    # the page itself, rendered by a real browser
    page = f"{mitmweb.web}/?token={PASSWORD}"
    listing = rendered(page, "retried 1× (status 500)")
    assert "retried 1× (status 500)" in listing, listing[-3000:]
    assert "repaired (upstream reset" in listing
    detail = rendered(f"{page}#/flows/{repaired['id']}/response", "Rotator · OpenAI Chat Completions")
    assert "Rotator · OpenAI Chat Completions" in detail, detail[-3000:]
    assert PREFIX in detail and "finish: length" in detail and "repairs and notes:" in detail

    shots = os.environ.get("ROTATOR_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        for name, url in (("mitmweb-flows.png", page), ("mitmweb-repaired-flow.png",
                                                         f"{page}#/flows/{repaired['id']}/response")):
            chromium("--window-size=1400,760", f"--screenshot={Path(shots).resolve() / name}", url=url)


def test_mitmweb_never_sees_the_clients_own_key_not_even_while_the_body_arrives(fake_vendor, tmp_path):
    """mitmweb adds a flow when its request headers arrive; the credential is masked from that moment on."""
    import json
    import ssl

    secret = "sk-client-own-secret-0123456789abcdef"
    proc = MitmwebProcess(merge(default_config(fake_vendor.url), {"providers": {"openai": {"keys": []}}}),
                          tmp_path / "mitmweb-own-key", password=PASSWORD)
    proc.start()
    try:
        body = json.dumps({"model": MODELS["chat"], "messages": [{"role": "user", "content": PROMPT}]}).encode()
        raw = socket.create_connection(("127.0.0.1", proc.port), timeout=30)
        raw.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        tls = ssl.create_default_context(cafile=str(proc.ca_cert)).wrap_socket(raw, server_hostname="api.openai.com")
        tls.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\n"
                    b"Authorization: Bearer " + secret.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body))

        deadline = time.monotonic() + 30  # the headers are in, the body is not: the flow shows in mitmweb
        while not (flows := [f for f in api(proc, "/flows") if f["request"]["pretty_host"] == "api.openai.com"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert secret not in json.dumps(flows)
        assert any(v.startswith("Bearer sk-c") and v != f"Bearer {secret}"
                   for n, v in flows[0]["request"]["headers"] if n.lower() == "authorization"), flows[0]["request"]

        tls.sendall(body)  # the rest of the request: it goes upstream with the real key
        answer = b""
        while b"\r\n0\r\n\r\n" not in answer and b'"finish_reason"' not in answer:
            answer += tls.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        assert fake_vendor.wait_for(1)[0].credential == secret
        assert secret not in json.dumps(api(proc, "/flows"))
        tls.close()
    finally:
        proc.stop()
