"""The one backoff (rewrite/policy/backoff.py) and its three callers: a retry on the same key, a key's cooldown
that no answer named, and a key's rest after a stall."""

from __future__ import annotations

import pytest

from rewrite.policy import retry
from rewrite.policy.backoff import backoff
from rewrite.pool.keypool import BACKOFF_BASE, BACKOFF_MAX, STALL_REST, STALL_REST_MAX, KeyPool
from tests.support.vendor_errors import failure


def test_it_grows_by_its_factor_from_its_base_up_to_its_cap():
    assert [backoff(n, base=0.5, cap=3.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [backoff(n, base=1.0, factor=3.0, cap=100.0) for n in range(4)] == [1.0, 3.0, 9.0, 27.0]


def test_a_long_run_of_failures_stays_at_the_cap():
    assert backoff(5000, base=1.0, cap=120.0) == 120.0
    assert backoff(5000, base=1.0, factor=2.5, cap=7.0) == 7.0


def test_jitter_draws_that_share_of_the_wait_at_random():
    assert backoff(2, base=1.0, cap=60.0, jitter=0.5, rng=lambda: 0.0) == 2.0
    assert backoff(2, base=1.0, cap=60.0, jitter=0.5, rng=lambda: 0.5) == 3.0
    assert backoff(2, base=1.0, cap=60.0, jitter=0.5, rng=lambda: 0.999) == pytest.approx(4.0, abs=0.01)
    assert backoff(2, base=1.0, cap=60.0, jitter=1.0, rng=lambda: 0.25) == 1.0
    waits = [backoff(10, base=1.0, cap=8.0, jitter=0.5) for _ in range(200)]
    assert all(4.0 <= w <= 8.0 for w in waits) and len(set(waits)) > 1


def test_without_jitter_it_draws_nothing():
    def never() -> float:
        raise AssertionError("drew a number")

    assert backoff(1, base=5.0, cap=300.0, rng=never) == 10.0


def test_a_retry_on_the_same_key_after_an_error_that_named_no_delay_backs_off():
    failed = failure(500, [], b"", pooled=False)
    waits = [retry.wait_before(n, 0.0, failed, same_key=True, pooled=False, first_token_timeout=30) for n in range(1, 7)]
    assert waits == [backoff(n, base=retry.RETRY_BACKOFF, cap=retry.RETRY_BACKOFF_MAX) for n in range(6)]
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    named = failure(503, [("retry-after", "3")], b"", pooled=False)
    assert retry.wait_before(1, 0.0, named, same_key=True, pooled=False, first_token_timeout=30) == 3.0


def test_a_keys_cooldown_and_its_stall_rest_back_off():
    pool = KeyPool(["a"], rng=lambda: 0.0)
    assert [pool.rests.backoff(n) for n in (1, 2, 3, 20)] == [BACKOFF_BASE / 2, BACKOFF_BASE, 2 * BACKOFF_BASE,
                                                        BACKOFF_MAX / 2]
    assert [pool.rests.stalled("a") for _ in range(8)] == [min(STALL_REST * 2**n, STALL_REST_MAX) for n in range(8)]
