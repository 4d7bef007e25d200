"""Memory after load, through a real mitmdump: once no request has been in flight for `rotator_give_back_after`
seconds after a burst, the proxy hands what it no longer uses back to the system (its resident set, read from
/proc, falls); while a stream is still running, it does not."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.clients import MODELS
from tests.support.fake_vendor import TEXT, Fault
from tests.support.harness import ADDON, MITMDUMP, clean_environ, free_port
from tests.support.raw_http import client_headers, through

pytestmark = pytest.mark.e2e

MiB = 1 << 20
CHAT_URL = "https://api.openai.com/v1/chat/completions"
GIVE_BACK_AFTER = 0.5
GAVE_BACK = "memory given back to the system"
BURST, BODY = 24, 3 * MiB  # concurrent non-stream calls, each body's size: the heap grows by tens of MiB
STREAM_EVENTS, INTERVAL = 40, 0.1  # a stream that outlasts the burst by seconds


def resident(proxy) -> int:
    """The mitmdump process's resident memory now (VmRSS), in bytes."""
    status = Path(f"/proc/{proxy.proc.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024


def call(proxy, body: bytes) -> str:
    with through(proxy) as http:
        resp = http.post(CHAT_URL, content=body, headers=client_headers("chat", "sk-client"), timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    return resp.json()["choices"][0]["message"]["content"]


def burst_body(i: int) -> bytes:
    return json.dumps({"model": MODELS["chat"], "messages": [{"role": "user", "content": f"{i}" * BODY}]}).encode()


def test_memory_is_given_back_once_load_goes_idle_and_not_while_a_stream_runs(fake_vendor, rotator):
    proxy = rotator(fresh=True, args=("--set", f"rotator_give_back_after={GIVE_BACK_AFTER}"),
                    limits={"max_request_body": 64 * MiB})
    fake_vendor.always(Fault.ok())
    fake_vendor.script(Fault.ok(" ".join(["w"] * STREAM_EVENTS)).slow(INTERVAL))
    streaming = threading.Event()

    def long_stream() -> str:
        body = json.dumps({"model": MODELS["chat"], "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        with through(proxy) as http, http.stream("POST", CHAT_URL, content=body,
                                                 headers=client_headers("chat", "sk-client")) as resp:
            for line in resp.iter_lines():
                streaming.set()
                if line == "data: [DONE]":
                    return proxy.full_log
        return ""

    with ThreadPoolExecutor(BURST + 1) as pool:
        stream = pool.submit(long_stream)
        assert streaming.wait(10)
        answers = list(pool.map(lambda i: call(proxy, burst_body(i)), range(BURST)))
        after_burst = resident(proxy)
        log_at_stream_end = stream.result(timeout=30)
        ended = time.monotonic()

    assert answers == [TEXT] * BURST
    assert GAVE_BACK not in log_at_stream_end  # (the burst ended seconds before the stream did)
    proxy.wait_log(GAVE_BACK, timeout=10)
    idle = resident(proxy)
    assert time.monotonic() - ended >= GIVE_BACK_AFTER * 0.9  # (after the stream's end, not the burst's)
    assert idle < after_burst - 8 * MiB, f"resident {after_burst >> 20} MiB after the burst, {idle >> 20} MiB idle"


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_a_give_back_delay_that_is_not_seconds_stops_start_up_in_one_line(tmp_path, value):
    command = [str(MITMDUMP), "-s", ADDON, "--listen-host", "127.0.0.1", "--listen-port", str(free_port()),
               "--set", f"confdir={tmp_path / 'confdir'}", "--set", f"rotator_give_back_after={value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=clean_environ({"HOME": str(tmp_path)}))
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output and "proxy listening" not in output, output
    [line] = [line for line in output.splitlines() if "rotator_give_back_after" in line]
    assert line.endswith(f"rotator_give_back_after: '{value}' is not a number of seconds (0 or more)"), line
