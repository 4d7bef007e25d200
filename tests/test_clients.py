"""Client keys: the `clients` config, telling clients apart by the key their tool sends, and keeping a client's
own credential out of flows while it still goes upstream."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewrite.config import ConfigError, parse
from rewrite.intake.clients import NO_MATCH, SEVERAL, ClientKeys, Guesses, check, hide, presented
from rewrite.providers.credentials import CREDENTIAL_STYLES
from tests.support.timing import FakeClock

OPENAI, ANTHROPIC, GEMINI = (CREDENTIAL_STYLES[f] for f in ("openai", "anthropic", "gemini"))
A, B = "rk-aaa-0123456789abcdef", "rk-bbb-0123456789abcdef"  # client keys (16 characters at least)


def clients(text: str) -> ClientKeys:
    return ClientKeys(parse(text).clients)


def test_clients_config_with_env_references(monkeypatch):
    monkeypatch.setenv("TEAM_A_KEY", "rk-team-a-0123456789")
    cfg = parse("clients:\n  - {name: team-a, key: '${TEAM_A_KEY}'}\n  - {name: ci, key: rk-ci-abcdef-0123456}\n")
    assert [(c.name, c.key) for c in cfg.clients] == [("team-a", "rk-team-a-0123456789"),
                                                      ("ci", "rk-ci-abcdef-0123456")]
    assert parse("").clients == []


@pytest.mark.parametrize(
    "text, field",
    [
        ("clients: [{name: a}]", "clients.0.key"),
        ("clients: [{key: rk-1}]", "clients.0.name"),
        ("clients: [{name: a, key: ''}]", "clients.0.key"),
        ("clients: [{name: a, key: 'rk 1'}]", "clients.0.key"),
        ("clients: [{name: a, key: \"rk-1\\r\\nx-injected: yes\"}]", "clients.0.key"),
        ("clients: [{name: a, key: rk-1-0123456789abcdef, team: x}]", "clients.0.team"),
        ("clients: [{name: a, key: rk-1-0123456789abcdef}, {name: a, key: rk-2-0123456789abcdef}]", "clients"),
        ("clients: {a: rk-1}", "clients"),
    ],
)
def test_bad_clients_name_the_field(text, field):
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert str(e.value).startswith(field + ":"), e.value
    assert "\n" not in str(e.value)


def test_two_clients_with_one_key_are_refused_without_showing_it():
    with pytest.raises(ConfigError) as e:
        parse("clients: [{name: a, key: rk-secret-1-0123456789}, {name: b, key: rk-secret-1-0123456789}]")
    assert "'a' and 'b'" in str(e.value)
    assert "rk-secret-1" not in str(e.value)


def test_identify_names_the_client_whose_key_was_sent():
    keys = clients(f"clients: [{{name: team-a, key: {A}}}, {{name: team-b, key: {B}}}]")
    assert keys.identify([B]) == "team-b"
    assert keys.identify(["rk-nope", A]) == "team-a"
    assert keys.identify([A[:-1], A + "a", A.upper(), ""]) is None
    assert keys.identify([]) is None
    assert keys.identify(["rk-\udcff-surrogate", "ключ"]) is None  # undecodable or non-ASCII header bytes
    assert bool(keys) and not ClientKeys([])


@pytest.mark.parametrize(
    "style, headers, query, keys",
    [
        (OPENAI, [("Authorization", "Bearer rk-1")], "", ["rk-1"]),
        (OPENAI, [("authorization", "bearer  rk-1 ")], "", ["rk-1"]),
        (OPENAI, [("api-key", "rk-1")], "", ["rk-1"]),
        (OPENAI, [("x-api-key", "rk-1")], "key=rk-2", []),  # not where OpenAI clients carry a key
        (ANTHROPIC, [("x-api-key", "rk-1"), ("anthropic-version", "2023-06-01")], "", ["rk-1"]),
        (ANTHROPIC, [("Authorization", "Bearer rk-1")], "", ["rk-1"]),
        (GEMINI, [("x-goog-api-key", "rk-1")], "alt=sse", ["rk-1"]),
        (GEMINI, [], "alt=sse&key=rk%2D1", ["rk-1"]),
        (GEMINI, [("x-goog-api-key", "rk-1")], "key=rk-2", ["rk-1", "rk-2"]),
        (GEMINI, [], "", []),
    ],
)
def test_presented_reads_every_place_the_family_carries_a_key(style, headers, query, keys):
    assert presented(style, headers, query) == keys


def test_hide_masks_the_credential_and_restore_puts_it_back_exactly():
    headers = [("Host", "api.openai.com"), ("Authorization", "Bearer sk-client-0123456789abcdef"),
               ("api-key", "azure-key-0123456789"), ("Content-Type", "application/json")]
    shown, query, held = hide(OPENAI, headers, "")
    assert shown == [("Host", "api.openai.com"), ("Authorization", "Bearer sk…cdef"),
                     ("api-key", "…6789"), ("Content-Type", "application/json")]
    assert query == ""
    restored, _ = held.restore(shown, "")
    assert sorted(restored) == sorted(headers)


def test_hide_masks_the_query_key_and_keeps_the_rest_of_the_query_as_sent():
    query = "alt=sse&key=AIzaSyClientKey-0000-abcd&x=%20a+b"
    shown, masked_query, held = hide(GEMINI, [("x-goog-api-key", "AIzaSyClientKey-0000-wxyz")], query)
    assert shown == [("x-goog-api-key", "AI…wxyz")]
    assert masked_query == "alt=sse&key=AI%E2%80%A6abcd&x=%20a+b"
    assert "ClientKey" not in masked_query
    headers, restored = held.restore(shown, masked_query)
    assert restored == query
    assert headers == [("x-goog-api-key", "AIzaSyClientKey-0000-wxyz")]


def test_nothing_to_hide_is_nothing_held():
    shown, query, held = hide(ANTHROPIC, [("anthropic-version", "2023-06-01")], "beta=true")
    assert (shown, query, bool(held)) == ([("anthropic-version", "2023-06-01")], "beta=true", False)


# Header values as mitmproxy hands them over (any bytes, read as latin-1) and any query string.
header_values = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=80)
query_parts = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
queries = st.lists(st.one_of(query_parts, query_parts.map("key=".__add__)), max_size=5).map("&".join)


@settings(max_examples=300, deadline=None)
@given(value=header_values, other=header_values, query=queries, family=st.sampled_from(["openai", "anthropic", "gemini"]))
def test_any_client_credential_is_masked_and_restored_exactly(value, other, query, family):
    style = CREDENTIAL_STYLES[family]
    headers = [(style.client_headers[0], value), ("x-other", other)]
    shown, shown_query, held = hide(style, headers, query)
    assert shown[1] == ("x-other", other)  # nothing else changes
    restored, restored_query = held.restore(shown, shown_query)
    assert sorted(restored) == sorted(headers) and restored_query == query
    token = value.strip().partition(" ")[2].strip() if value.strip().lower().startswith("bearer ") else value.strip()
    if len(token) >= 7:  # (a shorter one may coincide with the two characters a mask keeps)
        assert token not in shown[0][1]
    keys = ClientKeys(parse(f"clients: [{{name: a, key: {A}}}]").clients)
    assert keys.identify(presented(style, headers, query)) in (None, "a")


def test_one_credential_per_request():
    keys, guesses = clients(f"clients: [{{name: team-a, key: {A}}}]"), Guesses()
    assert check(keys, guesses, "192.0.2.7", [A]).client == "team-a"
    assert check(keys, guesses, "192.0.2.7", [A, A, ""]).client == "team-a"  # the same key twice is one credential
    several = check(keys, guesses, "192.0.2.7", ["rk-guess", A])
    assert (several.client, several.status, several.reason) == (None, 401, SEVERAL)
    assert check(keys, guesses, "192.0.2.7", []).reason == NO_MATCH


def test_failed_attempts_are_limited_per_address_and_window():
    clock = FakeClock()
    keys, guesses = clients(f"clients: [{{name: team-a, key: {A}}}]"), Guesses(burst=3, window=60, clock=clock)
    for _ in range(5):
        assert check(keys, guesses, "192.0.2.7", []).status == 401  # no key at all is not an attempt
    assert [check(keys, guesses, "192.0.2.7", [f"rk-guess-{i}"]).status for i in range(3)] == [401] * 3
    clock.now += 20
    limited = [check(keys, guesses, "192.0.2.7", [key]) for key in ("rk-guess-4", A, A)]
    assert [(v.status, v.retry_after, v.client) for v in limited] == [(429, 40, None)] * 3  # the right key too
    assert [v.tell for v in limited] == [True, False, False]  # logged once per address and window
    assert check(keys, guesses, "192.0.2.8", [A]).client == "team-a"  # another address has its own budget
    clock.now += 40
    assert check(keys, guesses, "192.0.2.7", [A]).client == "team-a"  # the window is over
