"""Each pooled key's prompt-cache share and what its cold prefixes cost, through a real `mitmdump -s
addons/rotator.py` and the official SDKs, as the status page and `/metrics` show them (issue 30 item 8).

The fake vendor caches prompts per organization (tests/support/vendor_accounts.py): a 3-key pool of three
organizations, one conversation of six turns, each turn sending the whole history again. What each key's
organization read and wrote is what the vendor said on each turn (the SDK's usage, the fake's record of the key);
the page and the metrics must say the same per key, whichever key served which turn.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rewrite.pool.key_state import mask
from tests.support.clients import make_client
from tests.support.multi_turn import Conversation
from tests.support.timing import wait_until

pytestmark = pytest.mark.e2e

KEYS = {"anthropic": [f"sk-ant-pool-{i}" for i in (1, 2, 3)], "chat": ["sk-pool-1", "sk-pool-2", "sk-pool-3"]}
PROVIDER = {"anthropic": "anthropic", "chat": "openai"}
TURNS = 6
# What a cache-write token costs above a cache-read one, in USD: claude-haiku-4-5 writes at $1.25 and reads at $0.10
# per million; gpt-4o-mini bills a prompt token its cache did not hold at the input price, $0.15, and one it read at
# $0.075 (the fake reports the tokens it wrote, `cache_write_tokens`, as some OpenAI-compatible vendors do).
COLD_PER_TOKEN = {"anthropic": 1.15e-6, "chat": 0.075e-6}


def per_key(convo: Conversation, calls: list) -> dict[str, dict]:
    """{masked key: its input, cache-read and cache-write tokens}: each turn's input as the SDK got it, what the
    vendor read and wrote in the organization of the key that served it."""
    out: dict[str, dict] = {}
    for turn, call in zip(convo.turns, calls, strict=True):
        counts = out.setdefault(mask(call.credential), {"input_tokens": 0, "cache_read_tokens": 0,
                                                        "cache_write_tokens": 0})
        counts["input_tokens"] += turn.input
        read, written = call.cache
        assert turn.cache_read == read
        counts["cache_read_tokens"] += read
        counts["cache_write_tokens"] += written
    return out


def shown_keys(http: httpx.Client, provider: str) -> dict[str, dict]:
    page = http.get("http://rotator.status/", params={"format": "json"}).json()
    [pool] = [p["pool"] for p in page["providers"] if p["name"] == provider]
    return {k["key"]: k for k in pool["keys"]}


def metrics(http: httpx.Client) -> dict[tuple[str, tuple], float]:
    text = http.get("http://rotator.status/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(scraped: dict, name: str, **labels) -> float | None:
    return scraped.get((name, tuple(sorted(labels.items()))))


@pytest.mark.parametrize("protocol", ["anthropic", "chat"])
def test_the_status_page_and_metrics_show_each_keys_prompt_cache_share_and_cold_prefix_cost(
        fake_vendor, rotator, protocol):
    provider = PROVIDER[protocol]
    proxy = rotator(fresh=True, providers={provider: {"keys": KEYS[protocol]}})
    fake_vendor.organizations({key: f"org-{i}" for i, key in enumerate(KEYS[protocol], 1)})
    convo = Conversation(protocol, make_client(protocol))
    for turn in range(TURNS):
        convo.ask(f"Question {turn}: what does the next module do?")
    calls = [c for c in fake_vendor.calls() if c.protocol == protocol]
    expected = per_key(convo, calls)
    assert sum(e["cache_read_tokens"] for e in expected.values()) > 0  # (some turn met its organization's cache)

    with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as http:
        def counted() -> dict[str, dict]:  # (a turn's usage is counted as its flow ends: just after the SDK's answer)
            keys = shown_keys(http, provider)
            return keys if all(keys[m]["total"][n] == v for m, c in expected.items() for n, v in c.items()) else {}

        keys = wait_until(counted, what=f"the status page to count {expected}")
        scraped = metrics(http)
        text = http.get("http://rotator.status/").text

    for masked, counts in expected.items():
        share = round(counts["cache_read_tokens"] / counts["input_tokens"], 4)
        assert keys[masked]["cache_read_share"] == {"last_hour": share, "total": share}
        cold = counts["cache_write_tokens"] * COLD_PER_TOKEN[protocol]
        assert keys[masked]["total"]["cold_cost"] == pytest.approx(cold, rel=1e-6, abs=1e-9)
        at = {"provider": provider, "key": masked}
        assert sample(scraped, "rotator_key_cache_read_ratio", **at, period="all") == share
        assert sample(scraped, "rotator_key_prompt_tokens_total", **at, kind="cache_read_tokens") == counts[
            "cache_read_tokens"]
        assert sample(scraped, "rotator_key_cache_cold_cost_usd_total", **at) == pytest.approx(cold, rel=1e-6,
                                                                                                abs=1e-9)
        assert f"{share:.0%} / {share:.0%}" in text
    assert sum(k["total"]["cold_cost"] for k in keys.values()) > 0
    assert "cache read 1h / all" in text and not any(key in text for key in KEYS[protocol])
