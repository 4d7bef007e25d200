"""Re-checks of long rests (issue 69) through a real `mitmdump -s addons/rotator.py` and the OpenAI SDK, against the
fake vendor: a pooled key refused for a quota that does not clear by waiting (`insufficient_quota`, a retry-after of
hours) gets one live request once `pools.recheck_after` has passed, the next request the pool would have given it;
topped up, it serves again at once; still refused, it gets one request per re-check, each wait twice the last, and
the client is served by the other key every time; with two workers sharing Redis, still one re-check at a time; a
key refused with 401 is never re-checked. Small `recheck_after` (1 s), loose bounds."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from rewrite.providers.credentials import mask
from tests.support import login_dialects as ld
from tests.support import logins
from tests.support.fake_vendor import Fault
from tests.support.flows import read_vendor_flows
from tests.support.harness import POOL_KEYS, Rotator
from tests.support.redis_server import OUTAGE

pytestmark = pytest.mark.e2e

SPENT, OTHER = POOL_KEYS["openai"][:2]
RECHECK = 1.0  # seconds
SLACK = 1.5  # seconds on top of a due re-check before the request that makes it arrives (a loaded machine)


def pools(recheck_after: float = RECHECK, **openai_extra) -> dict:
    return {"pools": {"recheck_after": recheck_after},
            "providers": {"openai": {"keys": [SPENT, OTHER], **openai_extra}}}


def client_of(proxy: Rotator) -> openai.OpenAI:
    http = httpx.Client(proxy=proxy.url, verify=ssl.create_default_context(cafile=str(proxy.ca_cert)), trust_env=False,
                        timeout=30)
    return openai.OpenAI(api_key="sk-client-placeholder", http_client=http, max_retries=0)


def ask(client: openai.OpenAI) -> str:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content or ""


def to(key: str, fake_vendor) -> list[float]:
    """When each request with `key` reached the vendor."""
    return [r.received_at for r in fake_vendor.calls() if r.credential == key]


def keep_asking(clients: list[openai.OpenAI], until: Callable[[], bool], seconds: float) -> int:
    """Requests one after another (round the clients), each served, until `until()` or `seconds` have passed."""
    deadline, n = time.monotonic() + seconds, 0
    while not until() and time.monotonic() < deadline:
        assert ask(clients[n % len(clients)])  # (a re-check the vendor refused is served by the other key)
        n += 1
    return n


def test_a_key_out_of_credit_and_topped_up_serves_again_after_recheck_after_and_the_flow_says_why(
        fake_vendor, rotator, tmp_path):
    flows_path = tmp_path / "flows"
    proxy = rotator(pools(), fresh=True, args=("-w", str(flows_path)))
    client = client_of(proxy)
    fake_vendor.out_of_credit(SPENT)
    assert ask(client)  # (refused on SPENT, served by OTHER)
    [refused_at] = to(SPENT, fake_vendor)
    fake_vendor.top_up(SPENT)

    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as http:
        status = http.get("http://rotator.status/", params={"format": "json"}).json()
    [openai_pool] = [p["pool"] for p in status["providers"] if p["name"] == "openai"]
    [rest] = openai_pool["keys"][0]["resting"]
    assert "insufficient_quota" in rest["why"] and 0 <= rest["recheck_in"] <= RECHECK + 1
    assert "re-checked at" in openai_pool["keys"][0]["text"]

    keep_asking([client], lambda: len(to(SPENT, fake_vendor)) > 1, RECHECK + 10)
    recheck_at = to(SPENT, fake_vendor)[1]
    assert RECHECK - 0.05 <= recheck_at - refused_at <= RECHECK + SLACK
    between = [r.credential for r in fake_vendor.calls() if refused_at < r.received_at < recheck_at]
    assert set(between) == {OTHER}  # (every other request kept avoiding it)
    n = len(fake_vendor.calls())
    for _ in range(4):
        assert ask(client)
    assert [r.credential for r in fake_vendor.calls()[n:]].count(SPENT) == 2  # (its rest ended: in turn again)

    proxy.proc.stop()
    trails = [t for f in read_vendor_flows(flows_path) for t in f.metadata["rotator"].get("trail", [])]
    [rechecked] = [t for t in trails if t["taken"] == mask(SPENT) and t["why"].startswith("re-check")]
    assert rechecked["why"].startswith("re-check of a rest since ")
    assert rechecked["why"].endswith("(insufficient_quota)") and rechecked["outcome"] == "served"
    assert "serves again" in proxy.log and SPENT not in proxy.log


def test_a_key_still_out_of_credit_gets_one_request_per_recheck_each_wait_twice_the_last(fake_vendor, rotator):
    proxy = rotator(pools(), fresh=True)
    client = client_of(proxy)
    fake_vendor.out_of_credit(SPENT)
    keep_asking([client], lambda: len(to(SPENT, fake_vendor)) >= 4, 1 + 2 + 4 + 3 * SLACK + 10)
    times = to(SPENT, fake_vendor)
    assert len(times) >= 4, times
    gaps = [b - a for a, b in zip(times, times[1:])][:3]
    # 1 s, then 2 s and 4 s, each doubled wait jittered by at most 20 %, each met by the next request after it.
    assert RECHECK - 0.05 <= gaps[0] <= RECHECK + SLACK
    assert 2 * RECHECK * 0.8 - 0.05 <= gaps[1] <= 2 * RECHECK * 1.2 + SLACK
    assert 4 * RECHECK * 0.8 - 0.05 <= gaps[2] <= 4 * RECHECK * 1.2 + SLACK
    assert "Traceback" not in proxy.log and SPENT not in proxy.log


def test_a_429_with_retry_after_of_hours_that_clears_is_rechecked_likewise(fake_vendor, rotator):
    proxy = rotator(pools(), fresh=True)
    client = client_of(proxy)
    fake_vendor.always(Fault.status(429, headers={"retry-after": "7200"}), key=SPENT)
    keep_asking([client], lambda: len(to(SPENT, fake_vendor)) >= 2, RECHECK + SLACK + 10)  # (refused, re-checked)
    fake_vendor.always(None, key=SPENT)  # (it clears after the first re-check)
    cleared = time.time()
    keep_asking([client], lambda: any(t > cleared for t in to(SPENT, fake_vendor)), 2 * RECHECK * 1.2 + SLACK + 10)
    served_at = [t for t in to(SPENT, fake_vendor) if t > cleared][0]
    first, second = to(SPENT, fake_vendor)[:2]
    assert 2 * RECHECK * 0.8 - 0.05 <= served_at - second <= 2 * RECHECK * 1.2 + SLACK
    assert second - first >= RECHECK - 0.05
    n = len(fake_vendor.calls())
    for _ in range(4):
        assert ask(client)
    assert [r.credential for r in fake_vendor.calls()[n:]].count(SPENT) == 2
    assert "Traceback" not in proxy.log


def test_a_key_refused_with_401_is_not_rechecked(fake_vendor, rotator):
    proxy = rotator(pools(), fresh=True)
    client = client_of(proxy)
    fake_vendor.always(Fault.status(401), key=SPENT)
    started = time.monotonic()
    keep_asking([client], lambda: time.monotonic() - started > 3 * RECHECK + 0.5, 30)
    assert len(to(SPENT, fake_vendor)) == 1  # (out after its refusal: back only on a config reload)
    assert "Traceback" not in proxy.log


def test_two_workers_sharing_redis_make_one_recheck_at_a_time(fake_vendor, rotator, redis_server):
    redis_server.flush()
    state = {"redis": redis_server.url, "path": ""}
    first = rotator(pools(), fresh=True, state=state)
    second = rotator(pools(), fresh=True, state=state)
    clients = [client_of(first), client_of(second)]
    fake_vendor.out_of_credit(SPENT)
    keep_asking(clients, lambda: len(to(SPENT, fake_vendor)) >= 3, 1 + 2 + 2 * SLACK + 10)
    if OUTAGE in first.log + second.log:
        pytest.skip("a worker did not hear Redis (a loaded machine): each decided alone, by design")
    times = to(SPENT, fake_vendor)
    gaps = [b - a for a, b in zip(times, times[1:])][:2]
    # Both workers send requests all along, yet the key gets one re-check per interval, not one per worker.
    assert RECHECK - 0.05 <= gaps[0] <= RECHECK + SLACK
    assert 2 * RECHECK * 0.8 - 0.05 <= gaps[1] <= 2 * RECHECK * 1.2 + SLACK
    fake_vendor.top_up(SPENT)
    topped = time.time()
    keep_asking(clients, lambda: any(t > topped for t in to(SPENT, fake_vendor)), 4 * RECHECK * 1.2 + SLACK + 10)
    n = len(fake_vendor.calls())
    for i in range(6):
        assert ask(clients[i % 2])
    assert [r.credential for r in fake_vendor.calls()[n:]].count(SPENT) >= 2  # (back in both workers' turn)


def test_an_exhausted_plan_login_is_rechecked_by_its_own_next_turn(rotator, fake_vendor, tmp_path):
    """The real Claude Code on a Max login whose plan is used up: the turn goes on with the pool (a `from:` route),
    and once recheck_after has passed its next turn is the live request to the login, which serves it again."""
    logins.need("claude")
    route = {"routes": [{"from": "claude_login", "targets": ["claude_login", "anthropic"]}],
             "pools": {"recheck_after": RECHECK}}
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path, route)
    fake_vendor.script(ld.exhausted(ld.CLAUDE_LOGIN, resets_in=3600), key=logins.CLAUDE_TOKEN)
    turns = []
    for n in range(3):
        (tmp_path / f"turn{n}").mkdir()
        if n == 1:
            time.sleep(RECHECK + 0.2)  # stays: the time the re-check waits for (not an assertion)
        done = logins.run(logins.claude_login(tmp_path / f"turn{n}", proxy))
        assert done.returncode == 0, done.stderr[-3000:]
        turns.append(done)
    credentials = [c.credential[:12] for c in fake_vendor.calls()]
    # Exhausted (429, carried on by the pool); re-checked on its own next turn (served); then in use again.
    assert credentials == [logins.CLAUDE_TOKEN[:12], "sk-ant-pool-", logins.CLAUDE_TOKEN[:12], logins.CLAUDE_TOKEN[:12]]
    assert [c.status for c in fake_vendor.calls()] == [429, 200, 200, 200]
    assert "re-check of its exhaustion" in proxy.log and "login sk-…oken is served again" in proxy.log
