"""The cheap paths of a translated stream (Chat upstream, Anthropic client) give what the general paths give."""

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import protocols.translate as translate
from protocols import sse
from protocols.openai_chat.translate import stream_in as openai_chat
from protocols.unified import Request
from tests.support import fake_vendor
from tests.support.sdk_clients import anthropic_final
from tests.support.streams import parse

REQUEST = Request(model="client-model")
HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chunk(delta: dict | None = None, finish: str | None = None, index: int = 0, **extra) -> bytes:
    choices = [] if delta is None else [{"index": index, "delta": delta, "finish_reason": finish}]
    return fake_vendor.sse({**HEAD, "choices": choices, **extra})


def chat_stream(*chunks: bytes) -> bytes:
    return chunk({"role": "assistant", "content": ""}) + b"".join(chunks) + chunk({}, "stop") + b"data: [DONE]\n\n"


def to_anthropic(body: bytes) -> bytes:
    tr = translate.stream_translator("openai_chat", "anthropic_messages", REQUEST)
    out = b"".join(tr.feed(e) for e in parse(body)) + tr.end()
    assert tr.complete and not tr.failed
    return out


def blocks(body: bytes) -> list[tuple]:
    """The final message's content as the Anthropic SDK accumulates it."""
    message = anthropic_final(to_anthropic(body))[1]
    return [(b.type, getattr(b, "text", None) or getattr(b, "thinking", None) or (b.name, b.input))
            for b in message.content]


def test_text_beside_reasoning_refusal_or_a_tool_call_in_one_chunk_is_not_taken_for_plain_text():
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    body = chat_stream(
        chunk({"content": "Hello"}),
        chunk({"content": " there", "role": "assistant", "reasoning_content": None}),  # nulls beside: plain text
        chunk({"content": "", "reasoning_content": "hmm"}),
        chunk({"content": "Sorry", "refusal": "no"}),
        chunk({"content": "Calling", "tool_calls": [call]}),
    )
    assert blocks(body) == [("text", "Hello there"), ("thinking", "hmm"), ("text", "SorrynoCalling"),
                            ("tool_use", ("f", {"a": 1}))]


def test_text_of_another_choice_or_with_the_finish_or_usage_takes_the_general_path():
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    body = b"".join([
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "one"}),
        chunk({"content": "other choice"}, index=1),
        chunk({"content": " two"}, usage=usage),
        chunk({"content": " three"}, finish="length"),
        b"data: [DONE]\n\n",
    ])
    message = anthropic_final(to_anthropic(body))[1]
    assert [b.text for b in message.content] == ["one two three"]
    assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", 2)


def test_an_upstream_error_chunk_after_text_still_ends_the_stream_as_an_error():
    tr = translate.stream_translator("openai_chat", "anthropic_messages", REQUEST)
    body = chunk({"content": "Hi"}) + chunk({"content": "x"}, error={"message": "overloaded", "type": "server_error"})
    out = b"".join(tr.feed(e) for e in parse(body))
    assert tr.failed and b'"overloaded"' in out


def test_a_lone_surrogate_in_upstream_text_reaches_the_client_as_valid_json():
    body = chat_stream(b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a\\ud800b"}}]}\n\n')
    out = to_anthropic(body)
    texts = [json.loads(line[6:])["delta"]["text"] for line in out.decode().splitlines()
             if line.startswith("data: ") and '"text_delta"' in line]
    assert texts == ["a\ud800b"]


def test_non_ascii_text_goes_out_as_utf_8_as_the_vendors_send_it():
    out = to_anthropic(chat_stream(chunk({"content": "héllo \u4e16\u754c \U0001f600 \"q\" \\ \n"})))
    assert "héllo \u4e16\u754c \U0001f600 \\\"q\\\" \\\\ \\n".encode() in out
    assert [b.text for b in anthropic_final(out)[1].content] == ["héllo \u4e16\u754c \U0001f600 \"q\" \\ \n"]


def chunk_text(head: dict, body: dict, spaced: bool, cut: int | None) -> str:
    text = json.dumps({**head, **body}, separators=(", ", ": ") if spaced else (",", ":"))
    return text[:cut] if cut is not None else text


CHUNK_BODIES = st.sampled_from([
    {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": "x", "reasoning_content": "r"}}], "t": 1},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
    {"choices": [{"index": 0, "delta": {"content": "a"}}], "error": {"message": "boom"}},
    {"usage": None, "choices": [{"index": 0, "delta": {"content": "b"}}]},
    {"choices": [{"index": 0, "delta": {"content": "c"}}], "choices ": 1, "x": {"choices": []}},
    {"id": "other", "choices": [{"index": 0, "delta": {"content": "d"}}]},
    {},
])
CHUNK_HEADS = st.sampled_from([
    {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"},
    {"id": "c1", "object": "chat.completion.chunk", "created": 2, "model": "m"},
    {"id": "c1", "nested": {"choices": [{"index": 0, "delta": {"content": "nested"}}]}},
    {"usage": None, "id": "c1"},
    {},
])


ROLE = '"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]'
FIRST_CHUNKS = [
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",' + ROLE + "}",
    '{"id":"c1","usage":{"prompt_tokens":1,"completion_tokens":3},' + ROLE + ',"usage":null}',  # repeated key
    '{"id":"c1","x":{"a":1,"choices":[]},' + ROLE + "}",  # nested
    '{"id":"c1", ' + ROLE + "}",  # whitespace
]
TEXT_AT = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
           '"choices":[{"index":0,"delta":{"content":"')
ODD_CHUNKS = [
    TEXT_AT + 'a"},"finish_reason":null}]}',  # the usual chunk
    TEXT_AT + 'a"},"finish_reason":null}],"usage":null,"obfuscation":"x]"}',
    TEXT_AT + 'a"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":3}}',
    TEXT_AT + 'a"},"finish_reason":null}],"choices":[]}',
    TEXT_AT + 'a"},"finish_reason":null}]} ',
    TEXT_AT + 'a"},"finish_reason":null}]',
    TEXT_AT + 'a"},"finish_reason":null}],}',
    TEXT_AT + 'a\\x"},"finish_reason":null}]}',
    TEXT_AT + 'a\tb"},"finish_reason":null}]}',
    TEXT_AT + 'a\\"]b \\u00e9\\ud800"},"finish_reason":null}]}',
    TEXT_AT + 'a"},"finish_reason":"stop"}]}',
    TEXT_AT + 'a","reasoning_content":"r"},"finish_reason":null}]}',
    '{"id":"c1","meta":{"content":"hi"},"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}',
    '{"id":"c1","meta":{"content":"bye"},"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}',
    TEXT_AT + 'a"},"finish_reason":null}],"error":{"message":"e"}}',  # last: the stream ends here
    '{"id":"c1","usage":{"prompt_tokens":1,"completion_tokens":3},"choices":[{"index":0,"delta":{"content":"u"}}]}',
    '{"id":"c1","x":{"a":1,"choices":[]},"choices":[{"index":0,"delta":{"content":"v"}}],"error":{"message":"e"}}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}, 1',
]


@settings(max_examples=300, deadline=None)
@example(first=FIRST_CHUNKS[0], texts=ODD_CHUNKS)
@given(first=st.sampled_from(FIRST_CHUNKS), texts=st.lists(
    st.tuples(CHUNK_HEADS, CHUNK_BODIES, st.booleans(), st.none() | st.integers(0, 80)).map(lambda c: chunk_text(*c))
    | st.sampled_from(ODD_CHUNKS), min_size=1, max_size=6))
def test_chunks_read_after_the_first_one_decode_as_if_read_whole(first, texts):
    """The decoder reads only what changes from chunk to chunk once it has seen a stream's shape; what it decodes
    must not change."""
    decoded = []
    for memo in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            if not memo:
                patch.setattr(openai_chat, "constant_head", lambda data, chunk: "")
                patch.setattr(openai_chat, "text_template", lambda data, text: None)
            decoder = openai_chat.ChatDecoder()
            decoded.append([decoder.feed(sse.parse_block(f"data: {t}\n\n".encode())) for t in [first, *texts]])
    assert decoded[0] == decoded[1]
