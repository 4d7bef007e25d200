"""Client keys and a keyless provider routed to a pool, for the tests of the client gate (tests/e2e/test_security.py,
tests/e2e/test_big_bodies.py)."""

from __future__ import annotations

import json

CLIENTS = [
    {"name": "team-a", "key": "rk-team-a-Secret-0001-aaaa"},
    {"name": "team-b", "key": "rk-team-b-Secret-0002-bbbb"},
]
TEAM_A, TEAM_B = CLIENTS[0]["key"], CLIENTS[1]["key"]
STRANGER = "sk-stranger-Secret-0003-cccc"  # a key no client has: perhaps somebody's real vendor key

ROUTED_MODEL = "claude-via-pool"  # a model of the keyless anthropic provider that a route serves from a pool
FALLBACK_MODEL = "claude-pool-first"  # the same, falling back to the keyless anthropic provider itself
TARGET_KEYS = ["sk-target-pool-1", "sk-target-pool-2"]
ROUTED = {
    "providers": {"anthropic": {"keys": None},
                  "target": {"kind": "openai", "base_url": "{vendor}/v1", "keys": TARGET_KEYS}},
    "routes": [{"models": [ROUTED_MODEL], "targets": ["target/deepseek-chat"]},
               {"models": [FALLBACK_MODEL], "targets": ["target/deepseek-chat", "anthropic/claude-haiku-4-5"]}],
}


def routed_config(vendor_url: str) -> dict:
    return json.loads(json.dumps(ROUTED).replace("{vendor}", vendor_url))
