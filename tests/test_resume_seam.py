"""The seam: whatever the cut point, the overlap the continuation repeats and how its deltas are split, the client
gets every character of the answer once, or (where the continuation started over, or its head reads two ways) none
of the continuation; between words, where most cuts fall, it always joins."""

from __future__ import annotations

import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocols.resume import Delivered
from protocols.resume.seam import MIN_OVERLAP, Seam
from tests.support.resume_runs import ASKED, cases

ANSWERS = cases().map(lambda case: case.answer).filter(lambda answer: len(answer) >= MIN_OVERLAP + 2)


def unambiguous(answer: str) -> bool:
    grams = [answer[i:i + MIN_OVERLAP] for i in range(len(answer) - MIN_OVERLAP + 1)]
    return len(grams) == len(set(grams))


def reads_two_ways(partial: str, continuation: str) -> bool:
    """Where a seam may refuse a continuation that goes on exactly: it starts with the partial's last word (perhaps
    cut) again, or with the first letter of a partial of a few characters (the continuation may have started over)."""
    said, last = continuation.lstrip(), re.search(r"\w+$", partial)
    return (len(partial) < MIN_OVERLAP and said[:1] == partial.lstrip()[:1]) or bool(
        last and said.startswith(last.group()))


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
    out = run(seam, answer[cut - overlap:], splits)
    if seam.failed:
        assert out == "" and reads_two_ways(answer[:cut], answer[cut:])
        return
    assert out == answer[cut:]
    assert seam.trimmed == overlap


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
    out = run(seam, (sent if echo else "") + continuation, splits)
    if seam.failed:
        assert out == "" and reads_two_ways(answer[:cut], answer[cut:])
        return
    assert out == answer[cut:]


@settings(max_examples=100, deadline=None)
@given(ANSWERS, st.data(), st.lists(st.integers(0, 400), max_size=8), st.booleans())
def test_a_continuation_that_started_over_is_refused(answer, data, splits, exact):
    assume(unambiguous(answer))
    cut = data.draw(st.integers(MIN_OVERLAP, len(answer) - 1))
    seam = Seam(answer[:cut], exact=exact)
    assert run(seam, answer, splits) == ""
    assert seam.failed


@settings(max_examples=500, deadline=None)
@given(cases(), st.sampled_from(list(ASKED)), st.lists(st.integers(0, 400), max_size=8))
def test_a_continuation_from_anywhere_near_the_cut_joins_exactly_or_is_refused(case, asked, splits):
    seam = case.seam(Delivered(case.partial, True), asked)
    out = run(seam, case.continuation(asked), splits)
    if seam.failed:
        assert out == "" and not case.common, (case, seam.refused)
    else:
        assert case.partial + out == case.answer, case


def test_a_cut_after_a_space_continued_a_few_words_back_joins_once():
    seam = Seam("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 ", exact=False)
    assert run(seam, " w8 w9 w10 w11 w12", []) == "w10 w11 w12"
    assert seam.trimmed == len(" w8 w9 ")
    for said_again in (" w9 w10", "w9\nw10", " w10", "\tw10", "w10"):  # one word, whitespace, nothing
        assert run(Seam("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 ", exact=False), said_again, []).strip() == "w10"


def test_whitespace_said_again_is_trimmed_but_not_what_the_continuation_adds_to_it():
    partial = "x = 1\ndef f():\n"  # (cut after a line end)
    for exact in (False, True):
        for continuation in ("    return x", "\n    return x", " f():\n    return x", "def f():\n    return x"):
            assert run(Seam(partial, exact=exact), continuation, []) == "    return x", continuation
    assert run(Seam("one two three four\n", exact=False), "\n\nfive", []) == "\nfive"  # (a line end more)
    assert run(Seam("one two three four ", exact=False), "\tfive", []) == "five"


def test_a_long_stretch_said_again_is_held_until_it_reaches_the_partials_end():
    partial = " ".join(f"word{i}" for i in range(2000))
    for head in (partial[-900:], partial[-900:].replace(" ", "\n")):  # (far more than the seam holds at first)
        seam = Seam(partial, exact=False)
        assert run(seam, head + " and the rest", list(range(0, 1000, 3))) == " and the rest"
        assert seam.trimmed == len(head)


def test_a_short_partial_said_again_from_its_start_is_trimmed_or_refused_never_appended():
    for exact in (False, True):
        trimmed = Seam("Sure", exact=exact)
        assert run(trimmed, "Sure, here is the answer.", []) == ", here is the answer."
        refused = Seam("Sure, ", exact=exact)
        assert run(refused, "Sure! Here is the answer.", []) == "" and refused.refused == "started over"


def test_a_word_said_again_longer_after_a_space_reads_two_ways_and_is_refused():
    seam = Seam("We went to the", exact=False)  # "the" + " theme park": "the" again, finished, or the next word?
    assert run(seam, " theme park by the sea.", []) == "" and seam.refused == "unclear seam"
    glued = Seam("We went to the", exact=False)  # (no space: "the" again, finished, or "the" + "theme"?)
    assert run(glued, "theme park by the sea.", []) == "" and glued.refused == "unclear seam"


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
