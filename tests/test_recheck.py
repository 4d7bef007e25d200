"""Re-checks of long rests (rewrite/pool/recheck.py), on the pool's own decisions: a key resting longer than
`recheck_after` gets one live request once that long has passed; its answer ends the rest or renews it, and the wait
before the next re-check doubles (jittered, never past the rest's end); a key out after 401/403 is never re-checked."""

from __future__ import annotations

import json

import pytest

from protocols.windows import iso
from rewrite.config import ConfigError, parse
from rewrite.pool import KeyPool
from rewrite.pool.key_state import WHOLE_KEY
from rewrite.pool.logins import LoginBook
from rewrite.pool.persistence import export_state, import_state
from rewrite.pool.report import describe
from tests.support.timing import FakeClock
from tests.support.vendor_errors import failure

NOW = 1_700_000_000.0
QUOTA = json.dumps({"error": {"type": "insufficient_quota", "code": "insufficient_quota",
                              "message": "You exceeded your current quota"}}).encode()


def pool_of(keys=("a", "b"), recheck_after=60.0, rng=lambda: 0.5) -> tuple[KeyPool, FakeClock]:
    clock = FakeClock()
    pool = KeyPool(list(keys), clock=clock, wall=lambda: NOW + clock(), rng=rng, recheck_after=recheck_after)
    return pool, clock


def out_of_quota(pool: KeyPool, key: str = "a", model: str = "gpt-4o", headers=()) -> None:
    pool.rests.failed(key, failure(429, headers, QUOTA), model)


def picks(pool: KeyPool, n: int, model: str = "gpt-4o") -> list[str | None]:
    return [pool.pick(model=model).key for _ in range(n)]


def test_a_key_out_of_quota_is_avoided_until_its_recheck_is_due_then_gets_exactly_one_request():
    pool, clock = pool_of()
    out_of_quota(pool)
    since = iso(NOW + clock())
    assert picks(pool, 4) == ["b"] * 4
    clock.advance(59)
    assert picks(pool, 2) == ["b", "b"]
    clock.advance(1)
    first = pool.pick(model="gpt-4o")
    assert first.key == "a" and first.wait == 0
    assert first.recheck == f"re-check of a rest since {since} (insufficient_quota)"
    assert picks(pool, 4) == ["b"] * 4  # (one at a time: every other request keeps avoiding it)


def test_a_served_recheck_ends_the_rest_at_once():
    pool, clock = pool_of()
    out_of_quota(pool)
    clock.advance(60)
    assert pool.pick(model="gpt-4o").key == "a"
    pool.rests.succeeded("a", "gpt-4o")
    assert pool.states[0].state(clock()) == "ready"
    assert sorted(picks(pool, 4)) == ["a", "a", "b", "b"]


def test_a_refused_recheck_renews_the_rest_and_doubles_the_wait_before_the_next():
    pool, clock = pool_of()
    out_of_quota(pool)
    seen, start = [], clock()
    for _ in range(7380):  # a pick a second: the re-checks come at 1, 3, 7, 15, 31, 63 minutes
        pick = pool.pick(model="gpt-4o")
        if pick.key == "a":
            seen.append(clock() - start)
            out_of_quota(pool)  # (still refused: an hour from now again)
        clock.advance(1)
    assert seen == [60, 180, 420, 900, 1860, 3780]
    # The next would be at 127 minutes, past the hour the last refusal rested it for: its end comes first.
    assert pool.states[0].state(clock()) == "ready"


def test_the_doubled_wait_is_jittered_by_at_most_a_fifth():
    for r, expected in ((0.0, 60 + 96), (1.0, 60 + 144)):
        pool, clock = pool_of(rng=lambda r=r: r)
        out_of_quota(pool)
        clock.advance(60)
        assert pool.pick(model="gpt-4o").key == "a"
        out_of_quota(pool)
        clock.advance(expected - 60 - 1)
        assert pool.pick(model="gpt-4o").key == "b"
        clock.advance(1)
        assert pool.pick(model="gpt-4o").key == "a"


def test_no_recheck_past_the_vendors_own_end():
    pool, clock = pool_of()
    out_of_quota(pool, headers=[("retry-after", "100")])  # (a quota whose end the vendor names: 100 s)
    clock.advance(60)
    assert pool.pick(model="gpt-4o").key == "a"
    out_of_quota(pool, headers=[("retry-after", "100")])
    clock.advance(99)  # (the next re-check would be 120 s after the last: the rest ends first)
    assert pool.states[0].state(clock()) == "resting"
    assert describe(pool)["keys"][0]["resting"][0].get("recheck") is None
    clock.advance(1)
    assert pool.states[0].state(clock()) == "ready"


def test_a_short_rest_and_recheck_after_0_are_never_rechecked():
    pool, clock = pool_of()
    pool.rests.failed("a", failure(429, [("retry-after", "50")], b'{"error": {"message": "slow down"}}'), "gpt-4o")
    clock.advance(49)
    assert picks(pool, 3) == ["b"] * 3
    off, clock = pool_of(recheck_after=0)
    out_of_quota(off)
    clock.advance(3599)
    assert picks(off, 3) == ["b"] * 3


def test_a_key_out_after_401_is_not_rechecked():
    pool, clock = pool_of()
    pool.rests.failed("a", failure(401, (), b'{"error": {"message": "invalid key"}}'), "gpt-4o")
    out_of_quota(pool)
    clock.advance(3000)
    assert picks(pool, 5) == ["b"] * 5


def test_a_pool_whose_every_key_rests_takes_the_due_one_at_once():
    pool, clock = pool_of(keys=("a",))
    out_of_quota(pool)
    assert pool.pick(model="gpt-4o").wait > 3000
    assert pool.rests_past(30, "gpt-4o")
    clock.advance(40)
    assert not pool.rests_past(30, "gpt-4o")  # (its re-check is within the wait: the target is not skipped)
    clock.advance(20)
    pick = pool.pick(model="gpt-4o")
    assert (pick.key, pick.wait) == ("a", 0) and pick.recheck


def test_a_model_rest_is_rechecked_for_its_quota_group_and_a_success_ends_it_for_every_model_of_it():
    pool, clock = pool_of()
    body = json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                         "quotaDimensions": {"model": "gemini-2.5-pro"}}]}]}}).encode()
    pool.rests.failed("a", failure(429, (), body, protocol="gemini"), "gemini-2.5-pro")
    rests = pool.states[0].rests
    assert list(rests) and all(r.check_at < r.until for r in rests.values())
    clock.advance(60)
    assert pool.pick(model="gemini-2.5-flash").key == "a"  # (another model: the key serves it anyway)
    assert pool.pick(model="gemini-2.5-pro").key == "b"  # (the next request the pool would have given it: its turn)
    pick = pool.pick(model="gemini-2.5-pro")
    assert pick.key == "a"
    assert pick.recheck
    pool.rests.succeeded("a", "gemini-2.5-pro")
    assert pool.states[0].state(clock()) == "ready"


def test_a_recheck_that_stalls_leaves_the_rest_and_the_next_recheck_where_the_claim_put_it():
    pool, clock = pool_of()
    out_of_quota(pool)
    clock.advance(60)
    assert pool.pick(model="gpt-4o").key == "a"
    pool.rests.failed("a", failure(500, (), b"{}"), "gpt-4o")
    assert pool.states[0].state(clock()) == "resting" and not pool.states[0].checking
    clock.advance(119)
    assert pool.pick(model="gpt-4o").key == "b"
    clock.advance(1)
    assert pool.pick(model="gpt-4o").key == "a"


def test_the_report_and_the_state_file_say_when_a_resting_key_is_next_rechecked():
    pool, clock = pool_of()
    out_of_quota(pool)
    shown = describe(pool)["keys"][0]
    assert shown["resting"][0]["recheck_in"] == 60 and "re-checked at" in shown["text"]
    again, _ = pool_of()
    import_state(again, json.loads(json.dumps(export_state(pool))))
    assert describe(again)["keys"][0]["resting"][0]["recheck_in"] == 60


def test_recheck_after_per_provider_over_the_top_level():
    config = parse(json.dumps({"pools": {"recheck_after": 120},
                               "providers": {"openai": {"keys": ["sk-a1"], "pools": {"recheck_after": 0}},
                                             "anthropic": {"keys": ["sk-b1"]}}}))
    assert (config.recheck_after("openai"), config.recheck_after("anthropic"), config.recheck_after("gemini")) == (
        0, 120, 120)
    assert parse("{}").recheck_after("openai") == 600


def test_a_plan_logins_exhaustion_is_rechecked_by_its_own_next_request():
    wall = [NOW]
    book = LoginBook("claude", wall=lambda: wall[0], rng=lambda: 0.5)
    book.recheck_after = 60
    login = book.login("sk-ant-oat-login-token-0001")
    book.exhaust(login, NOW + 5 * 3600, WHOLE_KEY, "the plan's five_hour window is used up")
    assert book.held_back(login, "claude-sonnet-4") is not None
    wall[0] += 60
    assert book.held_back(login, "claude-sonnet-4") is None  # (the re-check: this request goes to the login)
    assert book.held_back(login, "claude-sonnet-4") is not None  # (every other one keeps leaving it alone)
    book.exhaust(login, wall[0] + 5 * 3600 - 60, WHOLE_KEY, "the plan's five_hour window is used up")  # (refused)
    assert "re-checked at " + iso(wall[0] + 120) in book.describe()[0]["text"]
    wall[0] += 119
    assert book.held_back(login, "claude-sonnet-4") is not None
    wall[0] += 1
    assert book.held_back(login, "claude-sonnet-4") is None
    book.served(login, "claude-sonnet-4")
    assert book.held_back(login, "claude-sonnet-4") is None and not book.describe()[0]["exhausted"]


def test_a_recheck_after_that_is_not_a_number_of_seconds_stops_startup_with_one_line_naming_the_field():
    for text, field in (("pools: {recheck_after: -1}", "pools.recheck_after"),
                        ("providers: {openai: {pools: {recheck_after: soon}}}", "providers.openai.pools.recheck_after")):
        with pytest.raises(ConfigError) as e:
            parse(text)
        assert str(e.value).startswith(f"{field}: ") and "\n" not in str(e.value)
