"""Where Rotator keeps what must survive a restart: the key pools' rests, rotation positions and usage counters.

A store holds JSON records by scope and name (`pool:openai` / `key:<fingerprint>`), written in batches: the caller
collects what changed and hands it over now and then (rewrite/state/kept.py flushes off the event loop), never a write
per event. SQLite (stdlib) on one machine; the same interface can hold Redis for several processes. Keys are never
stored: records name them by fingerprint (rewrite/pool/key_state.py), an HMAC under the store's own random secret,
so that a stolen or shared state file confirms no guessed key. The SQLite file is the user's alone (0600, in a 0700
directory when Rotator creates it), and holds that secret; a file from before keyed fingerprints is emptied once,
its rests re-learned.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

Batch = dict[str, dict[str, object]]  # scope -> name -> JSON value


class StateStore(Protocol):
    secret: bytes  # what the records' key fingerprints are keyed with

    def load(self, scope: str) -> dict[str, object]:
        """Every record of `scope`, by name (empty when there is none)."""

    def save(self, batch: Batch) -> None:
        """Write every record of `batch` (replacing records of the same scope and name) at once."""

    def close(self) -> None: ...


class StateError(Exception):
    """The store cannot be opened or written; the message is one line, and names the file."""


def default_path() -> Path:
    """$XDG_STATE_HOME/rotator/state.db, else ~/.local/state/rotator/state.db."""
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / "rotator" / "state.db"


def resolve(path: str | None) -> Path | None:
    """The file a `state.path` setting names: None for the default, "" for none (memory only)."""
    if path is None:
        return default_path()
    return Path(path).expanduser() if path else None


def open_store(path: Path | None) -> StateStore:
    return SqliteStore(path) if path is not None else MemoryRecords()


class MemoryRecords:
    """Kept while the process runs: carries the pools' state over a config reload, not over a restart."""

    def __init__(self) -> None:
        self._scopes: Batch = {}
        self.secret = os.urandom(32)

    def load(self, scope: str) -> dict[str, object]:
        return json.loads(json.dumps(self._scopes.get(scope, {})))

    def save(self, batch: Batch) -> None:
        for scope, records in batch.items():
            self._scopes.setdefault(scope, {}).update(json.loads(json.dumps(records)))

    def close(self) -> None:
        pass


class SqliteStore:
    """One table of JSON records. Written from a worker thread and read at start-up, one call at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            _private(path)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")  # (its -wal and -shm files get the file's mode)
            self._db.execute("CREATE TABLE IF NOT EXISTS records (scope TEXT NOT NULL, name TEXT NOT NULL, "
                             "value TEXT NOT NULL, PRIMARY KEY (scope, name))")
            self.secret = self._install_secret()
        except (OSError, sqlite3.Error) as e:
            raise StateError(f"cannot open {path}: {_why(e)}") from None

    def _install_secret(self) -> bytes:
        """The file's own secret, made on first use. Records written before it named keys by a plain hash, which
        confirms a guessed key: they are dropped then (rests are re-learned, usage counts start again)."""
        self._db.execute("CREATE TABLE IF NOT EXISTS install (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if self._db.execute("SELECT 1 FROM install WHERE name = 'secret'").fetchone() is None:
                self._db.execute("PRAGMA secure_delete = ON")  # (the names are overwritten, not just unlinked)
                self._db.execute("DELETE FROM records")
                self._db.execute("INSERT INTO install (name, value) VALUES ('secret', ?)", (os.urandom(32),))
            return bytes(self._db.execute("SELECT value FROM install WHERE name = 'secret'").fetchone()[0])

    def load(self, scope: str) -> dict[str, object]:
        with self._lock:
            try:
                rows = self._db.execute("SELECT name, value FROM records WHERE scope = ?", (scope,)).fetchall()
            except sqlite3.Error as e:
                raise StateError(f"cannot read {self.path}: {_why(e)}") from None
        out = {}
        for name, value in rows:
            try:
                out[name] = json.loads(value)
            except ValueError:
                continue  # a record that does not parse is left out, not fatal
        return out

    def save(self, batch: Batch) -> None:
        rows = [(scope, name, json.dumps(value)) for scope, records in batch.items() for name, value in records.items()]
        if not rows:
            return
        with self._lock:
            try:
                with self._db:  # one transaction
                    self._db.execute("BEGIN")
                    self._db.executemany("INSERT OR REPLACE INTO records (scope, name, value) VALUES (?, ?, ?)",
                                         rows)
            except sqlite3.Error as e:
                raise StateError(f"cannot write {self.path}: {_why(e)}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _private(path: Path) -> None:
    """Make `path` readable by its user alone (0600), and its directory (0700) when it is made here: an existing
    directory is the user's choice."""
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True)
        except FileExistsError:
            pass  # another Rotator starting at the same moment made it (their chmod below is the same)
        path.parent.chmod(0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    path.chmod(0o600)  # (a file made before this rule)


def _why(e: Exception) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)
