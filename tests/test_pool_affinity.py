"""Conversation bindings in the pool itself (the choices both implementations make are tests/test_pool_parity.py's):
they carry over a restart in the state file, keys named by fingerprint; each key's live conversations are in
`describe()`, the status table and /metrics; a request without affinity is picked as it always was."""

from __future__ import annotations

import json

from rewrite.pool import KeyPool
from rewrite.pool.affinity import BOUND, MOVED, NEW, Affinity
from rewrite.pool.keypool import name_keys
from rewrite.pool.local import PURGE_LIVE_AT, Bindings
from rewrite.pool.persistence import export_state, import_state
from rewrite.pool.report import describe, table
from tests.support.timing import FakeClock

KEYS = ["sk-affinity-a-0001", "sk-affinity-b-0002", "sk-affinity-c-0003"]
SECRET = b"s" * 32


def conversation(name: str, ttl: float = 300.0) -> Affinity:
    return Affinity(lookup=(f"l:{name}", f"s:{name}"), bind=(f"s:{name}", f"l:{name}"), name=f"s:{name}", ttl=ttl,
                    depth=4, session=f"s:{name}")


def pool_of(keys: list[str], clock: FakeClock) -> KeyPool:
    pool = KeyPool(keys, clock=clock, wall=clock)
    name_keys(pool, SECRET)
    return pool


def served(pool: KeyPool, a: Affinity) -> str:
    pick = pool.pick(model="m", affinity=a)
    assert pick.key is not None
    pool.lease(pick.key, "m").release()
    pool.bind(pick.key, a, pick.bind_as)
    return pick.key


def test_bindings_carry_over_a_restart_by_fingerprint_on_the_wall_clock():
    clock = FakeClock(1_800_000_000.0)
    pool = pool_of(KEYS, clock)
    bound = {n: served(pool, conversation(n, ttl=100 if n == "brief" else 300)) for n in ("x", "y", "brief")}
    records = json.loads(json.dumps(export_state(pool)))
    assert not any(k in json.dumps(records) for k in KEYS)  # (keys by fingerprint only)
    clock.advance(150)  # `brief` expires meanwhile
    later = pool_of(list(reversed(KEYS)), clock)  # the config lists its keys in another order
    import_state(later, records)
    for n in ("x", "y"):
        pick = later.pick(model="m", affinity=conversation(n))
        assert (pick.key, pick.why) == (bound[n], BOUND)
    assert later.pick(model="m", affinity=conversation("brief")).why == NEW
    assert sorted(later.local.books.live(s) for s in later.states) == [0, 1, 1]


def test_each_keys_live_conversations_are_described_and_shown():
    clock = FakeClock(1_800_000_000.0)
    pool = pool_of(KEYS, clock)
    keys = [served(pool, conversation(f"c{i}")) for i in range(5)]
    described = describe(pool)
    assert [k["conversations"] for k in described["keys"]] == [keys.count(k) for k in KEYS]
    assert sorted(k["conversations"] for k in described["keys"]) == [1, 2, 2]
    assert "conversations" in table([described]).splitlines()[1]
    pool.unbind(keys[0], conversation("c0"))  # its key failed it
    assert describe(pool)["keys"][KEYS.index(keys[0])]["conversations"] == keys.count(keys[0]) - 1
    moved = pool.pick(model="m", avoid=keys[1], affinity=conversation("c1"))
    assert (moved.why, moved.bound) == (MOVED, keys[1]) and moved.key != keys[1]
    pool.bind(moved.key, conversation("c1"), moved.bind_as)  # counted where it is now, not where it was
    assert sum(k["conversations"] for k in describe(pool)["keys"]) == 4
    clock.advance(301)
    assert [k["conversations"] for k in describe(pool)["keys"]] == [0, 0, 0]


def test_a_keys_expired_conversations_are_dropped_in_batches_not_looked_for_at_every_bind():
    """A bind costs the same however many conversations its key holds (it used to look through them all, each
    request): the expired ones are dropped once the key's dict outgrows its bound, which stays twice the live ones."""
    bindings, wall = Bindings(2), 1_800_000_000.0
    for n in range(PURGE_LIVE_AT - 1):
        bindings.bind(0, conversation(f"old{n}", ttl=10), f"old{n}", (), wall)
    bindings.bind(0, conversation("new"), "new", (), wall + 60)  # (the old ones expired: left where they are)
    assert len(bindings.conversations[0]) == PURGE_LIVE_AT and bindings.live(0, wall + 60) == 1
    bindings.bind(0, conversation("next"), "next", (), wall + 60)  # (past the bound: the expired ones dropped)
    assert bindings.conversations[0].keys() == {"new", "next"} and bindings.live(0, wall + 60) == 2
    for n in range(3 * PURGE_LIVE_AT):
        bindings.bind(1, conversation(f"live{n}", ttl=3600), f"live{n}", (), wall)
        assert len(bindings.conversations[1]) == n + 1  # (none expired: all kept, each counted)
    assert bindings.live(1, wall) == 3 * PURGE_LIVE_AT


def test_a_request_without_affinity_is_picked_as_it_always_was():
    clock = FakeClock(1_800_000_000.0)
    plain, bound = pool_of(KEYS, clock), pool_of(KEYS, clock)
    for i in range(4):  # conversations bound everywhere: a one-shot call does not see them
        served(bound, conversation(f"c{i}"))
    plain.pick(model="m"), plain.pick(model="m"), plain.pick(model="m"), plain.pick(model="m")
    for step in range(9):
        if step == 4:
            plain.rests.bench(KEYS[1], 10), bound.rests.bench(KEYS[1], 10)
        mine, theirs = plain.pick(model="m", avoid=KEYS[step % 3]), bound.pick(model="m", avoid=KEYS[step % 3],
                                                                               affinity=None)
        assert (mine.key, mine.wait, mine.why, mine.bound, mine.bind_as) == (theirs.key, theirs.wait, "", None, "")
