"""What survives a restart: the state stores (SQLite, memory), a pool's export and import, the engine's keeping
(rewrite/state/kept.py) that opens the store, hands new pools their state, flushes in batches and closes, and the
Pools addon that has it do so from mitmproxy's hooks and answers `rotator.pools`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addons.pools import Pools
from rewrite.config import parse
from rewrite.engine import Engine
from rewrite.pool import KeyPool, fingerprint, name_keys
from rewrite.pool.keypool import key_of, stored_id, stored_ids
from rewrite.pool.persistence import export_state, import_state
from rewrite.pool.report import describe
from rewrite.state.kept import scope
from rewrite.state.records import MemoryRecords, SqliteStore, StateError, default_path, open_store, resolve
from tests.support.timing import FakeClock, eventually
from tests.support.vendor_errors import failure

SECRET = "sk-proj-secret-0123456789-wxyz"
OTHER = "sk-proj-other-9876543210-abcd"


# ------------------------------------------------------------------------------------------------------------------
# Stores


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_store_keeps_records_by_scope_and_name(kind, tmp_path):
    store = MemoryRecords() if kind == "memory" else SqliteStore(tmp_path / "s.db")
    assert store.load("pool:openai") == {}
    store.save({"pool:openai": {"a": {"x": 1}, "b": [1, 2]}, "pool:gemini": {"a": "g"}})
    store.save({"pool:openai": {"a": {"x": 2}}})
    assert store.load("pool:openai") == {"a": {"x": 2}, "b": [1, 2]}
    assert store.load("pool:gemini") == {"a": "g"}
    store.close()


def test_sqlite_survives_a_reopen_and_skips_a_record_that_does_not_parse(tmp_path):
    path = tmp_path / "deep" / "dir" / "state.db"
    store = SqliteStore(path)
    store.save({"pool:openai": {"a": 1, "b": 2}})
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE records SET value = 'not json' WHERE name = 'b'")
    again = SqliteStore(path)
    assert again.load("pool:openai") == {"a": 1}
    again.close()


def test_a_store_that_cannot_be_opened_says_so_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError) as e:
        SqliteStore(blocker / "state.db")  # its directory would be a file
    assert str(e.value).startswith(f"cannot open {blocker / 'state.db'}: ") and "\n" not in str(e.value)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="cannot open"):
        SqliteStore(garbage)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_file_and_the_directory_made_for_it_are_the_users_alone(tmp_path):
    path = tmp_path / "made" / "state.db"
    store = SqliteStore(path)
    store.save({"pool:openai": {"a": 1}})
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    assert all(mode(f) == 0o600 for f in path.parent.iterdir())  # (-wal, -shm)
    store.close()
    tmp_path.chmod(0o755)
    older = tmp_path / "older.db"
    older.write_bytes(b"")
    older.chmod(0o644)
    SqliteStore(older).close()
    assert mode(older) == 0o600 and mode(tmp_path) != 0o700  # a directory it did not make is left as it is


def test_a_directory_another_rotator_made_at_the_same_moment_is_no_error(tmp_path, monkeypatch):
    # Several Rotators started at once on a fresh machine (scripts/bench starts three) all find no state directory;
    # one makes it between another's look and its mkdir.
    path = tmp_path / "made" / "state.db"
    path.parent.mkdir()
    monkeypatch.setattr(Path, "is_dir", lambda self: False)
    SqliteStore(path).close()
    monkeypatch.undo()
    assert mode(path.parent) == 0o700 and path.exists()


def test_keys_are_named_by_a_fingerprint_keyed_with_the_files_own_secret(tmp_path):
    stores = [SqliteStore(tmp_path / f"{n}.db") for n in range(2)]
    names = [fingerprint(SECRET, store.secret) for store in stores]
    assert names[0] != names[1] != fingerprint(SECRET)  # another install, or one in memory, names it otherwise
    stores[0].close()
    again = SqliteStore(tmp_path / "0.db")
    assert fingerprint(SECRET, again.secret) == names[0]  # the same file names it the same after a restart
    again.close()
    plain = hashlib.sha256(b"rotator-key:" + SECRET.encode()).hexdigest()[:24]  # what anyone could compute
    assert plain not in names and plain != fingerprint(SECRET)


def test_a_state_written_with_plain_hashes_is_dropped_once(tmp_path):
    path = tmp_path / "state.db"
    plain = hashlib.sha256(b"rotator-key:" + SECRET.encode()).hexdigest()[:24]
    with sqlite3.connect(path) as db:  # as Rotator wrote it before keyed fingerprints
        db.execute("CREATE TABLE records (scope TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, "
                   "PRIMARY KEY (scope, name))")
        db.execute("INSERT INTO records VALUES ('pool:openai', ?, '{}')", (f"key:{plain}",))
    db.close()
    store = SqliteStore(path)
    assert store.load("pool:openai") == {}
    store.save({"pool:openai": {"strategy": 1}})
    store.close()
    again = SqliteStore(path)
    assert again.load("pool:openai") == {"strategy": 1}  # dropped once, not at each start
    again.close()
    assert plain.encode() not in path.read_bytes()


def test_where_the_state_goes(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "rotator" / "state.db" == resolve(None)
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_path() == Path("~/.local/state/rotator/state.db").expanduser()
    assert resolve("") is None and isinstance(open_store(None), MemoryRecords)
    assert resolve("~/x.db") == Path("~/x.db").expanduser()


def test_the_config_names_the_state_path():
    assert parse("").state.path is None
    assert parse("state: {path: ''}").state.path == ""
    assert parse("state: {path: /tmp/r.db}").state.path == "/tmp/r.db"


# ------------------------------------------------------------------------------------------------------------------
# A pool's state


def rate_limited(seconds: str):
    return failure(429, [("retry-after", seconds)], b"", pooled=True)


def test_rests_usage_and_failures_carry_over_to_a_pool_built_later():
    clock, wall = FakeClock(100.0), FakeClock(1_700_000_000.0)
    old = KeyPool([SECRET, OTHER], clock=clock, wall=wall)
    old.rests.failed(SECRET, rate_limited("300"), "gpt-4o")
    old.rests.failed(OTHER, failure(429, [], b"", pooled=True), "")  # a backoff, whole key
    with old.lease(OTHER):
        old.record_usage(OTHER, "gpt-4o", 0.5, input_tokens=100, output_tokens=20, cache_read=60, cache_write=30,
                         cold_cost=0.01)
    old.record_usage(OTHER, "mystery", None, output_tokens=30)
    records = json.loads(json.dumps(export_state(old)))

    # "restarted" 100 s later: another monotonic clock, the wall clock moved on
    clock2, wall.now = FakeClock(5.0), wall.now + 100
    new = KeyPool([SECRET, OTHER], clock=clock2, wall=wall)
    import_state(new, records)
    assert new.pick(model="gpt-4o").key == OTHER  # (its short backoff ended while Rotator was down)
    assert new.states[0].rest_until("gpt-4o", 5.0) == pytest.approx(5.0 + 200)
    assert new.states[0].rest_until("gpt-4o-mini", 5.0) == 0
    other = describe(new)["keys"][1]
    assert other["total"] == {"requests": 1, "tokens": 150, "cost": 0.5, "unpriced": 1, "input_tokens": 100,
                              "cache_read_tokens": 60, "cache_write_tokens": 30, "cold_cost": 0.01}
    assert other["last_hour"]["tokens"] == 150 and other["models"]["gpt-4o"]["tokens"] == 120
    assert new.states[1].failures == 1
    with new.lease(OTHER):
        pass
    assert describe(new)["keys"][1]["total"]["requests"] == 2  # the counters continue


def test_an_out_key_is_not_carried_over_and_expired_rests_are_dropped():
    clock, wall = FakeClock(0.0), FakeClock(1_700_000_000.0)
    old = KeyPool([SECRET, OTHER], clock=clock, wall=wall)
    old.rests.failed(SECRET, failure(401, [], b"", pooled=True))
    old.rests.failed(OTHER, rate_limited("10"), "m")
    records = export_state(old)
    wall.now += 60
    new = KeyPool([SECRET, OTHER], clock=FakeClock(0.0), wall=wall)
    import_state(new, records)
    assert [s.state(0.0) for s in new.states] == ["ready", "ready"]


def test_the_records_never_hold_a_key():
    pool = KeyPool([SECRET], wall=lambda: 1_700_000_000.0)
    pool.rests.failed(SECRET, rate_limited("30"), "m")
    text = json.dumps(export_state(pool))
    assert SECRET not in text and "wxyz" not in text and f"key:{fingerprint(SECRET)}" in text


def test_what_records_which_key_made_it_names_the_key_as_the_state_file_does(tmp_path):
    """(rewrite/pool/keypool.py `stored_id`: the conversation state names the key that made an entry, never the
    key itself; without `state.redis`, by the fingerprint the state file names it by.)"""
    store = SqliteStore(tmp_path / "s.db")
    pool = KeyPool([SECRET, OTHER])
    name_keys(pool, store.secret)
    assert stored_ids(pool) == [s.id for s in pool.states]
    assert stored_id(pool, OTHER) == fingerprint(OTHER, store.secret) and "abcd" not in stored_id(pool, OTHER)
    assert key_of(pool, stored_id(pool, OTHER)) == OTHER
    assert stored_id(pool, "sk-not-of-the-pool") == "" and key_of(pool, fingerprint(OTHER)) is None
    assert key_of(pool, "") is None
    store.close()


def test_records_that_do_not_parse_are_ignored():
    pool = KeyPool([SECRET], wall=lambda: 1_700_000_000.0)
    key = f"key:{fingerprint(SECRET)}"
    for records in ({"strategy": "x", key: 3}, {key: {"rests": {"m": ["soon", "why"]}, "failures": "2",
                                                      "usage": {"total": {"requests": -4, "tokens": "many"},
                                                                "minutes": [[1, 2, 3], "x"]}}},
                    {key: {"rests": [1], "usage": []}}, {key: {"rests": {"m": [float("inf"), "x"]}}}):
        import_state(pool, records)
    assert pool.pick(model="m").wait == 0 and describe(pool)["keys"][0]["total"]["requests"] == 0


# ------------------------------------------------------------------------------------------------------------------
# The addon


def config(state_path: str, keys: str = f"[{SECRET}, {OTHER}]") -> str:
    return f"providers: {{openai: {{base_url: 'http://127.0.0.1:9/v1', keys: {keys}}}}}\nstate: {{path: '{state_path}'}}\n"


def started(engine: Engine) -> Pools:
    addon = Pools(engine)
    addon.configure({"rotator_config"})  # (what RotatorConfig announces once it has loaded the config)
    return addon


def pool_of(engine: Engine) -> KeyPool:
    return engine.router.provider_for("api.openai.com").pool


def test_a_resting_key_is_still_resting_after_a_restart(tmp_path):
    db = tmp_path / "state.db"
    with taddons.context():
        first = Engine(parse(config(str(db))))
        addon = started(first)
        pool_of(first).rests.failed(SECRET, rate_limited("300"), "gpt-4o")
        with pool_of(first).lease(OTHER):
            pool_of(first).record_usage(OTHER, "gpt-4o", 0.001, input_tokens=40, output_tokens=2, cache_read=30,
                                        cache_write=10, cold_cost=0.0025)
        addon.done()

        second = Engine(parse(config(str(db))))
        again = started(second)
        pool = pool_of(second)
        assert {pool.pick(model="gpt-4o").key for _ in range(4)} == {OTHER}
        table = again.pools()
        assert "resting for gpt-4o until" in table and "rate limited, status 429" in table
        assert SECRET not in table and OTHER not in table and "sk-…wxyz" in table
        assert "cache read 1h / all  cold prefixes 1h / all" in table and "75% / 75%" in table
        assert "$0.0025 / $0.0025" in table  # (the prompt cache's counters carried over the restart)
        described = json.loads(again.pools("json"))
        assert described[0]["keys"][1]["total"]["tokens"] == 42 and described[0]["keys"][1]["total"]["requests"] == 1
        again.done()
    assert SECRET.encode() not in db.read_bytes() and OTHER.encode() not in db.read_bytes()


def test_a_reload_brings_an_out_key_back_and_keeps_the_rests(tmp_path):
    with taddons.context():
        engine = Engine(parse(config("")))
        addon = started(engine)
        pool_of(engine).rests.failed(SECRET, failure(401, [], b"", pooled=True))
        pool_of(engine).rests.failed(OTHER, rate_limited("300"), "m")
        engine.configure(parse(config("")))  # the config reloaded: new pools
        addon.configure({"rotator_config"})
        pool = pool_of(engine)
        assert [s.state(pool.clock()) for s in pool.states] == ["ready", "resting"]
        addon.done()


async def test_changes_are_flushed_in_batches_without_done(tmp_path, monkeypatch):
    db = tmp_path / "state.db"
    writes = []
    with taddons.context():
        engine = Engine(parse(config(str(db))))
        addon = started(engine)
        kept = engine.kept
        save = kept.store.save
        monkeypatch.setattr(kept.store, "save", lambda batch: (save(batch), writes.append(batch)))  # counted once written
        kept.flush_interval = 0.05
        changes, looks = kept._changes, []
        monkeypatch.setattr(kept, "_changes", lambda *a, **k: (looks.append(1), changes(*a, **k))[1])
        addon.running()
        for _ in range(50):  # many events, no write of their own
            pool_of(engine).rests.failed(SECRET, rate_limited("300"), "m")
            with pool_of(engine).lease(OTHER):
                pass
        assert writes == []
        await eventually(lambda: writes)
        assert len(writes) == 1 and scope("openai") in writes[0]
        reader = SqliteStore(db)
        assert f"key:{fingerprint(OTHER, reader.secret)}" in reader.load(scope("openai"))
        reader.close()
        looked = len(looks)
        await asyncio.sleep(0.3)  # six flush intervals
        # Nothing changed since: nothing written, and the flusher did not even look (an idle worker is not woken).
        assert (len(looks), len(writes)) == (looked, 1)
        with pool_of(engine).lease(OTHER):  # a change: written once more, a flush interval later
            pass
        await eventually(lambda: len(writes) == 2)
        assert scope("openai") in writes[1]
        addon.done()
        assert kept.store is None


def test_a_state_file_that_cannot_be_opened_is_refused_in_one_line(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with taddons.context():
        engine = Engine(parse(config(str(blocker / "state.db"))))
        with pytest.raises(exceptions.OptionsError, match=r"^rotator_config: state.path: cannot open "):
            started(engine)
    assert "state.path: cannot open" in caplog.text


def test_the_command_is_registered_and_returns_text():
    engine = Engine(parse(config("")))
    addon = Pools(engine)
    with taddons.context(addon) as tctx:
        addon.configure({"rotator_config"})
        text = tctx.master.commands.call("rotator.pools")
        assert text.startswith("openai (round-robin): 2 ready, 0 resting, 0 out")
        assert "requests 1h / all" in text and "sk-…wxyz" in text and SECRET not in text
        assert json.loads(tctx.master.commands.call("rotator.pools", "json"))[0]["provider"] == "openai"


def test_without_pools_the_command_says_so():
    addon = Pools(Engine(parse("state: {path: ''}")))
    with taddons.context(addon):
        addon.configure({"rotator_config"})
        assert addon.pools() == "rotator: no key pools configured"
