"""The in-memory store behind the field cache and Responses continuity: bounded in entries, bytes and age."""

from rewrite.state.kv import SWEEP_INTERVAL, MemoryStore
from tests.support.timing import FakeClock


def test_a_value_lives_for_its_ttl():
    clock = FakeClock()
    store = MemoryStore(10, 1000, clock)
    store.put("a", b"1", ttl=5)
    clock.now += 4.9
    assert store.get("a") == b"1"
    clock.now += 0.1
    assert store.get("a") is None
    assert len(store) == 0 and store.bytes == 0


def test_the_least_recently_used_entry_goes_first_past_max_entries():
    store = MemoryStore(2, 1000, FakeClock())
    store.put("a", b"1", 60)
    store.put("b", b"2", 60)
    assert store.get("a") == b"1"  # a is now the more recently used
    store.put("c", b"3", 60)
    assert store.get("b") is None
    assert store.get("a") == b"1" and store.get("c") == b"3"


def test_bytes_are_bounded_and_counted_with_keys():
    store = MemoryStore(100, 20, FakeClock())
    store.put("k1", b"x" * 8, 60)  # 10 bytes
    store.put("k2", b"y" * 8, 60)  # 20 bytes in all
    assert store.bytes == 20
    store.put("k3", b"z" * 8, 60)
    assert store.get("k1") is None and store.bytes == 20


def test_a_value_too_big_for_the_store_is_not_kept_and_evicts_nothing():
    store = MemoryStore(100, 20, FakeClock())
    store.put("small", b"1", 60)
    store.put("big", b"x" * 100, 60)
    assert store.get("big") is None
    assert store.get("small") == b"1"


def test_replacing_a_value_updates_its_size_and_ttl():
    clock = FakeClock()
    store = MemoryStore(10, 1000, clock)
    store.put("a", b"12345", 1)
    store.put("a", b"1", 10)
    assert store.bytes == 2
    clock.now += 5
    assert store.get("a") == b"1"


def test_expired_entries_are_swept_without_being_asked_for():
    clock = FakeClock()
    store = MemoryStore(10, 1000, clock)
    store.put("old", b"1", 1)
    clock.now += SWEEP_INTERVAL + 1
    store.put("new", b"2", 60)
    assert len(store) == 1 and store.bytes == len("new") + 1


def test_delete_and_a_zero_ttl():
    store = MemoryStore(10, 1000, FakeClock())
    store.put("a", b"1", 60)
    store.delete("a")
    store.delete("never")
    store.put("b", b"1", 0)
    assert store.get("a") is None and store.get("b") is None and store.bytes == 0
