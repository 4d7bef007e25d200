"""The model an early pick is made for (rewrite/pool/prefetch.py): read from either end of the body, never from the
text of a message; no guess where neither end names it."""

from __future__ import annotations

import json

from rewrite.pool.prefetch import model_in_body

MESSAGES = [{"role": "user", "content": 'say "model": "not-this-one" ' + "x" * 10_000}]


def test_the_model_is_read_at_either_end_of_the_body():
    assert model_in_body(json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()) == "gpt-4o"
    assert model_in_body(json.dumps({"messages": MESSAGES, "model": "claude-x", "stream": True}).encode()) == "claude-x"
    assert model_in_body(b'{"model" : "spaced"}') == "spaced"


def test_no_guess_from_a_message_or_the_middle_of_a_large_body():
    quoted = json.dumps({"messages": [{"role": "user", "content": 'a "model": "quoted"'}]}).encode()
    assert model_in_body(quoted) is None  # (inside a JSON string the quotes are escaped)
    middle = {"messages": MESSAGES, "model": "far-inside", "more": MESSAGES}
    assert model_in_body(json.dumps(middle).encode()) is None
    assert model_in_body(b"") is None and model_in_body(None) is None
