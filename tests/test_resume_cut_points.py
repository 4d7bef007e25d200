"""Whatever the cut point (after whitespace, at a word's end, inside a word, within the first characters) and however
the continuation starts (0-8 tokens back, all over again, in other whitespace), for each protocol, streamed or folded
into a non-stream answer, asked by prefill or in words: the client's official SDK reads exactly the uncut answer with
its normal ending, or the partial with the honest one (never in the common case, a cut between words)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat._completions import ChatCompletionStreamState

import protocols
from tests.support.fake_vendor import Fault
from tests.support.resume_runs import ASKED, Case, cases, cut_and_resume, through_delta, vendor_stream
from tests.support.sdk_clients import anthropic_final, chat_chunks, gemini_chunks, responses_events
from tests.support.streams import aggregate, parse
from tests.support.translate_sdk import read, view

PROTOCOLS = ["openai_chat", "openai_responses", "anthropic_messages", "gemini"]


def first_pieces(case: Case) -> tuple[list[str], int]:
    """The answer's deltas as the first attempt sent them (a token at a time, the one the cut falls in split
    there), and how many of them the client got."""
    pieces, at = [], 0
    for token in case.tokens:
        inside = case.cut - at
        pieces += [token[:inside], token[inside:]] if 0 < inside < len(token) else [token]
        at += len(token)
    got = next(n for n in range(len(pieces) + 1) if sum(map(len, pieces[:n])) == case.cut)
    return pieces, got


def in_pieces(text: str, splits: list[int]) -> list[str]:
    points = sorted({0, len(text), *(s % (len(text) + 1) for s in splits)})
    return [text[a:b] for a, b in zip(points, points[1:])]


def seen(protocol: str, out: bytes, streamed: bool, request: dict) -> tuple[str, str]:
    """(text, finish) as the client's SDK reads the answer: the stream, or the non-stream answer folded from it."""
    if not streamed:
        answer = json.dumps(aggregate_result(protocol, out, request)).encode()
        got = view(protocol, read(protocol, answer))
    elif protocol == "openai_chat":
        state = ChatCompletionStreamState()
        for chunk in chat_chunks(out):
            state.handle_chunk(chunk)
        got = view(protocol, state.current_completion_snapshot)
    elif protocol == "openai_responses":
        got = view(protocol, next(e.response for e in reversed(responses_events(out)) if hasattr(e, "response")))
    elif protocol == "anthropic_messages":
        got = view(protocol, anthropic_final(out)[1])
    else:
        got = view(protocol, gemini_chunks(out))
    return got["text"], got["finish"]


def aggregate_result(protocol: str, out: bytes, request: dict) -> dict:
    return aggregate(protocols.get(protocol), parse(out), request).result()


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=60, deadline=None)
@given(case=cases(), asked=st.sampled_from(list(ASKED)), splits=st.lists(st.integers(0, 400), max_size=6))
def test_the_client_reads_the_uncut_answer_or_an_honest_ending(protocol, streamed, case, asked, splits):
    request = {"model": "fake-model", "stream": streamed}
    pieces, got = first_pieces(case)
    first, k = through_delta(protocol, Fault().in_pieces(*pieces), got)
    more = vendor_stream(protocol, Fault().in_pieces(*in_pieces(case.continuation(asked), splits)), 1)

    run = cut_and_resume(protocol, first, k, more, request=request, seam=lambda delivered: case.seam(delivered, asked))

    assert run.delivered.text == case.partial
    if run.failed:
        assert seen(protocol, run.out, streamed, request) == (case.partial, "length")
        assert not case.common, case
    else:
        assert seen(protocol, run.out, streamed, request) == (case.answer, "stop"), case
