import math

from rewrite.pool import STALL_REST, STALL_REST_MAX, KeyPool, Resting, mask
from rewrite.providers.credentials import CREDENTIAL_STYLES


def picked(pool: KeyPool, avoid: str | None = None) -> tuple[str | None, float]:
    """The next key and how long until it is back."""
    pick = pool.pick(avoid)
    return pick.key, pick.wait


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_round_robin():
    pool = KeyPool(["a", "b", "c"])
    assert [pool.pick().key for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_benched_key_is_skipped_until_due():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.rests.bench("a", 30)
    assert [pool.pick().key for _ in range(3)] == ["b", "b", "b"]
    clock.now += 31
    assert {pool.pick().key for _ in range(2)} == {"a", "b"}


def test_all_benched_gives_the_soonest_with_its_wait():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.rests.bench("a", 10)
    pool.rests.bench("b", 5)
    key, wait = picked(pool)
    assert key == "b" and wait == 5


def test_avoid_prefers_another_key():
    pool = KeyPool(["a", "b"])
    assert pool.pick(avoid="a").key == "b"
    assert KeyPool(["only"]).pick(avoid="only").key == "only"


def test_mask_hides_the_secret_part():
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz"
    m = mask(key)
    assert m.startswith("sk-p") and m.endswith("wxyz") and "ijklmnop" not in m
    assert "short" not in mask("short")


def test_styles_replace_every_client_credential():
    h, q = CREDENTIAL_STYLES["openai"].apply([("Authorization", "Bearer client"), ("x", "1")], "", "sk-pool")
    assert ("authorization", "Bearer sk-pool") in h and ("Authorization", "Bearer client") not in h
    h, q = CREDENTIAL_STYLES["anthropic"].apply([("X-Api-Key", "c"), ("authorization", "Bearer c")], "", "k")
    assert h == [("x-api-key", "k")]
    h, q = CREDENTIAL_STYLES["gemini"].apply([("x-goog-api-key", "c")], "alt=sse&key=client", "g")
    assert h == [("x-goog-api-key", "g")] and q == "alt=sse"


def test_a_stalled_key_rests_while_another_is_ready_longer_each_time_in_a_row():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    assert pool.rests.stalled("a") == STALL_REST
    assert [pool.pick().key for _ in range(3)] == ["b", "b", "b"]
    clock.now += STALL_REST + 0.1
    assert "a" in {pool.pick().key for _ in range(2)}
    rests = [pool.rests.stalled("a") for _ in range(10)]
    assert rests[:3] == [2 * STALL_REST, 4 * STALL_REST, 8 * STALL_REST]
    assert max(rests) == rests[-1] == STALL_REST_MAX
    clock.now += STALL_REST_MAX - 1
    assert [pool.pick().key for _ in range(2)] == ["b", "b"]


def test_a_success_forgets_the_stalls():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    for _ in range(4):
        pool.rests.stalled("a")
    pool.rests.succeeded("a")
    assert {pool.pick().key for _ in range(2)} == {"a", "b"}  # back at once
    assert pool.rests.stalled("a") == STALL_REST  # and the next stall starts the backoff again


def test_a_resting_stalled_key_is_used_rather_than_waiting():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.rests.stalled("a")
    pool.rests.bench("b", 30)
    assert picked(pool) == ("a", 0.0)
    assert picked(KeyPool(["only"], clock=clock)) == ("only", 0.0)
    solo = KeyPool(["only"], clock=clock)
    solo.rests.stalled("only")
    assert picked(solo, avoid="only") == ("only", 0.0)


def test_the_key_that_just_failed_comes_before_one_resting_after_a_stall():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.rests.stalled("a")
    assert picked(pool, avoid="b") == ("b", 0.0)


def test_resting_says_how_long_and_whether_every_key_was_rejected():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.rests.bench("a", 600, rejected=True)
    pool.rests.bench("b", 90)
    assert pool.resting() == Resting(90, rejected=False)
    pool.rests.bench("b", 600, rejected=True)
    assert pool.resting() == Resting(math.inf, rejected=True)
    clock.now += 100_000
    assert pool.resting().rejected  # out until the config is reloaded, however long it waits
    assert KeyPool(["a"], clock=clock).resting().seconds == 0
