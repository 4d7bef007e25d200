"""A key's masked form (logs, flows, mitmweb, the status page, /metrics): at most a quarter of the key, never more
than 8 characters, and each key of a pool told apart from the others, the same form wherever it is shown."""

from __future__ import annotations

import string

from rewrite.pool import KeyPool, mask
from rewrite.pool.keypool import masked_in
from rewrite.pool.report import describe
from tests.support.masks import masked

ALPHABET = string.ascii_letters + string.digits


def revealed(key: str, shown: str) -> int:
    """How many of the key's characters its masked form shows (its start before `…`, its end after)."""
    head, _, tail = shown.partition("…")
    assert key.startswith(head) and key.endswith(tail), (key, shown)
    return len(head) + len(tail)


def test_a_mask_shows_at_most_a_quarter_of_a_key_and_never_more_than_eight_characters():
    for length in range(1, 120):
        key = "".join(ALPHABET[(i * 7 + length) % len(ALPHABET)] for i in range(length))
        assert revealed(key, mask(key)) <= min(length // 4, 8), (length, mask(key))
        assert mask(key) == masked(key)  # (the rule docs/security.md states)


def test_a_self_hosted_servers_short_key_shows_its_end_alone():
    assert mask("vllm-key-0123456") == "…3456"  # (16 characters: 4 shown; was `vllm…3456`, half of it)
    assert mask("sk-local-key1") == "…ey1"
    assert mask("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789") == "sk-p…6789"
    assert mask("AKIDPOOLAFAKE0000001@us-east-1") == "…0001@us-east-1"  # (a cloud key in its region)


def test_keys_of_a_pool_that_mask_alike_are_told_apart_alike_on_the_status_page_and_in_flows():
    keys = ["alpha-key-0001x", "bravo-key-0001x", "charlie-key-009"]
    pool = KeyPool(keys)

    rows = [k["key"] for k in describe(pool)["keys"]]

    assert rows == ["…01x #1", "…01x #2", "…009"]
    assert [masked_in(pool, k) for k in keys] == rows  # (what a flow, a note and a log line say of each key)
    assert masked_in(pool, "other-pool-001x") == "…01x"  # (another pool's key: masked alone)
