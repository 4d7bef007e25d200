"""What the official SDKs show a user of one streamed call through Rotator, and the checks the reliability tests
share: one clean answer, a truncated ending, a retry on a second pooled key."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from rewrite.pool import STALL_REST
from tests.support.clients import FINISH, MODELS, PROMPT, TRUNCATED, WEATHER_SCHEMA, call, make_client
from tests.support.fake_vendor import TEXT, TOOL_NAME, split_text
from tests.support.harness import POOL_KEYS
from tests.support.timing import MARGIN, QUIET, wait_until  # noqa: F401  (e2e tests import MARGIN from here)

FAMILY = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
PROVIDER_HOST = {
    "openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "gemini": "generativelanguage.googleapis.com",
}

# Short enough for a stall test to be quick, long enough that a vendor starved of CPU for a second (four test
# workers on two cores) is not taken for a stalled one on the calls meant to be answered at once (a retry's).
FIRST_TOKEN_TIMEOUT = 2.0
IDLE_TIMEOUT = 2.0
FAST = {"first_token_timeout": FIRST_TOKEN_TIMEOUT, "idle_timeout": IDLE_TIMEOUT}
# For a test of cuts and answers, not of stalls: timeouts a loaded machine does not reach. With a 1 s FAST, an
# attempt whose vendor was starved of CPU for a second (four test workers on two cores) timed out, its retry took
# the answer scripted for the next call, and the test of a cut saw another answer than the one it scripted.
UNHURRIED = {"first_token_timeout": 10.0, "idle_timeout": 10.0}
# Cut answers not continued: the honest ending alone (what `resume: {mode: off}` keeps exactly as it was).
RESUME_OFF = {"mode": "off"}
STALL = 20.0  # a vendor stall far longer than any configured timeout: without Rotator the client would wait it out
DELTAS = 2  # where mid-answer faults act: after the second text fragment
PREFIX = "".join(split_text(TEXT)[:DELTAS])  # "Hello from": the text the vendor sent before the fault

# The id the SDK's answer carries, for the vendor's request number i: tells which attempt the client was served by.
ANSWER_ID = {"chat": "chatcmpl-fake{}", "responses": "resp_fake{}", "anthropic": "msg_fake{}", "gemini": "fakeresp{}"}


@dataclass
class Seen:
    text: str = ""
    finish: str | None = None  # chat: last chunk's finish_reason; responses: final status; anthropic: final
    #                            message's stop_reason; gemini: last chunk's candidates[0].finish_reason
    finishes: list[str] = field(default_factory=list)  # chat, gemini: every finish reason any chunk carried
    ids: set[str] = field(default_factory=set)  # every answer id the SDK saw (one clean answer: exactly one)
    types: list[str] = field(default_factory=list)  # event types (responses, anthropic)
    final: Any = None  # last chunk / response of the last response.* event / final message / last chunk
    tool_fragments: int = 0  # tool-call argument fragments the SDK yielded


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def stream(protocol: str, client: Any = None, tools: bool = False, seen: Seen | None = None, **extra: Any) -> Seen:
    """One streamed call through the protocol's official SDK (`extra`: more of the request, `store=False`); `seen`
    (if given) is filled in as events arrive, so a test still has the text received before the SDK raised."""
    client = client or make_client(protocol)
    s = seen if seen is not None else Seen()
    if protocol == "chat":
        kwargs: dict = dict(extra)
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {"name": TOOL_NAME, "parameters": WEATHER_SCHEMA}}]
        messages = [{"role": "user", "content": PROMPT}]
        for chunk in client.chat.completions.create(model=MODELS["chat"], messages=messages, stream=True, **kwargs):
            s.ids.add(chunk.id)
            s.final = chunk
            for choice in chunk.choices:
                s.text += choice.delta.content or ""
                calls = choice.delta.tool_calls or ()
                s.tool_fragments += sum(1 for tc in calls if tc.function and tc.function.arguments)
            s.finishes += [c.finish_reason for c in chunk.choices if c.finish_reason]
            s.finish = chunk.choices[0].finish_reason if chunk.choices else s.finish
    elif protocol == "responses":
        kwargs = dict(extra)
        if tools:
            kwargs["tools"] = [{"type": "function", "name": TOOL_NAME, "parameters": WEATHER_SCHEMA}]
        for event in client.responses.create(model=MODELS["responses"], input=PROMPT, stream=True, **kwargs):
            s.types.append(event.type)
            if event.type == "response.output_text.delta":
                s.text += event.delta
            elif event.type == "response.function_call_arguments.delta":
                s.tool_fragments += 1
            response = getattr(event, "response", None)
            if response is not None:
                s.ids.add(response.id)
                s.final, s.finish = response, response.status
    elif protocol == "anthropic":
        kwargs = dict(extra)
        if tools:
            kwargs["tools"] = [{"name": TOOL_NAME, "input_schema": WEATHER_SCHEMA}]
        args = dict(model=MODELS["anthropic"], max_tokens=256, messages=[{"role": "user", "content": PROMPT}], **kwargs)
        with client.messages.stream(**args) as st:
            for event in st:
                s.types.append(event.type)
                if event.type == "message_start":
                    s.ids.add(event.message.id)
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta":
                        s.text += event.delta.text
                    elif event.delta.type == "input_json_delta" and event.delta.partial_json:
                        s.tool_fragments += 1
            s.final = st.get_final_message()
        s.finish = s.final.stop_reason
    elif protocol == "gemini":
        for chunk in client.models.generate_content_stream(model=MODELS["gemini"], contents=PROMPT, **extra):
            s.ids.add(chunk.response_id)
            s.final = chunk
            candidate = chunk.candidates[0] if chunk.candidates else None
            if candidate and candidate.content and candidate.content.parts:
                s.text += "".join(p.text or "" for p in candidate.content.parts)
            s.finish = _enum(candidate.finish_reason) if candidate and candidate.finish_reason else None
            s.finishes += [s.finish] if s.finish else []
    else:
        raise ValueError(protocol)
    return s


_WARM: set[tuple[int, str, bool]] = set()


def warmed(rotator, vendor, protocol: str, streamed: bool = True, **config: Any):
    """The proxy for `config`, after one plain call of the same kind through it (once per worker), and a handle
    whose log starts after that call. The first call through a new proxy builds the SDK's response models and
    the proxy's certificate for the vendor host, which costs seconds on a busy machine: not what a test times."""
    proxy = rotator(**config)
    no_key_resting(proxy)
    if (proxy.port, protocol, streamed) not in _WARM:
        call(protocol, make_client(protocol), stream=streamed)
        proxy.wait_log(flow_line(protocol))
        vendor.reset()
        _WARM.add((proxy.port, protocol, streamed))
    return rotator(**config)


def no_key_resting(proxy, timeout: float = 25.0) -> None:
    """Wait until no pooled key of this (perhaps shared) proxy rests from an earlier test, as its status page shows.
    A test that checks a retry went to the *other* key needs one ready: with the others resting longer than the key
    that just failed, the retry rightly waits for that one. Keys resting after a stall are waited for only while
    their rest outlasts the one a stall in this test would start (STALL_REST: 5 s after each stall test; a key that
    stalled in two tests in a row, with no answer between, rests twice as long), a retry then still takes the key
    whose rest ends first. (A test whose failure does not rest its key, and so would retry it while the others rest
    after a stall, takes a proxy without stall tests.)"""
    with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as http:
        def rests() -> list:
            page = http.get("http://rotator.status/", params={"format": "json"}).json()
            return [r for p in page["providers"] if p["pool"] for k in p["pool"]["keys"] for r in k["resting"]
                    if not r["why"].startswith("stalled") or r["seconds"] > STALL_REST]

        wait_until(lambda: not rests(), timeout, "no key resting (but briefly after a stall)")


def flow_line(protocol: str) -> str:
    """What mitmdump's flow listing (one line per flow, when it ends) holds for a call of this protocol."""
    return f": POST https://{PROVIDER_HOST[FAMILY[protocol]]}/"


def assert_one_clean_answer(protocol: str, seen: Seen, served_by: int) -> None:
    """The full text with a normal finish, every piece of it from the vendor's request number `served_by`."""
    summary = f"text={seen.text!r} finish={seen.finish!r} answer ids={seen.ids}"
    assert seen.text == TEXT, summary
    assert seen.finish == FINISH[protocol]["text"], summary
    assert seen.ids == {ANSWER_ID[protocol].format(served_by)}, summary


def assert_truncated(protocol: str, seen: Seen) -> None:
    """The protocol's "ran out of tokens" ending, as the SDK reports it."""
    if protocol == "chat":
        assert seen.final.choices[0].finish_reason == "length"  # the last chunk
        assert seen.finishes == ["length"]
    elif protocol == "responses":
        assert "response.incomplete" in seen.types
        assert "response.completed" not in seen.types
        assert seen.final.status == "incomplete"
        assert seen.final.incomplete_details.reason == "max_output_tokens"
    elif protocol == "anthropic":
        assert seen.final.stop_reason == "max_tokens"
    else:
        assert seen.finish == TRUNCATED["gemini"]  # "MAX_TOKENS", on the last chunk
        assert seen.finishes == ["MAX_TOKENS"]


def pool(protocol: str) -> list[str]:
    return POOL_KEYS[FAMILY[protocol]]


def two_keys(vendor, protocol: str) -> tuple[Any, Any]:
    """The vendor saw exactly two generation requests, on two different pooled keys."""
    first, second = vendor.wait_for(2, timeout=10, done=False)[:2]
    calls = vendor.calls()
    assert len(calls) == 2, [(r.credential, r.outcome) for r in calls]
    assert first.credential != second.credential
    assert {first.credential, second.credential} <= set(pool(protocol))
    return first, second


def assert_rotator_retried(proxy, protocol: str, retries: int = 1) -> None:
    """The client sent one request and Rotator made the retries: the SDKs retry 429/5xx themselves (OpenAI's and
    Anthropic's do, twice), which would also show the vendor two keys."""
    proxy.wait_log(flow_line(protocol))
    time.sleep(QUIET)  # stays: absence. Room for a second flow line, if the SDK retried
    log = proxy.log
    flows = [line for line in log.splitlines() if flow_line(protocol) in line]
    assert len(flows) == 1, f"the client sent {len(flows)} requests:\n{log[-3000:]}"
    notes = re.findall(rf"rotator: {FAMILY[protocol]} \w+: retry: .*", log)
    assert len(notes) == retries, notes
