"""Key pools end to end, through a real `mitmdump -s addons/rotator.py` (or mitmweb) with the official SDKs: a
rate-limited key rests as long as the vendor said while the others carry the load, every key resting answers 429
at once (or waits, when a key is back within first_token_timeout), a refused key is never used again and the log
names it masked, and `rotator.pools` from mitmweb shows a resting key and counters that continue after a restart."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import anthropic
import openai
import pytest

from tests.support.clients import MODELS, call, make_client
from tests.support.fake_vendor import Fault
from tests.support.harness import POOL_KEYS, Rotator, default_config, merge
from tests.support.mitmweb import MitmwebProcess
from tests.support.timing import MARGIN, QUIET

pytestmark = pytest.mark.e2e

K1, K2, K3 = POOL_KEYS["openai"]
REJECTED = "sk-pool-rejected-key-0xyz"  # long enough to be masked as sk…0xyz


def chat(stream: bool = False, retries: int = 2):
    return call("chat", make_client("chat").with_options(max_retries=retries), stream=stream)


def assert_no_secret(text: str) -> None:
    assert not any(key in text for keys in POOL_KEYS.values() for key in keys) and REJECTED not in text
    assert "Traceback" not in text


def test_a_key_answered_429_retry_after_30_gets_no_request_while_the_others_carry_the_load(fake_vendor, rotator):
    proxy = rotator(fresh=True)
    fake_vendor.script(Fault.status(429, headers={"retry-after": "30"}), key=K1)

    started = time.monotonic()
    for i in range(9):
        assert chat(stream=i % 2 == 1).text
    assert time.monotonic() - started < 30 - MARGIN  # (a premise, not a bound: all of it inside K1's 30 s rest)

    keys = [r.credential for r in fake_vendor.wait_for(10)]
    assert keys[0] == K1 and K1 not in keys[1:]  # only the 429 itself
    assert Counter(keys[1:]) == {K2: 5, K3: 4}  # the others share the load
    line = proxy.wait_log("1 resting")
    assert f"openai keys: 2 ready, 1 resting, 0 out; …-1 resting for {MODELS['chat']} until " in line
    assert "(in 30 s): rate limited, status 429" in line
    assert_no_secret(proxy.log)


def test_every_key_resting_answers_429_at_once_with_the_soonest_return(fake_vendor, rotator):
    proxy = rotator(fresh=True, streaming={"first_token_timeout": 1 + MARGIN})  # (long: a wait for it shows)
    for key, seconds in ((K1, "40"), (K2, "50"), (K3, "60")):
        fake_vendor.always(Fault.status(429, headers={"retry-after": seconds}), key=key)
    with pytest.raises(openai.RateLimitError):
        chat(retries=0)  # every key tried once: the vendor's own 429
    tried = len(fake_vendor.wait_for(3))

    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as e:
        chat(retries=0)
    assert time.monotonic() - started < 1 + MARGIN  # at once, not after the rest nor the first-token timeout
    assert 35 <= int(e.value.response.headers["retry-after"]) <= 40  # K1, back first
    assert "rate limited" in e.value.message
    with pytest.raises(anthropic.RateLimitError):  # (another pool: its own keys, its own answers)
        fake_vendor.always(Fault.status(429, headers={"retry-after": "40"}))
        call("anthropic", make_client("anthropic").with_options(max_retries=0), stream=False)
    time.sleep(QUIET)  # stays: absence. A request for a resting key would have reached the vendor by now
    assert len(fake_vendor.calls("chat")) == tried  # no request for a resting key
    assert_no_secret(proxy.log)


def test_every_key_back_within_first_token_timeout_is_waited_for(fake_vendor, rotator):
    timeout = 2 + 2 * MARGIN  # (the bound below sits between the rest and it, with a loaded machine's margin)
    rotator(fresh=True, streaming={"first_token_timeout": timeout})
    for key in (K1, K2, K3):
        fake_vendor.script(Fault.status(429, headers={"retry-after": "1"}), key=key)

    started = time.monotonic()
    assert chat(retries=0).text
    assert 0.9 < time.monotonic() - started < timeout - 1  # K1's 1 s, not the first-token timeout
    assert [r.credential for r in fake_vendor.wait_for(4)] == [K1, K2, K3, K1]


def test_a_rejected_key_is_never_used_again_and_the_log_names_it_masked(fake_vendor, rotator):
    proxy = rotator(fresh=True, providers={"openai": {"keys": [REJECTED, K2]}})
    fake_vendor.always(Fault.status(401), key=REJECTED)

    for i in range(6):
        assert chat(stream=i % 2 == 0).text

    keys = [r.credential for r in fake_vendor.wait_for(7)]
    assert keys.count(REJECTED) == 1 and keys[1:] == [K2] * 6
    log = proxy.wait_log("was refused")
    assert log.count("was refused by the vendor") == 1
    assert ("rotator: openai key sk…0xyz was refused by the vendor (rejected, status 401): it is not used again "
            "until the config is reloaded") in log
    assert "openai keys: 1 ready, 0 resting, 1 out; sk…0xyz out: rejected, status 401" in log
    assert_no_secret(log)


# ------------------------------------------------------------------------------------------------------------------
# rotator.pools from mitmweb, across a restart


PASSWORD = "rotator-test-pools-password"


def pools_command(proc: MitmwebProcess, *arguments: str):
    """What mitmweb's command bar runs: POST /commands/rotator.pools."""
    return proc.call("POST", "/commands/rotator.pools", {"arguments": list(arguments)}).json()["value"]


def by_key(proc: MitmwebProcess) -> dict[str, dict]:
    [pool] = [p for p in json.loads(pools_command(proc, "json")) if p["provider"] == "openai"]
    return {k["key"]: k for k in pool["keys"]}


def test_pools_command_shows_a_rest_and_counters_that_survive_a_restart(fake_vendor, tmp_path, monkeypatch):
    config = merge(default_config(fake_vendor.url), {"state": {"path": str(tmp_path / "state.db")}})
    fake_vendor.script(Fault.status(429, headers={"retry-after": "300"}), key=K1)

    first = MitmwebProcess(config, tmp_path / "first", password=PASSWORD)
    first.start()
    try:
        Rotator(first, monkeypatch).apply_env()
        for _ in range(3):
            assert chat().text
        fake_vendor.wait_for(4)
        table = pools_command(first)
        before = by_key(first)
    finally:
        first.stop()
    assert "\nopenai (round-robin): 2 ready, 1 resting, 0 out\n" in table
    assert f"resting for {MODELS['chat']} until" in table and "rate limited, status 429" in table
    assert_no_secret(table)
    assert [before[m]["total"]["requests"] for m in ("…-1", "…-2", "…-3")] == [1, 2, 1]

    second = MitmwebProcess(config, tmp_path / "second", password=PASSWORD)
    second.start()
    try:
        Rotator(second, monkeypatch).apply_env()
        restarted = by_key(second)
        for _ in range(4):
            assert chat().text
        fake_vendor.wait_for(8)
        after = by_key(second)
        log = Path(second.log_path).read_text()
    finally:
        second.stop()
    assert restarted["…-1"]["state"] == "resting" and 250 < restarted["…-1"]["resting"][0]["seconds"] <= 300
    # K1 still resting, and the rotation goes on from where it was (K2 served last before the restart)
    assert [r.credential for r in fake_vendor.requests[4:]] == [K3, K2, K3, K2]
    assert [after[m]["total"]["requests"] for m in ("…-1", "…-2", "…-3")] == [1, 4, 3]  # counting on
    assert [after[m]["last_hour"]["requests"] for m in ("…-1", "…-2", "…-3")] == [1, 4, 3]
    assert "openai keys: 2 ready, 1 resting, 0 out; …-1 resting" in log  # said at start-up
    assert_no_secret(log)
