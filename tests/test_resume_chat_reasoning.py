"""A Chat answer with reasoning (`reasoning_content`, DeepSeek's and others'), cut in its text and continued: the
continuation's reasoning (the model thinking again about an answer under way) is left out, as in the other
protocols, so the client's reasoning is what it had, not that with a second one after it."""

from __future__ import annotations

from openai.lib.streaming.chat._completions import ChatCompletionStreamState

from tests.support.resume_runs import cut_and_resume
from tests.support.sdk_clients import chat_chunks


def chunk(delta: dict, finish: str | None = None) -> bytes:
    return (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
            b'"delta":' + __import__("json").dumps(delta).encode() + b',"finish_reason":'
            + (b'"' + finish.encode() + b'"' if finish else b"null") + b'}]}\n\n')


def test_the_continuations_reasoning_is_left_out():
    first = b"".join([chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "Think A."}),
                      chunk({"content": "The capital of France"}), chunk({"content": " is Paris."}), chunk({}, "stop"),
                      b"data: [DONE]\n\n"])
    more = b"".join([chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "Think B."}),
                     chunk({"content": " is Paris."}), chunk({}, "stop"), b"data: [DONE]\n\n"])
    run = cut_and_resume("openai_chat", first, 3, more, exact=True)
    state = ChatCompletionStreamState()
    for c in chat_chunks(run.out):
        state.handle_chunk(c)
    message = state.current_completion_snapshot.choices[0].message
    assert message.content == "The capital of France is Paris."
    assert getattr(message, "reasoning_content", None) == "Think A."
