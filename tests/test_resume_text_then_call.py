"""An answer that is text and then a tool call, cut anywhere from its first word to the call's last argument
fragment (inside the text, between the text and the call, inside the call, which the client never sees half of) and
continued as a model does: the rest of the text after a repeat of its last words (0 to 9 back), then the call. For
each protocol, streamed or folded into a non-stream answer, the client's official SDK reads exactly one text and one
whole call, never the repeated words twice (or, where the seam refused the continuation, the partial with an honest
ending, never in the common case); a Responses stream stays consistent with itself throughout. The same for an
answer of text alone, cut anywhere before its end."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols
from protocols.capabilities import Capabilities
from protocols.resume import Delivered, Method
from protocols.resume.seam import MIN_OVERLAP
from tests.support.fake_vendor import TOOL_NAME, Fault
from tests.support.resume_reads import assert_responses_stream_consistent, client_answer, text_pieces
from tests.support.resume_runs import ASKED, TOKENS, held_cut_and_resume, vendor_stream
from tests.support.streams import parse, payloads
from tests.support.translate_sdk import view

PROTOCOLS = ["openai_chat", "openai_responses", "anthropic_messages", "gemini"]
ENDINGS = (b'"finish_reason":"', b'"stop_reason":"')  # (Chat's and Anthropic's, before their streams' last events)
ARGUMENTS = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=5),
                            st.one_of(st.integers(-99, 999), st.text(max_size=8)), min_size=1, max_size=3)


def answer(pieces: tuple[str, ...] | list[str], arguments: dict | None) -> Fault:
    """Text in these deltas, then (unless `arguments` is None) a tool call with these arguments."""
    return (Fault() if arguments is None else Fault().tool_call(arguments=arguments)).in_pieces(*pieces)


def cut_points(protocol: str, first: bytes, request: dict) -> list[int]:
    """Every cut (events of `first` the vendor sent) after the answer's first token and before the client holds
    the whole call (a call is held back until it is whole: a cut inside it leaves the client none of it), or the
    answer's ending (Chat's finish reason, Anthropic's stop reason: after it the answer is whole, whatever follows)."""
    repairer, holds = protocols.get(protocol).repairer(request), protocols.registered(protocol).resumer.holder
    holder = holds() if holds is not None else None  # (none: the protocol's calls arrive whole)
    points, sent = [], b""
    for k, event in enumerate(parse(first), 1):
        out = repairer.feed(event)
        sent += holder.feed(out) if holder is not None else out
        if TOOL_NAME.encode() in sent or repairer.complete or any(end in sent for end in ENDINGS):
            break
        if repairer.started:
            points.append(k)
    return points


def model_continuation(protocol: str, tokens: tuple[str, ...], arguments: dict | None, back: int, asked: str,
                       splits: list[int]):
    """The vendor's continuation of what was delivered, asked by `method`: the answer again when asked `again`;
    else (an echoing vendor's echo of the prefill, then) the text from `back` tokens before the cut, then the call."""

    def said(delivered: Delivered, method: Method) -> bytes:
        text = "".join(tokens)
        if method == "again":
            head = text
        else:
            cut = len(delivered.text)
            ends = [len("".join(tokens[:n])) for n in range(len(tokens) + 1)]
            assert cut in ends, "a cut falls between tokens"
            start = ends[max(0, ends.index(cut) - back)]
            echo = delivered.text if method == "prefill" and ASKED[asked][1].prefill_echo else ""
            head = echo + text[start:]
        points = sorted({0, len(head), *(s % (len(head) + 1) for s in splits)})
        pieces = [head[a:b] for a, b in zip(points, points[1:])]
        return vendor_stream(protocol, answer(pieces, arguments), 1)

    return said


def common(run, tokens: tuple[str, ...], back: int) -> bool:
    """The continuation goes back less than the whole partial, of MIN_OVERLAP characters or more: it must join."""
    cut = len(run.delivered.text)
    whole = next(n for n in range(len(tokens) + 1) if len("".join(tokens[:n])) == cut)
    return back < whole and cut >= MIN_OVERLAP


def assert_reads_one_text_and_one_call(protocol, streamed, request, run, text, arguments, expect_join):
    """(`arguments` None: the answer is the text alone.)"""
    read = client_answer(protocol, run.out, streamed, request)
    got = view(protocol, read)
    if run.failed:
        assert not expect_join, "the common case must join"
        assert (got["text"], got["calls"], got["finish"]) == (run.delivered.text, [], "length")
    else:
        assert text_pieces(protocol, read) == [text]
        assert [(name, args) for _, name, args in got["calls"]] == ([] if arguments is None else
                                                                    [(TOOL_NAME, arguments)])
        assert got["finish"] == ("stop" if arguments is None else "tool_calls")
    if protocol == "openai_responses" and streamed:
        assert_responses_stream_consistent(run.out)


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=50, deadline=None)
@given(data=st.data(), words=TOKENS, arguments=ARGUMENTS | st.none(), back=st.integers(0, 9),
       asked=st.sampled_from(list(ASKED)), splits=st.lists(st.integers(0, 400), max_size=6))
def test_a_cut_anywhere_before_the_call_is_whole_reads_one_text_and_one_call(protocol, streamed, data, words,
                                                                             arguments, back, asked, splits):
    tokens = tuple(f"{space if i else ''}{letters}{digit}{mark}" for i, (space, letters, digit, mark) in
                   enumerate(words))
    text = "".join(tokens)
    request = {"model": "fake-model", "stream": streamed}
    first = vendor_stream(protocol, answer(tokens, arguments))
    k = data.draw(st.sampled_from(cut_points(protocol, first, request)), label="cut after events")
    run = held_cut_and_resume(protocol, first, k, model_continuation(protocol, tokens, arguments, back, asked, splits),
                              caps=ASKED[asked][1], request=request)
    assert run.delivered.resumable and text.startswith(run.delivered.text)
    assert_reads_one_text_and_one_call(protocol, streamed, request, run, text, arguments,
                                       common(run, tokens, back))


SENTENCE = ("Let", " me", " look", " that", " up", " for", " you", " right", " now.")


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_cut_of_one_answer_with_every_repeat_reads_one_text_and_one_call(protocol, streamed):
    """Every cut point of one answer, exhaustively, with the continuation going back 0 to 4 words."""
    arguments = {"city": "Paris", "unit": "celsius"}
    request = {"model": "fake-model", "stream": streamed}
    first = vendor_stream(protocol, Fault().tool_call(arguments=arguments).in_pieces(*SENTENCE))
    for k in cut_points(protocol, first, request):
        for back in range(5):
            run = held_cut_and_resume(protocol, first, k, model_continuation(protocol, SENTENCE, arguments, back,
                                                                             "instruction", []),
                                      caps=Capabilities(), request=request)
            assert_reads_one_text_and_one_call(protocol, streamed, request, run, "".join(SENTENCE), arguments,
                                               common(run, SENTENCE, back))


def _types(out: bytes) -> list[str]:
    return [payload["type"] for payload in payloads(out)]


def test_a_responses_continuation_repeating_the_words_before_the_call_adds_no_message():
    """The defect of issue #35 (7): cut inside the call's arguments, continued by " right now." and the call, the
    client got a second message item holding " right now." in its `done` events (none of it in deltas), and the
    final output held those words twice."""
    first = vendor_stream("openai_responses", Fault().tool_call().in_pieces(*SENTENCE))
    k = next(i for i, e in enumerate(parse(first), 1) if b"function_call_arguments.delta" in e.raw) + 1
    run = held_cut_and_resume("openai_responses", first, k,
                              lambda delivered, method: vendor_stream(
                                  "openai_responses", Fault().tool_call().in_pieces(" right", " now."), 1),
                              caps=Capabilities(), request={"model": "fake-model", "stream": True})
    assert run.method == "instruction" and not run.failed
    assert _types(run.out).count("response.output_item.added") == 2  # the text's, the call's
    answer = client_answer("openai_responses", run.out, True, {})
    assert [item.type for item in answer.output] == ["message", "function_call"]
    assert answer.output_text == "".join(SENTENCE)
    assert_responses_stream_consistent(run.out)


def test_an_anthropic_continuation_repeating_the_words_before_the_call_adds_no_empty_text_block():
    """The same cut in Messages: no empty text block between the text and the call (a client that sends the
    conversation back would have the API refuse it: text content blocks must be non-empty)."""
    first = vendor_stream("anthropic_messages", Fault().tool_call().in_pieces(*SENTENCE))
    k = next(i for i, e in enumerate(parse(first), 1) if b"input_json_delta" in e.raw and b"Paris" in e.raw) + 1
    run = held_cut_and_resume("anthropic_messages", first, k,
                              lambda delivered, method: vendor_stream(
                                  "anthropic_messages", Fault().tool_call().in_pieces(" right", " now."), 1),
                              caps=Capabilities(), request={"model": "fake-model", "stream": True})
    assert not run.failed
    message = client_answer("anthropic_messages", run.out, True, {})
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "".join(SENTENCE)


def test_a_responses_message_whose_repeat_is_decided_early_opens_with_its_first_new_words():
    """An event inside the continuation's message (an annotation) makes the seam decide after the repeat alone: the
    message waits, and opens for the client with its first new words, its events in order."""
    first = vendor_stream("openai_responses", Fault().tool_call().in_pieces(*SENTENCE))
    k = next(i for i, e in enumerate(parse(first), 1) if b"function_call_arguments.delta" in e.raw) + 1
    plain = vendor_stream("openai_responses", Fault().tool_call().in_pieces(" right", " now.", " Here", " it is."), 1)
    head, sep, rest = plain.partition(b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta"'
                                      b',"sequence_number":6')  # (" Here")
    annotation = {"type": "response.output_text.annotation.added", "sequence_number": 0, "item_id": "msg_fake1",
                  "output_index": 0, "content_index": 0, "annotation_index": 0,
                  "annotation": {"type": "url_citation", "url": "https://example.com", "title": "x", "start_index": 0,
                                 "end_index": 1}}
    assert sep
    more = head + b"event: %s\ndata: %s\n\n" % (annotation["type"].encode(), json.dumps(annotation).encode()) + sep + rest
    run = held_cut_and_resume("openai_responses", first, k, lambda delivered, method: more, caps=Capabilities(),
                              request={"model": "fake-model", "stream": True})
    assert not run.failed
    assert_responses_stream_consistent(run.out)
    answer = client_answer("openai_responses", run.out, True, {})
    assert [item.type for item in answer.output] == ["message", "message", "function_call"]
    assert answer.output_text == "".join(SENTENCE) + " Here it is."
    annotated = [e for e in payloads(run.out) if e["type"] == "response.output_text.annotation.added"]
    assert [(e["output_index"], e["item_id"]) for e in annotated] == [(1, "msg_fake1")]
    types = _types(run.out)
    assert types.index("response.output_text.annotation.added") > types.index("response.content_part.added", 4)


@pytest.mark.parametrize("after", ["response.output_text.done", "response.content_part.done"])
def test_a_responses_cut_after_the_texts_end_goes_on_in_a_new_message_after_the_cut_one_is_done(after):
    """The client was sent the end of the cut message's text (its `output_text.done`, perhaps its part's) but not
    the item's end: the rest goes in a new message, once the cut one is done with the events it still lacked."""
    first = vendor_stream("openai_responses", Fault().tool_call().in_pieces(*SENTENCE))
    k = next(i for i, e in enumerate(parse(first), 1) if f'"{after}"'.encode() in e.raw)
    more = vendor_stream("openai_responses", Fault().tool_call().in_pieces(" right", " now.", " Here", " it is."), 1)
    run = held_cut_and_resume("openai_responses", first, k, lambda delivered, method: more, caps=Capabilities(),
                              request={"model": "fake-model", "stream": True})
    assert not run.failed
    assert_responses_stream_consistent(run.out)
    types = _types(run.out)
    assert types.index("response.output_item.done") < types.index("response.output_item.added", 3)
    answer = client_answer("openai_responses", run.out, True, {})
    assert [item.type for item in answer.output] == ["message", "message", "function_call"]
    assert answer.output_text == "".join(SENTENCE) + " Here it is."
