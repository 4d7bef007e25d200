"""The pools' state file as a real `mitmdump -s addons/rotator.py` leaves it: readable by its user alone, and naming
keys by fingerprints no one can compute from a guessed key without the file's own secret."""

from __future__ import annotations

import hashlib
import sqlite3
import stat

import openai
import pytest

from tests.support.fake_vendor import Fault
from tests.support.harness import POOL_KEYS

pytestmark = pytest.mark.e2e


def plain_hash(key: str) -> str:
    return hashlib.sha256(b"rotator-key:" + key.encode()).hexdigest()[:24]


def test_the_state_file_is_private_and_names_no_key_by_a_plain_hash(fake_vendor, rotator, tmp_path):
    path = tmp_path / "state" / "rotator" / "state.db"
    proxy = rotator(fresh=True, state={"path": str(path)})
    fake_vendor.script(Fault.status(429, headers={"retry-after": "300"}))  # a rest worth keeping
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    proxy.proc.stop()

    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in path.parent.iterdir()} == {"state.db": 0o600}
    with sqlite3.connect(path) as db:
        names = {name for (name,) in db.execute("SELECT name FROM records WHERE scope = 'pool:openai'")}
    db.close()
    assert len([n for n in names if n.startswith("key:")]) == len(POOL_KEYS["openai"])
    text = path.read_bytes()
    for key in POOL_KEYS["openai"]:
        assert key.encode() not in text
        assert plain_hash(key).encode() not in text
        assert hashlib.sha256(key.encode()).hexdigest()[:24].encode() not in text
