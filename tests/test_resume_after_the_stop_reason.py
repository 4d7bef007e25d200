"""A stream cut after the vendor said how its answer ends (Anthropic's `message_delta` with its stop reason, Chat's
finish reason and usage chunk) but before its last event (`message_stop`, `[DONE]`) is whole: the client gets it
with the vendor's own ending, and no continuation is asked for (one would be billed, and a model asked to go on with
a finished answer says more: text after the stop reason, a second ending). The same for a continuation cut so: it
was spliced, and is not continued again."""

from __future__ import annotations

import json

import pytest

from tests.support.engine_harness import Upstream, events_of, run, sse
from tests.support.engine_streams import TEXT
from tests.support.routed_exchange import ANTHROPIC_HEADERS, MESSAGES_PATH, exchange
from tests.support.sdk_clients import anthropic_final, chat_final

pytestmark = pytest.mark.virtual_time

ANSWER = "The capital of France is Paris."
MORE = " Anything else I can help with?"  # what a model asked to go on with a finished answer may say
SAYS_MORE = {
    "anthropic_messages": [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_2","type":"message","role":'
        b'"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":40,'
        b'"output_tokens":1}}}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text",'
        b'"text":""}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
        b'"text":"' + MORE.encode() + b'"}}\n\n',
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
        b'"usage":{"output_tokens":8}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'],
    "openai_chat": [
        b'data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":'
        b'{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
        b'data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":'
        b'{"content":"' + MORE.encode() + b'"},"finish_reason":null}]}\n\n',
        b'data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},'
        b'"finish_reason":"stop"}]}\n\n',
        b'data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":'
        b'{"prompt_tokens":40,"completion_tokens":8,"total_tokens":48}}\n\n',
        b'data: [DONE]\n\n'],
}


def read(protocol: str, body: bytes) -> tuple[str, str]:
    """(text, finish) as the client's SDK reads the stream."""
    if protocol == "anthropic_messages":
        message = anthropic_final(body)[1]
        return "".join(block.text for block in message.content), message.stop_reason
    choice = chat_final(body).choices[0]
    return choice.message.content, choice.finish_reason


@pytest.mark.parametrize("protocol", list(SAYS_MORE))
async def test_a_stream_cut_after_its_stop_reason_is_whole_and_not_continued(protocol):
    whole = events_of(TEXT[protocol])
    up = Upstream([lambda r: sse(whole[:-1]), lambda r: sse(SAYS_MORE[protocol])])  # (its last event lost)
    out, job = await run(protocol, up, resume="{mode: continue}")
    assert read(protocol, out.body) == (ANSWER, "end_turn" if protocol == "anthropic_messages" else "stop")
    assert len(up.seen) == 1 and not [n for n in job.notes if n["kind"] == "resumed"]


async def test_a_non_stream_answer_cut_after_its_stop_reason_is_whole_and_not_continued():
    whole = events_of(TEXT["anthropic_messages"])
    up = Upstream([lambda r: sse(whole[:-1]), lambda r: sse(SAYS_MORE["anthropic_messages"])])
    out, _ = await run("anthropic_messages", up, stream=False, resume="{mode: continue}")
    answer = json.loads(out.body)
    assert [b["text"] for b in answer["content"]] == [ANSWER] and answer["stop_reason"] == "end_turn"
    assert len(up.seen) == 1


async def test_a_translated_stream_cut_after_its_finish_reason_is_whole_and_not_continued():
    """An Anthropic client served by a Chat target: the finish reason and usage came, `[DONE]` did not."""
    whole = events_of(TEXT["openai_chat"])
    up = Upstream([lambda r: sse(whole[:-1]), lambda r: sse(SAYS_MORE["openai_chat"])])
    body = {"model": "to-chat", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    out, job = await exchange("api.anthropic.com", MESSAGES_PATH, body, up, headers=ANTHROPIC_HEADERS, resume=True)
    assert read("anthropic_messages", out.body) == (ANSWER, "end_turn")
    assert len(up.seen) == 1


async def test_a_continuation_cut_after_its_stop_reason_is_spliced_and_not_continued_again():
    whole = events_of(TEXT["anthropic_messages"])  # message_start, block start, ping, 3 deltas, the ends
    rest = [e for i, e in enumerate(whole) if i not in (3, 4)]  # " is Paris." and the ends
    up = Upstream([lambda r: sse(whole[:5]), lambda r: sse(rest[:-1]), lambda r: sse(SAYS_MORE["anthropic_messages"])])
    out, job = await run("anthropic_messages", up, resume="{mode: continue}")
    assert read("anthropic_messages", out.body) == (ANSWER, "end_turn")
    assert len(up.seen) == 2
    assert [n["outcome"] for n in job.notes if n["kind"] == "resumed"] == ["spliced"]
