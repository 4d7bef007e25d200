"""Big and hostile bodies through a real mitmdump: a large upload does not stall other clients' streams, one past
limits.max_request_body is answered 413 without being kept, an upstream body that decompresses without end (a gzip
bomb) is cut at its cap, and an error body that stalls is retried on the next key like a first-token stall.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.support.clients import MODELS, make_client
from tests.support.fake_vendor import TEXT, Fault
from tests.support.gate import CLIENTS, ROUTED_MODEL, STRANGER, TARGET_KEYS, TEAM_A, routed_config
from tests.support.raw_http import client_headers, through
from tests.support.reliability import (
    FAMILY,
    FAST,
    FIRST_TOKEN_TIMEOUT,
    MARGIN,
    UNHURRIED,
    assert_one_clean_answer,
    assert_rotator_retried,
    stream,
    two_keys,
    warmed,
)
from tests.support.timing import QUIET

pytestmark = pytest.mark.e2e

MiB = 1 << 20
BOMB_SIZE = 1 << 30  # what the bomb decodes to
RSS_BOUND = 300 * MiB
CHAT_URL = "https://api.openai.com/v1/chat/completions"
URLS = {
    "chat": CHAT_URL,
    "anthropic": "https://api.anthropic.com/v1/messages",
    "gemini": f"https://generativelanguage.googleapis.com/v1beta/models/{MODELS['gemini']}:generateContent",
}


def peak_rss(proxy) -> int:
    """The mitmdump process's peak resident memory so far (VmHWM), in bytes."""
    status = Path(f"/proc/{proxy.proc.process.pid}/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzipped (about 1 MiB)."""
    z = zlib.compressobj(9, wbits=31)
    zeros = bytes(16 * MiB)
    return b"".join([z.compress(zeros) for _ in range(BOMB_SIZE // len(zeros))] + [z.flush()])


# ------------------------------------------------------------------------------------------------------------------
# A large upload is read while other clients' streams keep flowing.

EVENTS = 1500  # the concurrent stream's text deltas, one every INTERVAL: it outlasts the upload
INTERVAL = 0.02
BIG = 80_000_000  # bytes of the upload

# The concurrent stream's client, in a process of its own (this one is busy uploading and serving the fake vendor):
# one line per event, "<received at> <the vendor's x_sent_at>".
READER = """
import json, ssl, sys, time, httpx
proxy, ca, url, body = sys.argv[1:]
tls = ssl.create_default_context(cafile=ca)
with httpx.Client(proxy=proxy, verify=tls, trust_env=False, timeout=60) as http:
    with http.stream("POST", url, content=body, headers={"authorization": "Bearer sk-client",
                                                         "content-type": "application/json"}) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                sent = json.loads(line[6:]).get("x_sent_at")
                if sent:
                    print(time.time(), sent, flush=True)
"""


@pytest.mark.alone
def test_an_80_mb_upload_does_not_stall_another_clients_stream(fake_vendor, rotator):
    proxy = warmed(rotator, fake_vendor, "chat", limits={"max_request_body": 128 * MiB})
    fake_vendor.script(Fault.ok(" ".join(["w"] * EVENTS)).slow(INTERVAL), Fault.ok())
    big = json.dumps({"model": MODELS["chat"], "messages": [{"role": "user", "content": "x" * BIG}]}).encode()
    small = json.dumps({"model": MODELS["chat"], "stream": True, "messages": [{"role": "user", "content": "hi"}]})

    reader = subprocess.Popen([sys.executable, "-c", READER, proxy.url, str(proxy.ca_cert), CHAT_URL, small],
                              stdout=subprocess.PIPE, text=True)
    try:
        reader.stdout.readline()  # the stream flows
        with through(proxy) as http:
            start = time.time()
            resp = http.post(CHAT_URL, content=big, headers=client_headers("chat", "sk-client"), timeout=120)
            end = time.time()
        lines = []
        for line in reader.stdout:  # up to the first event after the upload's end (or the stream's end)
            lines.append(tuple(map(float, line.split())))
            if lines[-1][0] > end:
                break
    finally:
        reader.kill()

    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == TEXT
    assert len(fake_vendor.requests[1].body["messages"][0]["content"]) == BIG  # the vendor got the upload whole
    during = [received - sent for received, sent in lines if start <= received <= end]
    assert len(during) > 10, (len(lines), end - start)  # the stream went on while the upload did
    assert max(during) < 0.1, f"an event of the concurrent stream was held {max(during):.3f} s"


@pytest.mark.parametrize("size", [6 * MiB, 2 * MiB])
def test_a_large_non_stream_body_is_streamed_upstream_with_only_its_stream_member_changed(fake_vendor, rotator, size):
    """A body past the size parsed on the loop, asking `"stream": false` (6 MiB: sent on as the pieces it came in;
    2 MiB: held whole, its bytes handed to the upstream write around the spliced member, not joined): the vendor is
    asked for a stream (to watch it), every other byte as the client sent it, and the client gets its JSON answer."""
    proxy = warmed(rotator, fake_vendor, "chat", limits={"max_request_body": 64 * MiB})
    text = "y" * size
    big = (b'{"model": "%s", "stream": false, "max_tokens": 12345,\n "messages": [{"role": "user", "content": "%s"}]}'
           % (MODELS["chat"].encode(), text.encode()))
    with through(proxy) as http:
        resp = http.post(CHAT_URL, content=big, headers=client_headers("chat", "sk-client"), timeout=120)
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == TEXT
    sent = fake_vendor.requests[-1]
    assert sent.body["stream"] is True and sent.body["messages"][0]["content"] == text
    # (what follows the member, byte for byte)
    assert sent.raw_body.endswith(b'"stream": true' + big[big.index(b', "max_tokens"'):])


# ------------------------------------------------------------------------------------------------------------------
# Past limits.max_request_body: 413 in the protocol's shape, and the body is not kept.

LIMIT = 1 * MiB
HUGE = 256 * MiB


def uploaded(size: int, piece: int = MiB):
    """A JSON request body of `size` bytes, made as it is sent (the test holds none of it whole)."""
    head, tail = b'{"model": "m", "messages": [{"role": "user", "content": "', b'"}]}'
    yield head
    left = size - len(head) - len(tail)
    while left > 0:
        yield b"x" * min(piece, left)
        left -= piece
    yield tail


def refusal(protocol: str, body: dict) -> str:
    """The refusal's kind, where each vendor's error body names it."""
    if FAMILY[protocol] == "openai":
        return body["error"]["code"]
    if FAMILY[protocol] == "anthropic":
        return body["type"] + ":" + body["error"]["type"]
    return f'{body["error"]["code"]} {body["error"]["status"]}'


REFUSED = {"chat": "request_too_large", "anthropic": "error:request_too_large", "gemini": "413 FAILED_PRECONDITION"}


@pytest.mark.parametrize("protocol", ["chat", "anthropic", "gemini"])
def test_a_body_past_the_limit_gets_413_in_the_protocols_shape(fake_vendor, rotator, protocol):
    proxy = rotator(limits={"max_request_body": LIMIT})
    headers = {**client_headers(protocol, "sk-client"), "content-type": "application/json",
               "content-length": str(2 * LIMIT)}

    with through(proxy) as http:
        resp = http.post(URLS[protocol], content=uploaded(2 * LIMIT), headers=headers)

    assert resp.status_code == 413
    assert refusal(protocol, resp.json()) == REFUSED[protocol]
    assert "max_request_body" in resp.text
    # Nothing of it went upstream (a request another test left in flight on this worker's vendor may still arrive).
    assert not [c for c in fake_vendor.calls() if len(c.raw_body) >= LIMIT]


def test_a_huge_body_past_the_limit_is_not_kept_in_memory(fake_vendor, rotator):
    proxy = rotator(fresh=True, limits={"max_request_body": LIMIT})
    headers = {**client_headers("chat", "sk-client"), "content-type": "application/json",
               "content-length": str(HUGE)}

    with through(proxy) as http:
        resp = http.post(CHAT_URL, content=uploaded(HUGE), headers=headers, timeout=120)

    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
    assert peak_rss(proxy) < HUGE // 2, f"mitmdump peaked at {peak_rss(proxy) >> 20} MiB"
    assert fake_vendor.calls() == []


# ------------------------------------------------------------------------------------------------------------------
# A gzip bomb from the upstream: cut at the cap, on the engine's path and on a pass-through path.


def test_a_gzip_bomb_in_a_429_body_is_a_cut_retried_on_the_next_key(fake_vendor, rotator, gzip_bomb):
    proxy = rotator(fresh=True, streaming=UNHURRIED)
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    fake_vendor.script(Fault.status(429, gzip_bomb, headers), Fault.ok())

    seen = stream("chat", make_client("chat").with_options(max_retries=0, timeout=60))

    assert_one_clean_answer("chat", seen, served_by=1)
    two_keys(fake_vendor, "chat")
    assert_rotator_retried(proxy, "chat")
    assert "(upstream body grew past 1048576 bytes, before the answer started)" in proxy.log
    assert peak_rss(proxy) < RSS_BOUND, f"mitmdump peaked at {peak_rss(proxy) >> 20} MiB"


def test_a_gzip_bomb_on_a_pass_through_path_is_cut_at_the_cap(fake_vendor, rotator, gzip_bomb):
    cap = 16 * MiB
    proxy = rotator(fresh=True, limits={"max_response_body": cap})
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    fake_vendor.script(Fault.status(200, gzip_bomb, headers))

    with through(proxy) as http:
        resp = http.get("https://api.openai.com/v1/models", headers=client_headers("chat", "sk-client"),
                        timeout=120)

    assert resp.status_code == 200
    assert 0 < len(resp.content) <= cap and resp.content.strip(b"\0") == b""  # the bomb's start, no more
    assert "cut" in proxy.wait_log(f"grew past {cap} bytes")
    assert peak_rss(proxy) < RSS_BOUND, f"mitmdump peaked at {peak_rss(proxy) >> 20} MiB"


# ------------------------------------------------------------------------------------------------------------------
# An error body that stalls: a stall of that attempt, retried on the next key within the first-token timeout.


@pytest.mark.parametrize("protocol", ["chat", "anthropic"])
def test_a_stalled_error_body_is_retried_on_the_next_key(fake_vendor, rotator, protocol):
    proxy = warmed(rotator, fake_vendor, protocol, streaming=FAST)
    fake_vendor.script(Fault.status(500).dripping(2.0), Fault.ok())

    t0 = time.monotonic()
    seen = stream(protocol, make_client(protocol).with_options(max_retries=0, timeout=30))
    elapsed = time.monotonic() - t0

    assert_one_clean_answer(protocol, seen, served_by=1)
    assert elapsed < FIRST_TOKEN_TIMEOUT + MARGIN
    first, _ = two_keys(fake_vendor, protocol)
    assert first.status == 500
    assert_rotator_retried(proxy, protocol)
    assert "its body stalled" in proxy.log


# ------------------------------------------------------------------------------------------------------------------
# A large body is gated at its headers (it is streamed to the engine, never held whole): the client key still
# decides, on every pool the request could draw from, before anything goes upstream.

LARGE = 6 * MiB  # above the size that is streamed (rewrite/intake/loopback_request.py BIG_BODY)


def large_anthropic_call(http, key: str, model: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "y" * LARGE}]}
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    return http.post(URLS["anthropic"], content=json.dumps(body).encode(), headers=headers, timeout=60)


def test_a_large_body_to_a_keyless_provider_routed_to_a_pool_needs_a_client_key(fake_vendor, rotator):
    with through(rotator(routed_config(fake_vendor.url), clients=CLIENTS)) as http:
        refused = large_anthropic_call(http, STRANGER, ROUTED_MODEL)
        time.sleep(QUIET)  # stays: absence. A refused request that got through would have reached the vendor by now
        assert fake_vendor.requests == []
        served = large_anthropic_call(http, TEAM_A, ROUTED_MODEL)

    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert served.status_code == 200 and served.json()["content"][0]["text"] == TEXT
    [sent] = fake_vendor.requests  # translated for the pooled target, the body whole
    assert (sent.protocol, sent.model, sent.credential in TARGET_KEYS) == ("chat", "deepseek-chat", True)
    assert sent.body["messages"][-1]["content"] == "y" * LARGE
    assert TEAM_A not in json.dumps([sent.headers, sent.query])


def test_a_large_body_whose_stream_is_cut_is_continued_with_every_byte_of_it(fake_vendor, rotator):
    """A body past the size parsed on the loop is read in a worker, which gives back its skeleton (long texts left
    out); a cut answer's continuation is written from the body itself, its long text whole."""
    proxy = warmed(rotator, fake_vendor, "chat", limits={"max_request_body": 64 * MiB})
    fake_vendor.script(Fault.cut_after(deltas=3, how="clean"), Fault().continuing())
    text = "z" * (5 * MiB)
    big = json.dumps({"model": MODELS["chat"], "stream": True,
                      "messages": [{"role": "user", "content": text}]}).encode()
    with through(proxy) as http:
        resp = http.post(CHAT_URL, content=big, headers=client_headers("chat", "sk-client"), timeout=120)
    assert resp.status_code == 200
    first, again = fake_vendor.requests[-2:]
    assert first.body["messages"][0]["content"] == text
    assert again.body["messages"][0]["content"] == text  # (the continuation: the client's text, then the answer's)
