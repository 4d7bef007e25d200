"""MEASUREMENTS, not statements of how Rotator should behave: what a pool of keys from three organizations costs a
multi-turn conversation today (issue 30), through a real `mitmdump -s addons/rotator.py` and the official SDKs.

The fake vendor caches prompts per organization as the vendors do (tests/support/vendor_accounts.py). Round-robin
sends each turn of one conversation to the next key, so each turn lands in another organization, whose cache has
never seen the conversation: every turn writes its whole prompt again (on Claude a write costs 1.25x the input
price, a read 0.1x). The same conversation on one organization reads all but its newest message from the cache.

State only the organization that made it accepts breaks the conversation outright: a Responses answer stored by one
organization is not found by the next key's (`previous_response_id`), nor is the encrypted reasoning Codex sends
back verified (`store: false`): every turn after the first is refused with the vendor's 400.

`TODAY` and `REFUSED_TODAY` hold what is measured now. Conversation affinity (issue 30) is to flip them: every turn
after the first on the key that served the first, answered, reading the turn before from the cache; then these
tests assert that instead.
"""

from __future__ import annotations

import openai
import pytest

from tests.support.clients import PROTOCOLS, make_client
from tests.support.harness import POOL_KEYS
from tests.support.multi_turn import Conversation

pytestmark = pytest.mark.e2e

FAMILY = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
KEYS = {"openai": POOL_KEYS["openai"], "anthropic": [f"sk-ant-pool-{i}" for i in (1, 2, 3)],
        "gemini": [f"g-pool-{i}" for i in (1, 2, 3)]}
ORGANIZATIONS = {key: f"{family}-org-{i}" for family, keys in KEYS.items() for i, key in enumerate(keys, 1)}
TURNS = 3
# Today: each turn served by the next key, in the next organization, and its whole prompt written again.
TODAY = {"organizations per conversation": TURNS, "cache read share": 0.0}
# Today: the first turn answered, each later one refused by the next key's organization.
REFUSED_TODAY = {"chained": ["answered", "previous_response_not_found", "previous_response_not_found"],
                 "stateless": ["answered", "invalid_encrypted_content", "invalid_encrypted_content"]}


def cache_share(convo: Conversation) -> float:
    """The share of the conversation's prompt tokens read from the cache, over its turns."""
    return sum(t.cache_read for t in convo.turns) / sum(t.input for t in convo.turns)


def test_measure_a_conversation_through_three_organizations_round_robin_writes_every_turn_again(
        fake_vendor, rotator, record_property):
    rotator(fresh=True, providers={"anthropic": {"keys": KEYS["anthropic"]}, "gemini": {"keys": KEYS["gemini"]}})
    fake_vendor.organizations(ORGANIZATIONS)
    measured = {}
    for protocol in PROTOCOLS:
        start = len(fake_vendor.calls())
        convo = Conversation(protocol, make_client(protocol))
        for turn in range(TURNS):
            convo.ask(f"Question {turn}: what does the next module do?")
        calls = fake_vendor.calls()[start:]
        assert [c.protocol for c in calls] == [protocol] * TURNS
        measured[protocol] = {"organizations per conversation": len({c.organization for c in calls}),
                              "cache read share": cache_share(convo)}
        record_property(f"{protocol} keys", [c.credential for c in calls])
        record_property(f"{protocol} cache read share", round(cache_share(convo), 3))
        if protocol == "anthropic":  # what Claude bills: input, writes at 1.25x, reads at 0.1x
            billed = sum(t.input - t.cache_read - t.cache_write + 1.25 * t.cache_write + 0.1 * t.cache_read
                         for t in convo.turns)
            record_property("anthropic billed input-token equivalents", round(billed))

    # What the same conversation reads from the cache when one organization serves it (straight to the fake, its
    # caches emptied first).
    fake_vendor.reset()
    fake_vendor.organizations(ORGANIZATIONS)
    one = Conversation("anthropic", make_client("anthropic", base_url=fake_vendor.url, api_key=KEYS["anthropic"][0]))
    for turn in range(TURNS):
        one.ask(f"Question {turn}: what does the next module do?")
    record_property("anthropic cache read share on one organization", round(cache_share(one), 3))
    assert cache_share(one) > 0.5

    assert measured == {protocol: TODAY for protocol in PROTOCOLS}


@pytest.mark.parametrize("mode", ["chained", "stateless"])
def test_measure_responses_state_through_three_organizations_round_robin_is_refused_after_the_first_turn(
        fake_vendor, rotator, record_property, mode):
    rotator(fresh=True)
    fake_vendor.organizations(ORGANIZATIONS)
    convo = Conversation("responses", make_client("responses").with_options(max_retries=0), **{mode: True})
    outcomes = []
    for turn in range(TURNS):
        try:
            convo.ask(f"Question {turn}: what does the next module do?")
            outcomes.append("answered")
        except openai.BadRequestError as e:
            outcomes.append(e.code)
    record_property(f"responses {mode} turns", outcomes)
    assert [c.organization for c in fake_vendor.calls()] == [ORGANIZATIONS[k] for k in KEYS["openai"]]
    assert outcomes == REFUSED_TODAY[mode]
