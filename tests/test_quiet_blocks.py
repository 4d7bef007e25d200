"""The engine's shortcut for a plain Chat delta (Repairer.quiet + Sniffer.forward) gives what reading it gives.

While a started stream is pushed, a block that the repairer calls quiet is not parsed: the tap's `forward` says
what the client receives. For every block, quiet or not, the shortcut must agree with the general path: the same
bytes out, and no state the general path would have changed (finish reasons, tool calls, errors, usage).
"""

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocols import registry
from protocols.sse import parse_block
from protocols.translate.base import MALFORMED
from rewrite.accounting.usage import Meter
from tests.support import fake_vendor

CHAT = registry.detect("POST", "/v1/chat/completions")
HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
DELTA = fake_vendor.sse({**HEAD, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]})
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}


def started(body: dict = BODY, ask_usage: bool = True):
    """A repairer and the tap around it, after the stream's first token (when pushing begins)."""
    repairer = CHAT.repairer(body)
    meter = Meter(CHAT, body, ask_usage)
    feed = meter.tap(repairer.feed)
    feed(parse_block(DELTA))
    assert repairer.started
    return repairer, meter, feed


def state(repairer, meter) -> tuple:
    return (repairer.started, repairer.complete, repairer.failed, dict(repairer._finish), set(repairer._tools),
            repr(meter.usage()))


def test_a_plain_delta_is_quiet_and_forwarded_as_it_came():
    repairer, meter, _ = started()
    assert repairer.quiet(DELTA)
    assert meter.forwarder()(DELTA) == DELTA


def test_a_client_that_did_not_ask_for_usage_gets_the_null_usage_cut_from_a_plain_delta():
    repairer, meter, feed = started()
    block = DELTA.replace(b"}\n\n", b',"usage":null}\n\n')
    assert repairer.quiet(block)
    assert meter.forwarder()(block) == DELTA == feed(parse_block(block))


def test_blocks_that_change_the_state_are_never_quiet():
    repairer, _, _ = started()
    finish = fake_vendor.sse({**HEAD, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    tool = fake_vendor.sse({**HEAD, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]},
                                                "finish_reason": None}]})
    error = fake_vendor.sse({"error": {"message": "boom"}, "choices": [{"finish_reason": None}]})
    for block in (finish, tool, error, b"data: [DONE]\n\n", DELTA.replace(b"\n\n", b"\r\n\r\n"),
                  b"event: x\n" + DELTA, DELTA[:-2] + b"\r: c\n\n"):
        assert not repairer.quiet(block), block


def test_nothing_is_quiet_before_the_first_token_or_with_several_choices():
    assert not CHAT.repairer(BODY).quiet(DELTA)
    repairer, _, _ = started({**BODY, "n": 2})
    assert not repairer.quiet(DELTA)


def test_a_usage_chunk_is_read():
    _, meter, _ = started()
    usage = fake_vendor.sse({**HEAD, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    assert meter.forwarder()(usage) is None


TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
MARKS = st.sampled_from(['"finish_reason":null', '"tool_calls"', '"error"', '"usage"', '"prompt_tokens"',
                         "\r", "\n", "\r\n", '"}', "\\", ""])
FIELDS = st.dictionaries(st.sampled_from(["usage", "error", "x", "system_fingerprint"]),
                         st.one_of(st.none(), TEXT, st.integers(), st.just({"prompt_tokens": 1})), max_size=2)
CHOICE = st.fixed_dictionaries({
    "index": st.integers(0, 1),
    "delta": st.dictionaries(st.sampled_from(["content", "tool_calls", "refusal", "reasoning_content"]),
                             st.one_of(TEXT, st.just([{"index": 0}])), max_size=2),
    "finish_reason": st.one_of(st.none(), st.sampled_from(["stop", "length", "tool_calls"])),
})


@st.composite
def blocks(draw) -> bytes:
    """Chat chunks as vendors send them, and variants: marker text inside strings, spacing, CR, other lines."""
    chunk = {**HEAD, "choices": draw(st.lists(CHOICE, max_size=2)), **draw(FIELDS)}
    text = json.dumps(chunk, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    cut = draw(st.integers(0, len(text)))
    text = text[:cut] + draw(MARKS) + text[cut:] if draw(st.booleans()) else text
    return draw(st.sampled_from([b"data: ", b"data:"])) + text.encode() + draw(
        st.sampled_from([b"\n\n", b"\r\n\r\n", b"\n\n", b'\n: c "finish_reason":null\n\n']))


@settings(max_examples=600, deadline=None)
@given(block=blocks(), ask_usage=st.booleans())
@example(block=DELTA.replace(b'"hi"', b'"\\"finish_reason\\":null"'), ask_usage=True)
def test_the_shortcut_agrees_with_reading_the_block(block, ask_usage):
    repairer, meter, feed = started(ask_usage=ask_usage)
    shortcut = meter.forwarder()(block) if repairer.quiet(block) else None
    before = state(repairer, meter)
    try:
        read = feed(parse_block(block))
    except MALFORMED:  # a chunk of a shape no reader follows: the engine cuts the stream there
        assert shortcut is None
        return
    if shortcut is not None:
        assert shortcut == read
        assert state(repairer, meter) == before
