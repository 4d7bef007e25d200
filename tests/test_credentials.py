from rewrite.credentials import CREDENTIAL_STYLES, KeyPool, mask


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_round_robin():
    pool = KeyPool(["a", "b", "c"])
    assert [pool.acquire()[0] for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_benched_key_is_skipped_until_due():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.bench("a", 30)
    assert [pool.acquire()[0] for _ in range(3)] == ["b", "b", "b"]
    clock.now += 31
    assert {pool.acquire()[0] for _ in range(2)} == {"a", "b"}


def test_all_benched_gives_the_soonest_with_its_wait():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock=clock)
    pool.bench("a", 10)
    pool.bench("b", 5)
    key, wait = pool.acquire()
    assert key == "b" and wait == 5


def test_avoid_prefers_another_key():
    pool = KeyPool(["a", "b"])
    assert pool.acquire(avoid="a")[0] == "b"
    assert KeyPool(["only"]).acquire(avoid="only")[0] == "only"


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
