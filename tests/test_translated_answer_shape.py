"""A translated target's 200 whose JSON is no answer of its protocol (`{}`, another vendor's shape): the next target
serves the request, or the client is told in its protocol's shape; never an empty answer made up from nothing."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support.engine_harness import Upstream
from tests.support.routed_exchange import CHAT_PATH, CONFIG, exchange

ONE_TARGET = CONFIG + "  - {models: [to-claude], targets: [anthropic/claude-sonnet-4-5]}\n"
NOT_ANSWERS = [b"{}", b'{"choices": [{"message": {"content": "hi"}}]}']  # (the second: Chat's, from Anthropic)


def answering(*bodies: bytes) -> Upstream:
    left = list(bodies)
    return Upstream([lambda request: httpx.Response(200, headers={"content-type": "application/json"},
                                                    content=left.pop(0))])


def chat(model: str) -> dict:
    return {"model": model, "stream": False, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("body", NOT_ANSWERS)
def test_a_translated_200_that_is_no_answer_reaches_the_client_as_an_error_not_an_empty_success(body):
    out, _ = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("to-claude"), answering(body), config=ONE_TARGET))
    answer = json.loads(out.body)
    assert out.status >= 500 and "choices" not in answer and "error" in answer, (out.status, answer)


@pytest.mark.parametrize("body", NOT_ANSWERS)
def test_the_next_target_serves_when_a_translated_target_answers_no_answer(body):
    served = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",' \
             b' "message": {"role": "assistant", "content": "Paris."}}]}'
    upstream = answering(body, served)
    out, _ = asyncio.run(exchange("api.openai.com", CHAT_PATH, chat("claude-then-chat"), upstream))
    assert [r.url.host for r in upstream.seen] == ["anthropic.test", "openai.test"]
    assert out.status == 200 and json.loads(out.body)["choices"][0]["message"]["content"] == "Paris."
