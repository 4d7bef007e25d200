"""The seam: whatever the cut point, the overlap the continuation repeats and how its deltas are split, the client
gets every character of the answer once; a continuation that started over is refused."""

from __future__ import annotations

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocols.resume.seam import MIN_OVERLAP, Seam

ANSWERS = st.text(alphabet=string.ascii_letters + " \n,.", min_size=MIN_OVERLAP + 2, max_size=300)


def unambiguous(answer: str) -> bool:
    grams = [answer[i:i + MIN_OVERLAP] for i in range(len(answer) - MIN_OVERLAP + 1)]
    return len(grams) == len(set(grams))


def run(seam: Seam, continuation: str, splits: list[int]) -> str:
    points = sorted({p % (len(continuation) + 1) for p in splits} | {0, len(continuation)})
    out = "".join(seam.feed(continuation[a:b]) for a, b in zip(points, points[1:]))
    return out + seam.finish()


@settings(max_examples=300, deadline=None)
@given(ANSWERS, st.data(), st.lists(st.integers(0, 400), max_size=8))
def test_instruction_continuation_repeating_any_overlap_joins_exactly(answer, data, splits):
    assume(unambiguous(answer))
    cut = data.draw(st.integers(1, len(answer) - 1))
    overlap = data.draw(st.sampled_from([0, *range(MIN_OVERLAP, cut)]) if cut > MIN_OVERLAP else st.just(0))
    seam = Seam(answer[:cut], exact=False)
    assert run(seam, answer[cut - overlap:], splits) == answer[cut:]
    assert not seam.failed and seam.trimmed == overlap


@settings(max_examples=200, deadline=None)
@given(ANSWERS, st.data(), st.lists(st.integers(0, 400), max_size=8), st.booleans(), st.booleans())
def test_prefill_continuation_joins_exactly_with_stripped_whitespace_or_an_echo(answer, data, splits, keeps_space, echo):
    assume(unambiguous(answer))
    cut = data.draw(st.integers(1, len(answer) - 1))
    sent = answer[:cut].rstrip()
    assume(sent)
    # A continuation that leaves out the stripped whitespace, while the rest itself starts with whitespace, reads the
    # same as one that repeats it: the seam takes it for the repeat (the only whitespace a client could lose).
    assume(keeps_space or sent == answer[:cut] or not answer[cut:cut + 1].isspace())
    continuation = answer[len(sent):] if keeps_space else answer[cut:]
    seam = Seam(answer[:cut], exact=True, stripped=answer[len(sent):cut], echo=sent if echo else "")
    assert run(seam, (sent if echo else "") + continuation, splits) == answer[cut:]
    assert not seam.failed


@settings(max_examples=100, deadline=None)
@given(ANSWERS, st.data(), st.lists(st.integers(0, 400), max_size=8), st.booleans())
def test_a_continuation_that_started_over_is_refused(answer, data, splits, exact):
    assume(unambiguous(answer))
    cut = data.draw(st.integers(MIN_OVERLAP, len(answer) - 1))
    seam = Seam(answer[:cut], exact=exact)
    assert run(seam, answer, splits) == ""
    assert seam.failed


def test_an_echo_that_does_not_repeat_the_prefill_is_refused():
    seam = Seam("The answer is", exact=True, echo="The answer is")
    assert seam.feed("Something else entirely") == "" and seam.failed


def test_the_seam_of_each_way_of_asking():
    from protocols.capabilities import Capabilities
    from protocols.resume import Delivered, seam_for

    delivered = Delivered("Hello there, ", True)
    asked = seam_for(delivered, "instruction", Capabilities())
    assert not asked.exact and asked.tail == "Hello there, "
    stripped = seam_for(delivered, "prefill", Capabilities(prefill=True, prefill_strip=True))
    assert stripped.exact and stripped.stripped == " " and stripped.echo == ""
    assert stripped.feed(" world and more of it") + stripped.finish() == "world and more of it"
    echoed = seam_for(delivered, "prefill", Capabilities(prefill=True, prefill_echo=True))
    assert echoed.echo == "Hello there, "
    assert echoed.feed("Hello there, world") + echoed.finish() == "world"


def test_a_refused_prefill_is_told_by_the_vendors_words():
    from protocols.resume import refuses_prefill

    anthropic = (b'{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support '
                 b'assistant message prefill. The conversation must end with a user message."}}')
    assert refuses_prefill(400, anthropic)
    assert refuses_prefill(400, b'{"error":{"message":"Requests ending with a model turn are not supported"}}')
    assert refuses_prefill(400, b'{"message":"Expected last role User or Tool (or Assistant with prefix True)"}')
    assert not refuses_prefill(400, b'{"error":{"message":"max_tokens is too large"}}')
    assert not refuses_prefill(429, anthropic)
