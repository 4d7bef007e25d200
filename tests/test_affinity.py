"""A request's conversation affinity for its pool (rewrite/plugins/affinity/ `affinity_of`), from its evidence; the
`affinity` settings (rewrite/config.py)."""

from __future__ import annotations

import pickle

import pytest

from protocols.evidence import CacheLifetime, Evidence, session_of
from protocols.pins import Pin
from protocols.sessions import DEFAULT_SESSION_SOURCES, Session, SessionSource, SessionSources
from rewrite.config import ConfigError, parse
from rewrite.plugins.affinity import affinity_of
from rewrite.pool.affinity import DEFAULT_TTL, PIN_TTL, answer_pin

SESSION = Session("header:x-claude-code-session-id", "abc-123")


def test_a_session_and_its_lineage_are_looked_up_deepest_link_first_then_the_session():
    evidence = Evidence(session=SESSION, links=(0x10, 0x11, 0x12), prompt_tokens=5000, messages=40)
    a = affinity_of(evidence, "alice", 1024)
    assert a is not None
    assert a.lookup == ("l:alice:0000000000000012", "l:alice:0000000000000011", "s:alice:abc-123")
    assert a.bind == ("s:alice:abc-123", "l:alice:0000000000000012")
    assert a.name == "s:alice:abc-123" and a.session == "s:alice:abc-123"
    assert a.depth == 40 and a.ttl == DEFAULT_TTL and not a.hard
    assert a.said == "session header:x-claude-code-session-id"


def test_without_a_session_the_conversation_is_named_by_its_deepest_link():
    a = affinity_of(Evidence(links=(1, 2, 3, 4)), "10.0.0.7", None)
    assert a is not None and a.session is None and a.said == "lineage"
    assert a.name == a.bind[0] == a.lookup[0] == "l:10.0.0.7:0000000000000004" and a.bind == (a.name,)


def test_the_root_alone_names_no_conversation():
    assert affinity_of(Evidence(links=(7,)), "alice", None) is None
    assert affinity_of(Evidence(), "alice", None) is None


def test_every_link_read_is_looked_up_deepest_first():
    a = affinity_of(Evidence(links=tuple(range(9))), "c", None)
    assert a is not None and a.lookup == tuple(f"l:c:{n:016x}" for n in range(8, 0, -1))


def test_ids_are_scoped_by_client():
    evidence = Evidence(session=SESSION, links=(1, 2))
    a, b = affinity_of(evidence, "alice", None), affinity_of(evidence, "bob", None)
    assert a is not None and b is not None and not set(a.lookup) & set(b.lookup)


def test_a_prompt_under_the_models_cache_minimum_has_no_affinity_unless_pinned():
    evidence = Evidence(session=SESSION, links=(1, 2), prompt_tokens=500)
    assert affinity_of(evidence, "alice", 1024) is None
    assert affinity_of(evidence, "alice", None) is not None  # (a model the tables do not name)
    pinned = Evidence(pins=(Pin("previous_response_id", "resp_1"),), links=(1, 2), prompt_tokens=10)
    a = affinity_of(pinned, "alice", 1024)
    assert a is not None and a.hard and a.ttl == PIN_TTL and a.said == "previous_response_id"
    assert a.lookup == ("p:alice:previous_response_id:resp_1", "l:alice:0000000000000002")
    assert a.lookup[0] == answer_pin("alice", "previous_response_id", "resp_1")
    assert a.bind == ("l:alice:0000000000000002", "p:alice:previous_response_id:resp_1")


def test_a_hard_pin_is_bound_again_by_the_request_it_served_unless_sent_whole_without_it():
    evidence = Evidence(pins=(Pin("conversation", "conv_1"), Pin("encrypted_content", "mark")), links=(1, 2),
                        prompt_tokens=5000)
    a = affinity_of(evidence, "alice", 1024)
    assert a is not None and a.bind == ("l:alice:0000000000000002", "p:alice:conversation:conv_1")
    whole = a.unpinned()
    assert whole.bind == ("l:alice:0000000000000002",) and not any(i.startswith("p:") for i in whole.lookup)


def test_encrypted_reasoning_pins_but_is_not_hard_another_keys_request_goes_without_it():
    evidence = Evidence(pins=(Pin("encrypted_content", "mark"),), links=(1, 2), prompt_tokens=5000,
                        cache_lifetime=CacheLifetime(3600, "1h"))
    a = affinity_of(evidence, "alice", 1024)
    assert a is not None and not a.hard and a.ttl == 3600 and a.lookup[0] == "p:alice:encrypted_content:mark"


def test_pins_alone_name_the_conversation():
    a = affinity_of(Evidence(pins=(Pin("cachedContent", "cachedContents/x"),)), "alice", 4096)
    assert a is not None and a.lookup == ("p:alice:cachedContent:cachedContents/x",) == a.bind
    assert a.name == a.lookup[0]


def test_the_binding_lives_as_long_as_the_request_asks_its_cache_to():
    asked = Evidence(session=SESSION, cache_lifetime=CacheLifetime(3600, "cache_control.ttl 1h"))
    a = affinity_of(asked, "alice", None)
    assert a is not None and a.ttl == 3600.0
    vendor = Evidence(session=SESSION, cache_lifetime=CacheLifetime(None, "cachedContent"))
    b = affinity_of(vendor, "alice", None, default_ttl=120.0)
    assert b is not None and b.ttl == 120.0


def test_the_config_turns_affinity_on_by_default_and_per_provider():
    config = parse("affinity: {mode: off}\nproviders: {openai: {affinity: on}}")
    assert config.affinity_on("openai") and not config.affinity_on("anthropic")
    default = parse("")
    assert default.affinity.mode == "on" and default.affinity.wait == 2.0
    assert default.affinity.sources == DEFAULT_SESSION_SOURCES and default.affinity_on("openai")
    assert parse("providers: {openai: {affinity: off}}").affinity_on("openai") is False
    assert parse("affinity: {sessions: ['header:X-My-Session']}").affinity.sources == (
        SessionSource("header", "x-my-session"),)


def test_a_configs_session_sources_are_worked_out_once_and_read_alike_after_going_to_the_big_body_worker():
    """A config's sources (`SessionSources`: their header names and body paths worked out once, not per request)
    read as the plain sources do, and keep what reading them takes when pickled for the big-body worker."""
    sources = parse("affinity: {sessions: ['header:X-Thread', 'body:metadata.conversation']}").affinity.sources
    assert isinstance(sources, SessionSources) and sources.names == {"x-thread"}
    assert pickle.loads(pickle.dumps(sources)).steps == sources.steps
    for headers, body in (([("X-Thread", "t")], {}), ([], {"metadata": {"conversation": 7}}), ([], {"metadata": 7})):
        assert session_of(headers, body, sources) == session_of(headers, body, tuple(sources))
    assert session_of([("X-Thread", "t")], {"metadata": {"conversation": 7}}, sources) == Session("header:x-thread", "t")


@pytest.mark.parametrize("text, error", [
    ("affinity: {sessions: ['head:x']}", r"^affinity\.sessions: .*session source 'head:x': expected header:<name>"),
    ("affinity: {wait: 0}", r"^affinity\.wait: "),
    ("affinity: {mode: maybe}", r"^affinity\.mode: "),
    ("providers: {openai: {affinity: sometimes}}", r"^providers\.openai\.affinity: "),
])
def test_a_wrong_affinity_setting_stops_start_up_with_one_line_naming_it(text, error):
    with pytest.raises(ConfigError, match=error) as e:
        parse(text)
    assert "\n" not in str(e.value)
