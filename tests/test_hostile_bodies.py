"""Client bodies nested too deeply: json.loads (and copying or encoding) raise RecursionError on them. Whether the
body itself is too deep to parse, or parses but is too deep for a target's adapters or translation, the client
gets its protocol's 400 and nothing goes upstream. End to end: tests/e2e/test_hostile_input.py."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from rewrite.inspection.steps import body_text
from rewrite.inspection.views import arguments
from tests.support.engine_harness import Upstream
from tests.support.routed_exchange import CHAT_PATH, exchange

TOO_DEEP = "nested too deeply"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def chat_with(model: str, extra: str) -> bytes:
    return (f'{{"model": "{model}", "stream": false, "messages": [{{"role": "user", "content": "hi"}}], '
            f'{extra}}}').encode()


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError("nothing may go upstream")


def assert_openai_400(out, upstream: Upstream) -> None:
    assert out.status == 400
    error = json.loads(bytes(out.body))["error"]
    assert error["type"] == "invalid_request_error" and TOO_DEEP in error["message"]
    assert upstream.seen == []


@pytest.mark.parametrize("model", ["to-local", "to-reasoner", "claude-then-chat"])
def test_a_body_too_deep_to_parse(model):
    upstream = Upstream([never_called])
    out, _ = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat_with(model, f'"metadata": {nested(100_000)}'),
                                  upstream))
    assert_openai_400(out, upstream)


def test_a_body_that_parses_but_is_too_deep_for_the_targets_adapters():
    upstream = Upstream([never_called])  # (the reasoner's adapters copy the body)
    out, _ = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat_with("to-reasoner", f'"metadata": {nested(600)}'),
                                  upstream))
    assert_openai_400(out, upstream)


def test_tool_arguments_too_deep_for_a_translated_target():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": nested(100_000)}}
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    body = json.dumps({"model": "claude-then-chat", "stream": False, "messages": history}).encode()
    upstream = Upstream([never_called])
    out, _ = asyncio.run(exchange("api.openai.com", CHAT_PATH, body, upstream))
    assert_openai_400(out, upstream)


def test_the_flow_view_shows_a_body_too_deep_to_indent_as_it_came():
    deep = nested(100_000)
    assert body_text(deep, len(deep), 0).startswith("[[[")
    assert arguments(deep).startswith("[[[")
