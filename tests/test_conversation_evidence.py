"""Conversation evidence (protocols/evidence.py and each protocol's reader): what a request says about its
conversation, read from its headers and body: the pins another account would refuse, the client's own session id,
the cache it asks for, and a lineage that ignores what clients rewrite between turns."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols
from protocols.evidence import DEPTH, CacheLifetime, content_mark, session_of
from protocols.pins import (
    PIN_CACHED_CONTENT,
    PIN_CONVERSATION,
    PIN_ENCRYPTED_CONTENT,
    PIN_ITEM_REFERENCE,
    PIN_PREVIOUS_RESPONSE,
    Kept,
    Pin,
    StateCall,
)
from protocols.registry import cache_minimum
from protocols.sessions import DEFAULT_SESSION_SOURCES, Session, SessionSource

NAMES = ("openai_chat", "openai_responses", "anthropic_messages", "gemini")
SESSION = "0b7e3c1a-5d2f-4f6e-9a31-2c8d7e6f5a40"
LONG = "x" * 5000


def read(name: str, body: object, headers=(), **kwargs):
    reader = protocols.registered(name).evidence
    assert reader is not None
    return reader.read(headers, body, **kwargs)


# ------------------------------------------------------------------------------------------------------------------
# The client's session id


def claude(**fields) -> dict:
    return {"model": "claude-opus-4-8", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}


def test_claude_codes_session_is_read_from_its_header_first_then_from_metadata_user_id():
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": SESSION})
    body = claude(metadata={"user_id": user_id})
    assert read("anthropic_messages", body).session == Session("body:metadata.user_id#session_id", SESSION)
    header = read("anthropic_messages", body, [("X-Claude-Code-Session-Id", "from-header")])
    assert header.session == Session("header:x-claude-code-session-id", "from-header")


def test_claude_codes_older_user_id_names_the_session_at_its_end_and_a_plain_user_id_names_none():
    legacy = claude(metadata={"user_id": f"user_{'a' * 64}_account__session_{SESSION}"})
    assert read("anthropic_messages", legacy).session == Session("body:metadata.user_id#session_id", SESSION)
    assert read("anthropic_messages", claude(metadata={"user_id": "user-42"})).session is None
    assert read("anthropic_messages", claude(metadata={"user_id": "{not json"})).session is None


@pytest.mark.parametrize("header", ["session_id", "session-id", "thread-id"])
def test_codexs_thread_id_headers_name_its_session(header):
    body = {"model": "gpt-6.1-sol", "input": "hi"}
    assert read("openai_responses", body, {header: SESSION}).session == Session(f"header:{header}", SESSION)


def test_prompt_cache_key_names_the_session_when_no_header_does():
    body = {"model": "gpt-5.5", "input": "hi", "prompt_cache_key": SESSION}
    assert read("openai_responses", body).session == Session("body:prompt_cache_key", SESSION)
    chat = {"model": "gpt-5.5", "messages": [], "prompt_cache_key": SESSION}
    assert read("openai_chat", chat, [("session-id", "thread")]).session == Session("header:session-id", "thread")


@pytest.mark.parametrize("header", ["x-opencode-session", "x-session-affinity", "X-Session-Id"])
def test_opencodes_session_headers_name_its_session(header):
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    assert read("openai_chat", body, [(header, "ses_abc")]).session.value == "ses_abc"


def test_gemini_clis_code_assist_envelope_names_its_session_and_is_read_inside():
    inner = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "session_id": SESSION}
    envelope = {"model": "gemini-2.5-flash", "project": "p", "user_prompt_id": "u1", "request": inner}
    evidence = read("gemini", envelope)
    assert evidence.session == Session("body:request.session_id", SESSION)
    assert evidence.links == read("gemini", inner).links and evidence.messages == 1


def test_session_sources_are_configurable_and_an_invalid_one_is_refused_with_its_form():
    sources = (SessionSource.parse("body:metadata.conversation"), SessionSource.parse(" header:X-Thread "))
    assert [str(s) for s in sources] == ["body:metadata.conversation", "header:x-thread"]
    body = claude(metadata={"conversation": 7})
    assert read("anthropic_messages", body, {"x-thread": "t"}, sources=sources).session.value == "7"
    assert read("anthropic_messages", body, {"x-claude-code-session-id": "s"}, sources=sources[1:]).session is None
    assert read("anthropic_messages", body, {"x-claude-code-session-id": "s"}, sources=()).session is None
    for bad in ("cookie:x", "header:", "session_id", "body:a#user", "header:x#session_id"):
        with pytest.raises(ValueError, match="session source"):
            SessionSource.parse(bad)


def test_a_session_id_is_bounded_and_an_empty_or_non_text_one_is_passed_over():
    headers = [("x-claude-code-session-id", "  "), ("session_id", "s" * 1000)]
    assert session_of(headers, {}, DEFAULT_SESSION_SOURCES).value == "s" * 200
    assert session_of([], {"prompt_cache_key": True}, DEFAULT_SESSION_SOURCES) is None


# ------------------------------------------------------------------------------------------------------------------
# Pins


def test_responses_pins_name_what_only_the_issuing_organization_accepts_newest_first():
    old, new = "gAAAAB" + "o" * 900, "gAAAAB" + "n" * 900
    body = {"model": "gpt-5.5", "previous_response_id": "resp_9", "conversation": {"id": "conv_1"}, "input": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": old},
        {"type": "item_reference", "id": "msg_7"},
        {"type": "reasoning", "summary": [], "encrypted_content": new},
        {"role": "user", "content": "go on"},
    ]}
    assert read("openai_responses", body).pins == (
        Pin(PIN_PREVIOUS_RESPONSE, "resp_9"), Pin(PIN_CONVERSATION, "conv_1"),
        Pin(PIN_ENCRYPTED_CONTENT, content_mark(new)), Pin(PIN_ITEM_REFERENCE, "msg_7"),
        Pin(PIN_ENCRYPTED_CONTENT, content_mark(old)))
    assert content_mark(new) != content_mark(old) and len(content_mark(new)) < 120


def test_a_gemini_cached_content_is_a_pin_and_the_other_protocols_have_none_in_plain_requests():
    evidence = read("gemini", {"cachedContent": "cachedContents/abc", "contents": []})
    assert evidence.pins == (Pin(PIN_CACHED_CONTENT, "cachedContents/abc"),)
    assert evidence.cache_lifetime == CacheLifetime(None, "cachedContent")
    assert read("anthropic_messages", claude()).pins == ()
    assert read("openai_chat", {"messages": [{"role": "user", "content": "hi"}]}).pins == ()


def test_a_gemini_cache_named_without_its_collection_is_the_same_pin():
    assert read("gemini", {"cached_content": "abc", "contents": []}).pins == (Pin(PIN_CACHED_CONTENT,
                                                                                  "cachedContents/abc"),)


CACHE = Pin(PIN_CACHED_CONTENT, "cachedContents/abc")


@pytest.mark.parametrize("method, path, call", [
    ("POST", "/v1beta/cachedContents", StateCall(None)),
    ("GET", "/v1beta/cachedContents/abc", StateCall(CACHE)),
    ("PATCH", "/v1beta/cachedContents/abc", StateCall(CACHE)),
    ("DELETE", "/v1/cachedContents/abc", StateCall(CACHE, deletes=True)),
    ("GET", "/v1beta/cachedContents", None),  # (the project's list: no one cache's)
    ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", None),
    ("GET", "/v1beta/models", None),
])
def test_geminis_cache_calls_are_state_calls_that_name_their_cache(method, path, call):
    reader = protocols.registered("gemini").evidence
    assert reader.state_call(method, path) == call
    assert protocols.registered("anthropic_messages").evidence.state_call(method, path) is None


def test_a_gemini_cache_answer_says_which_cache_the_account_holds_and_for_how_long():
    reader = protocols.registered("gemini").evidence
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    made = {"name": "cachedContents/abc", "model": "models/gemini-2.5-flash", "expireTime": "2026-01-01T01:00:00.5Z"}
    assert reader.kept(StateCall(None), {"ttl": "60s"}, made, now) == Kept(CACHE, 3600.5)
    assert reader.kept(StateCall(None), {"ttl": "90s"}, {"name": "cachedContents/abc"}, now) == Kept(CACHE, 90.0)
    assert reader.kept(StateCall(CACHE), None, {"name": "cachedContents/abc"}, now) == Kept(CACHE, None)
    assert reader.kept(StateCall(CACHE, deletes=True), None, {}, now) is None
    assert reader.kept(StateCall(None), {}, {"error": {"code": 400}}, now) is None
    assert reader.kept(StateCall(None), {}, {"name": "tunedModels/x"}, now) is None


STORED = Pin(PIN_PREVIOUS_RESPONSE, "resp_abc")
CONV = Pin(PIN_CONVERSATION, "conv_abc")


@pytest.mark.parametrize("method, path, call", [
    ("GET", "/v1/responses/resp_abc", StateCall(STORED)),
    ("DELETE", "/v1/responses/resp_abc", StateCall(STORED, deletes=True)),
    ("POST", "/v1/responses/resp_abc/cancel", StateCall(STORED)),
    ("GET", "/v1/responses/resp_abc/input_items", StateCall(STORED)),
    ("GET", "/openai/v1/responses/resp_abc", StateCall(STORED)),  # (a base URL's own prefix)
    ("POST", "/v1/responses", None),
    ("POST", "/v1/responses/input_tokens", None),
    ("POST", "/v1/responses/compact", None),
    ("PATCH", "/v1/responses/resp_abc", None),
    ("POST", "/v1/conversations", StateCall(None)),
    ("GET", "/v1/conversations/conv_abc", StateCall(CONV)),
    ("POST", "/v1/conversations/conv_abc", StateCall(CONV)),
    ("DELETE", "/v1/conversations/conv_abc", StateCall(CONV, deletes=True)),
    ("GET", "/v1/conversations/conv_abc/items", StateCall(CONV)),
    ("POST", "/v1/conversations/conv_abc/items", StateCall(CONV)),
    ("GET", "/v1/conversations/conv_abc/items/msg_1", StateCall(CONV)),
    ("DELETE", "/v1/conversations/conv_abc/items/msg_1", StateCall(CONV)),  # (the conversation stays)
    ("GET", "/v1/conversations", None),
    ("GET", "/v1/models", None),
])
def test_responses_stored_response_and_conversation_calls_are_state_calls_that_name_their_pin(method, path, call):
    """A stored response's calls name it by the pin its answer was bound by, the id a later turn names."""
    assert protocols.registered("openai_responses").evidence.state_call(method, path) == call
    assert protocols.registered("openai_chat").evidence.state_call(method, path) is None


def test_a_made_conversation_is_kept_without_expiry_and_a_stored_responses_calls_make_nothing():
    reader = protocols.registered("openai_responses").evidence
    made = {"id": "conv_abc", "object": "conversation", "created_at": 1_767_225_600, "metadata": {}}
    assert reader.kept(StateCall(None), {}, made, 0.0) == Kept(CONV, None)
    assert reader.kept(StateCall(CONV), None, made, 0.0) == Kept(CONV, None)
    assert reader.kept(StateCall(Pin(PIN_CONVERSATION, "conv_other")), None, made, 0.0) is None
    deleted = {"id": "conv_abc", "object": "conversation.deleted", "deleted": True}
    assert reader.kept(StateCall(CONV, deletes=True), None, deleted, 0.0) is None
    assert reader.kept(StateCall(CONV), None, {"object": "list", "data": []}, 0.0) is None
    assert reader.kept(StateCall(STORED), None, {"id": "resp_abc", "object": "response"}, 0.0) is None
    assert reader.kept(StateCall(None), {}, {"error": {"message": "bad"}}, 0.0) is None


# ------------------------------------------------------------------------------------------------------------------
# The cache a request asks for


def blocks(*texts: str, marked: int | None = None, ttl: str | None = None) -> list[dict]:
    out: list[dict] = [{"type": "text", "text": t} for t in texts]
    if marked is not None:
        out[marked]["cache_control"] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return out


def test_anthropic_caches_up_to_its_last_marker_for_as_long_as_its_longest_ttl():
    unmarked = claude(system="S", messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    evidence = read("anthropic_messages", unmarked)
    assert evidence.cache_prefix is None and evidence.cache_lifetime is None  # no marker: nothing is cached
    in_system = {**unmarked, "system": blocks("S", marked=0, ttl="1h")}
    evidence = read("anthropic_messages", in_system)
    assert evidence.cache_prefix == evidence.root and evidence.cache_lifetime == CacheLifetime(3600, "cache_control ttl 1h")
    both = {**in_system, "messages": [{"role": "user", "content": blocks("a", marked=0)},
                                      {"role": "assistant", "content": "b"}]}
    evidence = read("anthropic_messages", both)
    assert evidence.cache_prefix == evidence.links[1] and evidence.cache_lifetime.seconds == 3600
    automatic = {**unmarked, "cache_control": {"type": "ephemeral"}}
    evidence = read("anthropic_messages", automatic)
    assert evidence.cache_prefix == evidence.links[-1] == evidence.links[2]
    assert evidence.cache_lifetime == CacheLifetime(300, "cache_control ttl 5m")


def test_openai_caches_its_root_for_the_retention_asked():
    body = {"model": "gpt-5.5", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
            "prompt_cache_retention": "24h"}
    evidence = read("openai_chat", body)
    assert evidence.cache_prefix == evidence.root and evidence.messages == 1  # the system message is in the root
    assert evidence.cache_lifetime == CacheLifetime(86400, "prompt_cache_retention 24h")
    assert read("openai_chat", {**body, "prompt_cache_retention": "in_memory"}).cache_lifetime.seconds == 600
    assert read("openai_responses", {"input": "hi"}).cache_lifetime is None  # not asked: the vendor's default


def test_openais_explicit_breakpoints_set_the_prefix_and_the_longest_ttl_wins():
    part = {"type": "input_text", "text": "doc", "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"}}
    body = {"input": [{"role": "user", "content": [part]}, {"role": "user", "content": "q"}],
            "prompt_cache_options": {"mode": "auto", "ttl": "30m"}}
    evidence = read("openai_responses", body)
    assert evidence.cache_prefix == evidence.links[1] != evidence.links[-1]
    assert evidence.cache_lifetime == CacheLifetime(43200, "prompt_cache_breakpoint ttl 12h")


def test_the_prompt_size_is_estimated_at_four_characters_a_token():
    body = claude(system="s" * 4000, messages=[{"role": "user", "content": "u" * 8000}])
    assert 2900 <= read("anthropic_messages", body).prompt_tokens <= 3100


def test_with_the_bodys_size_the_whole_prompt_counts_not_only_the_messages_read():
    history = [{"role": "user" if n % 2 == 0 else "assistant", "content": "h" * 4000} for n in range(5 * DEPTH)]
    body = claude(messages=[*history, {"role": "user", "content": "now"}])
    size = len(json.dumps(body).encode())
    assert read("anthropic_messages", body).prompt_tokens < DEPTH * 1100  # (the texts read: the last messages)
    assert read("anthropic_messages", body, size=size).prompt_tokens == size // 4 > 5 * DEPTH * 1000


@pytest.mark.parametrize(("family", "model", "tokens"), [
    ("anthropic", "claude-opus-5", 512), ("anthropic", "claude-fable-5-1", 512), ("anthropic", "claude-opus-4-8", 1024),
    ("anthropic", "claude-sonnet-4-6", 1024), ("anthropic", "claude-opus-4-7", 2048),
    ("anthropic", "claude-haiku-4-5-20251001", 4096), ("anthropic", "claude-opus-4-6", 4096),
    ("openai", "gpt-5.5", 1024), ("openai", "o4-mini", 1024), ("gemini", "models/gemini-2.5-flash", 2048),
    ("gemini", "gemini-3.1-pro-preview", 4096), ("openai", "deepseek-chat", None), ("anthropic", "claude-next", None),
])
def test_the_fewest_tokens_a_model_caches_are_the_vendors_documented_ones(family, model, tokens):
    assert cache_minimum(family, model) == tokens


# ------------------------------------------------------------------------------------------------------------------
# What clients rewrite between turns leaves the lineage as it was


def test_claude_codes_billing_header_thinking_and_moved_markers_leave_the_links_alone():
    first = claude(system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=1a2b;"},
                           {"type": "text", "text": "You are Claude Code."}],
                   messages=[{"role": "user", "content": "fix it"},
                             {"role": "assistant", "content": [
                                 {"type": "thinking", "thinking": "hm", "signature": "sig"},
                                 {"type": "text", "text": "done", "cache_control": {"type": "ephemeral"}}]}])
    again = claude(system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=9f8e;"},
                           {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
                   messages=[{"role": "user", "content": [{"type": "text", "text": "fix it"}]},
                             {"role": "assistant", "content": [{"type": "text", "text": "done"}]}])
    assert read("anthropic_messages", first).links == read("anthropic_messages", again).links


def test_responses_string_input_is_the_user_message_it_stands_for():
    as_string = read("openai_responses", {"instructions": "I", "input": "hi"})
    as_item = read("openai_responses", {"instructions": "I", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]})
    assert as_string.links == as_item.links and as_string.messages == 1


def test_a_long_text_is_marked_by_its_length_and_ends_and_a_change_there_changes_the_link():
    base = read("openai_chat", {"messages": [{"role": "user", "content": LONG}]})
    assert read("openai_chat", {"messages": [{"role": "user", "content": LONG[:-1] + "y"}]}).links != base.links
    assert read("openai_chat", {"messages": [{"role": "user", "content": LONG + "x"}]}).links != base.links
    middle = LONG[:2500] + "y" + LONG[2501:]  # (documented: inside a long text, away from its ends, unseen)
    assert read("openai_chat", {"messages": [{"role": "user", "content": middle}]}).links == base.links


def test_gemini_thoughts_and_signatures_are_left_out():
    call = {"functionCall": {"name": "ls", "args": {"path": "."}}}
    plain = {"contents": [{"role": "user", "parts": [{"text": "go"}]}, {"role": "model", "parts": [call]}]}
    rewritten = {"contents": [{"role": "user", "parts": [{"text": "go"}]}, {"role": "model", "parts": [
        {"text": "let me think", "thought": True}, {**call, "thoughtSignature": "skip_thought_signature_validator"}]}]}
    assert read("gemini", plain).links == read("gemini", rewritten).links


# ------------------------------------------------------------------------------------------------------------------
# Any body


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["role", "content", "type", "text", "parts", "messages", "input", "contents",
                                         "system", "tools", "cache_control", "ttl", "request", "encrypted_content",
                                         "metadata", "user_id", "tool_calls", "function", "name", "id"]),
                        inner, max_size=5), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(body=JSON, name=st.sampled_from(NAMES))
def test_any_json_body_gives_evidence_and_never_an_exception(body, name):
    evidence = read(name, body, [("x-session-id", "\udcff")])
    assert evidence.session is not None and evidence.prompt_tokens >= 0
    if isinstance(body, dict):
        assert 1 <= len(evidence.links) <= min(evidence.messages, DEPTH) + 1


def test_a_responses_request_names_its_encrypted_reasoning_as_foreign_state_and_goes_without_what_is_named():
    reader = protocols.registered("openai_responses").evidence
    old, new = "A" * 300, "B" * 300
    body = {"input": [{"role": "user", "content": "hi"},
                      {"type": "reasoning", "summary": [], "encrypted_content": old},
                      {"type": "compaction", "encrypted_content": "C" * 300},
                      {"type": "reasoning", "summary": [], "encrypted_content": new},
                      {"role": "user", "content": "more"}]}
    marks = reader.foreign(body)
    assert len(marks) == 2  # (the reasoning items: a compaction holds the summary, which cannot go)
    kept = reader.without(body, {marks[0]})
    assert [i.get("encrypted_content") for i in kept["input"]] == [None, "C" * 300, new, None]
    assert reader.without(body, {"unknown"}) is None
    assert protocols.registered("anthropic_messages").evidence.foreign(body) == ()
