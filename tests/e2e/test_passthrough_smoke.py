"""One call per official SDK through the real proxy (`mitmdump -s addons/rotator.py`), built with no arguments."""

from __future__ import annotations

import pytest

from tests.support.clients import FINISH, PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT
from tests.support.harness import CLIENT_KEYS, POOL_KEYS

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_passthrough(fake_vendor, rotator, protocol, stream):
    rotator()

    result = call(protocol, make_client(protocol), stream=stream)

    assert result.text == TEXT
    assert result.finish == FINISH[protocol]["text"]
    assert (result.input_tokens, result.output_tokens) == (12, 10)
    [req] = fake_vendor.calls()
    family = {"chat": "openai", "responses": "openai"}.get(protocol, protocol)
    assert req.credential in POOL_KEYS[family]
    assert req.credential not in CLIENT_KEYS.values()
