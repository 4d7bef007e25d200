"""Answers that survive a cut (issue 21), as a user sees them: the official SDKs through a real mitmdump, a stream
(or a non-stream answer Rotator streams upstream and folds) cut after its first words by a clean end, a reset or a
stall, and the fake vendor answering the continuation. The client gets one answer, exactly the uncut text, with a
normal ending and the first attempt's id; the flow says what was done.
"""

from __future__ import annotations

import time
import warnings

import pytest

from tests.support import continuation as asking
from tests.support.clients import FINISH, MODELS, PROMPT, call, make_client
from tests.support.fake_vendor import INPUT_TOKENS, TEXT, TOOL_ARGUMENTS, TOOL_NAME, Fault, split_text
from tests.support.reliability import (
    ANSWER_ID,
    DELTAS,
    FAMILY,
    FAST,
    FIRST_TOKEN_TIMEOUT,
    PREFIX,
    PROVIDER_HOST,
    STALL,
    UNHURRIED,
    assert_truncated,
    flow_line,
    pool,
    stream,
    warmed,
)
from tests.support.routing import CLIENTS, VIA, model_via, routing_config

pytestmark = pytest.mark.e2e

RESUMABLE = ["chat", "responses", "anthropic", "gemini"]
CUTS = {
    "cut-clean": Fault.cut_after(deltas=DELTAS, how="clean"),
    "cut-reset": Fault.cut_after(deltas=DELTAS, how="reset"),
    "stall": Fault.stall_after(deltas=DELTAS, seconds=20.0),
}
REST = TEXT[len(PREFIX):]  # what a continuation that goes on exactly says
# How each test model is asked to go on: Claude 4.5 and Gemini 2.5 continue a trailing assistant turn.
METHOD = {"chat": "instruction", "responses": "instruction", "anthropic": "prefill", "gemini": "prefill"}


def continuation_text(call_body: dict) -> str:
    """The partial answer a continuation request carries, whichever protocol it is in."""
    turns = call_body.get("messages") or call_body.get("input") or call_body.get("contents") or []
    said = []
    for turn in turns:
        if turn.get("role") in ("assistant", "model"):
            content = turn.get("content", turn.get("parts"))
            if isinstance(content, str):
                said.append(content)
            else:
                said += [part.get("text", "") for part in content or () if isinstance(part, dict)]
    return "".join(said)


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("protocol", RESUMABLE)
def test_a_cut_stream_is_continued_into_one_answer(fake_vendor, rotator, protocol, cut):
    warmed(rotator, fake_vendor, protocol, streaming=FAST if cut == "stall" else UNHURRIED)
    fake_vendor.script(CUTS[cut], Fault().continuing())  # exactly the rest after a prefill; 8 characters of overlap

    seen = stream(protocol)

    assert seen.text == TEXT, seen
    assert seen.finish == FINISH[protocol]["text"]
    assert seen.ids == {ANSWER_ID[protocol].format(0)}  # one answer: the first attempt's id throughout
    first, continuation = fake_vendor.calls()
    assert continuation.continued == METHOD[protocol]
    assert continuation_text(continuation.body) == PREFIX  # the partial answer, as the assistant's turn


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("protocol", RESUMABLE)
def test_a_cut_non_stream_answer_is_continued_before_it_is_folded(fake_vendor, rotator, protocol, cut):
    warmed(rotator, fake_vendor, protocol, streamed=False, streaming=FAST if cut == "stall" else UNHURRIED)
    fake_vendor.script(CUTS[cut], Fault().continuing())

    result = call(protocol, make_client(protocol), stream=False)

    assert result.text == TEXT
    assert result.finish == FINISH[protocol]["text"]
    assert len(fake_vendor.calls()) == 2


OVERLAP = "llo from"  # the last 8 characters the client already has, said again by a continuation asked in words


@pytest.mark.parametrize("protocol", [p for p in RESUMABLE if METHOD[p] == "instruction"])
def test_the_repeated_start_of_a_continuation_is_trimmed_at_the_seam(fake_vendor, rotator, protocol):
    warmed(rotator, fake_vendor, protocol, streaming=UNHURRIED)
    fake_vendor.script(CUTS["cut-reset"], Fault().ok(OVERLAP + REST))

    seen = stream(protocol)

    assert seen.text == TEXT


@pytest.mark.parametrize("protocol", RESUMABLE)
def test_a_continuation_that_starts_over_is_not_spliced_and_the_answer_ends_honestly(fake_vendor, rotator, protocol):
    warmed(rotator, fake_vendor, protocol, streaming=UNHURRIED)
    fake_vendor.script(CUTS["cut-reset"], Fault().ok(TEXT), Fault().ok(TEXT))  # twice the whole answer again

    seen = stream(protocol)

    assert seen.text == PREFIX  # nothing of a restart reached the client
    assert_truncated(protocol, seen)
    assert len(fake_vendor.calls()) == 3  # the cut answer, then resume.max_attempts (2) continuations


@pytest.mark.parametrize("protocol", RESUMABLE)
def test_a_continuation_that_is_itself_cut_is_continued_again(fake_vendor, rotator, protocol):
    warmed(rotator, fake_vendor, protocol, streaming=UNHURRIED)
    fake_vendor.script(CUTS["cut-reset"], Fault().continuing().cut_after(deltas=3, how="reset"), Fault().continuing())

    seen = stream(protocol)

    assert seen.text == TEXT, seen
    assert seen.finish == FINISH[protocol]["text"]
    first, cut_again, last = fake_vendor.calls()
    assert len(continuation_text(last.body)) > len(continuation_text(cut_again.body)) == len(PREFIX)
    assert TEXT.startswith(continuation_text(last.body))  # what the client had after the second cut


@pytest.mark.parametrize("protocol", RESUMABLE)
def test_resume_off_for_a_provider_ends_its_cut_streams_honestly(fake_vendor, rotator, protocol):
    provider = FAMILY[protocol]
    warmed(rotator, fake_vendor, protocol, streaming=UNHURRIED, providers={provider: {"resume": {"mode": "off"}}})
    fake_vendor.script(CUTS["cut-reset"], Fault().ok(REST))

    seen = stream(protocol)

    assert seen.text == PREFIX
    assert_truncated(protocol, seen)
    assert len(fake_vendor.calls()) == 1


@pytest.mark.parametrize("protocol", ["anthropic", "gemini"])
def test_a_model_that_refuses_prefill_is_asked_in_words_from_then_on(fake_vendor, rotator, protocol):
    proxy = rotator(streaming=UNHURRIED, fresh=True)
    refusing = Fault().continuing().refusing_prefill()
    fake_vendor.script(CUTS["cut-reset"], refusing, refusing, CUTS["cut-reset"], refusing)

    assert stream(protocol).text == TEXT
    assert stream(protocol).text == TEXT

    calls = fake_vendor.calls()
    assert len(calls) == 5  # the refused prefill is not asked again for the second answer
    assert calls[1].status == 400
    assert [calls[2].continued, calls[4].continued] == ["instruction", "instruction"]
    proxy.wait_log("refused the prefill")


@pytest.mark.parametrize("protocol", RESUMABLE)
def test_each_seam_is_recorded_on_the_saved_flow_and_logged(fake_vendor, rotator, tmp_path, protocol):
    path = tmp_path / "flows.mitm"
    proxy = rotator(streaming=UNHURRIED, fresh=True, args=("-w", str(path)))
    fake_vendor.script(CUTS["cut-reset"], Fault().ok(REST))

    assert stream(protocol).text == TEXT
    log = proxy.wait_log(flow_line(protocol))
    proxy.proc.stop()

    flow = vendor_flow(path, PROVIDER_HOST[FAMILY[protocol]])
    [seam] = flow.metadata["rotator"]["resume"]
    method = METHOD[protocol]
    assert seam == {"position": len(PREFIX), "method": method, "target": f"{FAMILY[protocol]}/{MODELS[protocol]}",
                    "trimmed": 0, "outcome": "spliced"}
    assert flow.comment.startswith(f"resumed 1× ({method})"), flow.comment
    assert not any(key.encode() in path.read_bytes() for key in pool(protocol))
    tag = f"rotator: {FAMILY[protocol]} {flow.id[:8]}: resumed:"
    assert sum(tag in line for line in log.splitlines()) == 1, log


def test_a_continued_answer_that_resumed_from_a_gemini_token_says_the_token_was_not_carried(fake_vendor, rotator,
                                                                                           tmp_path):
    """A Gemini client resuming its vendor's `CONTINUATION` stop: its stream is cut and Rotator continues it with the
    partial answer, which no continuation can join to the token (the token's answer is the vendor's alone). The
    continuation goes without it, and the flow's seam says so."""
    from google.genai import types

    path = tmp_path / "flows.mitm"
    proxy = rotator(streaming=UNHURRIED, fresh=True, args=("-w", str(path)))
    fake_vendor.script(CUTS["cut-reset"], Fault().ok(REST))
    config = types.GenerateContentConfig(continuation_token="Q0hFQ0tQT0lOVC0x")

    assert stream("gemini", config=config).text == TEXT
    first, continued = fake_vendor.wait_for(2)
    assert first.body["continuationToken"] == "Q0hFQ0tQT0lOVC0x" and "continuationToken" not in continued.body
    proxy.wait_log(flow_line("gemini"))
    proxy.proc.stop()

    [seam] = vendor_flow(path, PROVIDER_HOST["gemini"]).metadata["rotator"]["resume"]
    assert (seam["outcome"], seam["dropped"]) == ("spliced", ["continuationToken"])


def vendor_flow(path, host: str):
    """The one flow to `host` in the saved flows at `path`."""
    with warnings.catch_warnings():  # mitmproxy's flow filters use pyparsing's deprecated names
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy import io as mitmio
    with path.open("rb") as f:
        [flow] = [f for f in mitmio.FlowReader(f).stream() if f.request.pretty_host == host]
    return flow


WORDS = " ".join(f"w{i}" for i in range(16))
AFTER_A_SPACE = [f"w{i} " for i in range(10)]  # the deltas the client got: its partial ends "... w8 w9 "
HEAD = " w8 w9 "  # the continuation starts two words back, as models asked to go on do


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("protocol", RESUMABLE)
def test_a_cut_after_a_space_continued_a_few_words_back_reads_every_word_once(fake_vendor, rotator, protocol,
                                                                            streamed):
    warmed(rotator, fake_vendor, protocol, streamed=streamed, streaming=UNHURRIED)
    partial = "".join(AFTER_A_SPACE)
    cut = Fault().in_pieces(*AFTER_A_SPACE, WORDS[len(partial):]).cut_after(deltas=len(AFTER_A_SPACE), how="reset")
    fake_vendor.script(cut, Fault().ok(HEAD + WORDS[len(partial):]))

    result = call(protocol, make_client(protocol), stream=streamed)

    assert result.text == WORDS  # not "... w8 w9 w8 w9 w10 ..."
    assert result.finish == FINISH[protocol]["text"]
    first, continued = fake_vendor.calls()
    method, sent = asking.asked(continued.protocol, continued.body)
    assert method == METHOD[protocol] and sent.rstrip() == partial.rstrip()


def test_a_continuation_the_client_leaves_is_recorded_with_what_the_vendor_billed(fake_vendor, rotator, tmp_path):
    """The client leaves while the continuation is under way (it has had some of it): the flow still says what was
    asked and how it ended, the log says it once, and the usage counts the input the vendor billed for it too."""
    path = tmp_path / "flows.mitm"
    proxy = rotator(streaming={**FAST, "idle_timeout": STALL}, fresh=True, args=("-w", str(path)))
    longer = TEXT + ", " + " ".join(f"more{i}" for i in range(20))  # (past what the seam holds before deciding)
    fake_vendor.script(Fault().ok(longer).cut_after(deltas=DELTAS, how="reset"),
                       Fault().ok(longer).continuing().stall_after(deltas=16, seconds=STALL))

    text = ""
    with make_client("anthropic").messages.stream(model=MODELS["anthropic"], max_tokens=256,
                                                   messages=[{"role": "user", "content": PROMPT}]) as answer:
        for event in answer:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
                if len(text) > len(PREFIX):
                    break  # the continuation is coming through: the client leaves
    assert longer.startswith(text)
    log = proxy.wait_log("client left")
    proxy.proc.stop()

    with warnings.catch_warnings():  # mitmproxy's flow filters use pyparsing's deprecated names
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy import io as mitmio
    with path.open("rb") as f:
        [flow] = [f for f in mitmio.FlowReader(f).stream() if f.request.pretty_host == PROVIDER_HOST["anthropic"]]
    [seam] = flow.metadata["rotator"]["resume"]
    assert seam == {"position": len(PREFIX), "method": "prefill", "target": f"anthropic/{MODELS['anthropic']}",
                    "trimmed": 0, "outcome": "client left"}
    assert flow.metadata["rotator"]["usage"]["input_tokens"] == 2 * INPUT_TOKENS  # the cut answer's, and again
    tag = f"rotator: anthropic {flow.id[:8]}: resumed:"
    assert sum(tag in line for line in log.splitlines()) == 1, log


def test_a_client_that_leaves_at_the_ending_still_gets_a_flow_with_its_seam(fake_vendor, rotator, tmp_path):
    """The OpenAI SDK closes its connection at [DONE]; the continuation's vendor holds its connection open a moment
    after it (as vendors may). mitmproxy ends the flow as the client leaves: the flow still says what the engine
    recorded after that ending (the seam, the usage of both calls)."""
    path = tmp_path / "flows.mitm"
    proxy = rotator(streaming=UNHURRIED, fresh=True, args=("-w", str(path)))
    fake_vendor.script(CUTS["cut-reset"], Fault().ok(REST).stall_after(events=10**6, seconds=0.8))

    assert stream("chat").text == TEXT
    proxy.wait_log(flow_line("chat"))
    proxy.proc.stop()

    with warnings.catch_warnings():  # mitmproxy's flow filters use pyparsing's deprecated names
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy import io as mitmio
    with path.open("rb") as f:
        [flow] = [f for f in mitmio.FlowReader(f).stream() if f.request.pretty_host == PROVIDER_HOST["openai"]]
    [seam] = flow.metadata["rotator"]["resume"]
    assert seam["outcome"] == "spliced"
    assert flow.comment.startswith("resumed 1× (instruction)"), flow.comment
    assert flow.metadata["rotator"]["usage"]["output_tokens"] > 0
    assert flow.error is None  # (the client left with its whole answer)


# ------------------------------------------------------------------------------------------------------------------
# Routed: the cut answer and its continuation are translated; a continuation whose target fails before its first
# token goes to the route's next target.

ROUTED_PAIRS = [(c, u) for c in RESUMABLE for u in CLIENTS if c != u]


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize(("client", "upstream"), ROUTED_PAIRS, ids=[f"{c}-via-{u}" for c, u in ROUTED_PAIRS])
def test_a_routed_answer_cut_in_another_protocol_is_continued(fake_vendor, rotator, client, upstream, streamed):
    rotator(routing_config(fake_vendor.url))
    fake_vendor.script(CUTS["cut-reset"], Fault().ok(REST))

    result = call(client, make_client(client), stream=streamed, model=model_via(upstream))

    assert result.text == TEXT
    assert result.finish == FINISH[client]["text"]
    assert result.input_tokens == INPUT_TOKENS  # the request's input, though the cut stream never counted it
    first, continuation = fake_vendor.calls()
    assert (continuation.protocol, continuation.model) == VIA[upstream][2:0:-1]
    assert continuation_text(continuation.body) == PREFIX


@pytest.mark.parametrize("client", RESUMABLE)
def test_a_continuation_whose_target_fails_goes_to_the_next_target_translated(fake_vendor, rotator, client):
    rotator(routing_config(fake_vendor.url))
    # Anthropic cut, then its continuation fails on both its keys (retried once): DeepSeek (Chat) goes on.
    fake_vendor.script(CUTS["cut-reset"], Fault.status(500), Fault.status(500), Fault().ok(REST))

    result = call(client, make_client(client), stream=True, model="two-targets")

    assert result.text == TEXT
    assert result.finish == FINISH[client]["text"]
    calls = fake_vendor.calls()
    assert [c.protocol for c in calls] == ["anthropic", "anthropic", "anthropic", "chat"]
    assert continuation_text(calls[-1].body) == PREFIX


@pytest.mark.parametrize("protocol", ["responses"])
def test_no_continuation_starts_past_the_deadline(fake_vendor, rotator, protocol):
    # The first continuation's attempts stall until their first-token timeouts (on two keys, the second's cut short
    # by the deadline of one and a half timeouts): past the deadline, no second continuation is asked and the answer
    # ends honestly.
    warmed(rotator, fake_vendor, protocol, streaming={**FAST, "first_token_retries": 1},
           resume={"deadline": 1.5 * FIRST_TOKEN_TIMEOUT})
    stalled = Fault.stall_before_headers(20.0)
    fake_vendor.script(CUTS["cut-reset"], stalled, stalled, Fault().ok(REST))

    seen = stream(protocol)

    assert seen.text == PREFIX
    assert_truncated(protocol, seen)
    assert len(fake_vendor.calls()) == 3


SLOW_FIRST_TOKEN = 6.0  # a continuation's first-token timeout far past its resume deadline
STALLS = {"no-headers": Fault.stall_before_headers(STALL), "no-first-token": Fault.stall_after_headers(STALL)}


@pytest.mark.parametrize("stall", list(STALLS))
@pytest.mark.parametrize("protocol", ["chat", "anthropic"])
def test_the_deadline_bounds_the_continuation_under_way(fake_vendor, rotator, protocol, stall):
    # Continuations that never answer, on two keys with 6 s first-token timeouts each: the 1.5 s deadline ends the
    # one under way, and the answer ends honestly then (not after a first-token timeout, let alone two).
    deadline = 1.5
    warmed(rotator, fake_vendor, protocol,
           streaming={**FAST, "first_token_timeout": SLOW_FIRST_TOKEN, "first_token_retries": 1},
           resume={"deadline": deadline})
    fake_vendor.script(CUTS["cut-reset"])
    fake_vendor.always(STALLS[stall])

    began = time.monotonic()
    seen = stream(protocol)
    took = time.monotonic() - began

    assert seen.text == PREFIX
    assert_truncated(protocol, seen)
    assert took < deadline + SLOW_FIRST_TOKEN, took
    assert len(fake_vendor.calls()) == 2  # the cut answer and one continuation, abandoned at the deadline


# ------------------------------------------------------------------------------------------------------------------
# Tool calls are never half-sent: a cut inside one leaves the client nothing of it, and the model makes it again.

CALL_TEXT = "Let me check."
HALF_A_CALL = Fault.tool_call(text=CALL_TEXT).cut_after(deltas=len(split_text(CALL_TEXT)) + 1, how="reset")
FRAGMENTED = ["chat", "responses", "anthropic"]  # (Gemini sends a function call whole)


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("protocol", [p for p in RESUMABLE if p in FRAGMENTED])
def test_a_cut_inside_a_tool_call_gives_the_client_the_call_once_and_whole(fake_vendor, rotator, protocol, streamed):
    warmed(rotator, fake_vendor, protocol, streamed=streamed, streaming=UNHURRIED)
    fake_vendor.script(HALF_A_CALL, Fault.tool_call())

    result = call(protocol, make_client(protocol), stream=streamed, tools=True)

    assert result.text == CALL_TEXT
    assert result.tool_calls == [(TOOL_NAME, TOOL_ARGUMENTS)]
    assert result.finish == FINISH[protocol]["tool"]
    first, continuation = fake_vendor.calls()
    assert continuation_text(continuation.body) == CALL_TEXT  # the text before the call; nothing of the call


# A cut inside the answer's first tool call leaves the client nothing (the call is held back): there is nothing to go
# on from, so the continuation is the request again as it came. A vendor that takes only alternating roles would
# refuse an instruction to continue with no assistant turn before it (two user turns in a row) on every key.
FIRST_A_CALL = Fault.tool_call().cut_after(deltas=1, how="reset")  # the answer's first output: cut in its arguments
STRICT_CALL = Fault.tool_call().alternating()
IN_WORDS = {"anthropic": {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}}  # no prefill


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("protocol", FRAGMENTED)
def test_a_cut_inside_the_first_tool_call_asks_the_request_again(fake_vendor, rotator, protocol, streamed):
    proxy = warmed(rotator, fake_vendor, protocol, streamed=streamed, streaming=UNHURRIED)
    fake_vendor.script(FIRST_A_CALL)
    fake_vendor.always(STRICT_CALL)

    result = call(protocol, make_client(protocol), stream=streamed, tools=True, **IN_WORDS.get(protocol, {}))

    assert result.tool_calls == [(TOOL_NAME, TOOL_ARGUMENTS)], result
    assert result.finish == FINISH[protocol]["tool"]
    first, again = fake_vendor.calls()
    assert again.body == first.body and again.status == 200
    proxy.wait_log(f"resumed: asked again on {FAMILY[protocol]}/{MODELS[protocol]} (nothing of the answer")


@pytest.mark.parametrize("client", [c for c in RESUMABLE if c != "responses"])
def test_a_routed_cut_inside_the_first_tool_call_asks_the_request_again(fake_vendor, rotator, client):
    # (a Gemini client too: its function call comes whole, once the target's is)
    rotator(routing_config(fake_vendor.url))
    fake_vendor.script(FIRST_A_CALL)
    fake_vendor.always(STRICT_CALL)

    result = call(client, make_client(client), stream=True, tools=True, model=model_via("responses"))

    assert result.tool_calls == [(TOOL_NAME, TOOL_ARGUMENTS)], result
    assert result.finish == FINISH[client]["tool"]
    first, again = fake_vendor.calls()
    assert again.body == first.body and again.status == 200
