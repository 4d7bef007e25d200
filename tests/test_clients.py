"""Client keys: the `clients` config, telling clients apart by the key their tool sends, and keeping a client's
own credential out of flows while it still goes upstream."""

import pytest

from rewrite.clients import ClientKeys, hide, presented
from rewrite.config import ConfigError, parse
from rewrite.credentials import CREDENTIAL_STYLES

OPENAI, ANTHROPIC, GEMINI = (CREDENTIAL_STYLES[f] for f in ("openai", "anthropic", "gemini"))


def clients(text: str) -> ClientKeys:
    return ClientKeys(parse(text).clients)


def test_clients_config_with_env_references(monkeypatch):
    monkeypatch.setenv("TEAM_A_KEY", "rk-team-a-0123456789")
    cfg = parse("clients:\n  - {name: team-a, key: '${TEAM_A_KEY}'}\n  - {name: ci, key: rk-ci-abcdef}\n")
    assert [(c.name, c.key) for c in cfg.clients] == [("team-a", "rk-team-a-0123456789"), ("ci", "rk-ci-abcdef")]
    assert parse("").clients == []


@pytest.mark.parametrize(
    "text, field",
    [
        ("clients: [{name: a}]", "clients.0.key"),
        ("clients: [{key: rk-1}]", "clients.0.name"),
        ("clients: [{name: a, key: ''}]", "clients.0.key"),
        ("clients: [{name: a, key: 'rk 1'}]", "clients.0.key"),
        ("clients: [{name: a, key: \"rk-1\\r\\nx-injected: yes\"}]", "clients.0.key"),
        ("clients: [{name: a, key: rk-1, team: x}]", "clients.0.team"),
        ("clients: [{name: a, key: rk-1}, {name: a, key: rk-2}]", "clients"),
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
        parse("clients: [{name: a, key: rk-secret-1}, {name: b, key: rk-secret-1}]")
    assert "'a' and 'b'" in str(e.value)
    assert "rk-secret-1" not in str(e.value)


def test_identify_names_the_client_whose_key_was_sent():
    keys = clients("clients: [{name: team-a, key: rk-aaa}, {name: team-b, key: rk-bbb}]")
    assert keys.identify(["rk-bbb"]) == "team-b"
    assert keys.identify(["rk-nope", "rk-aaa"]) == "team-a"
    assert keys.identify(["rk-aa", "rk-aaaa", "RK-AAA", ""]) is None
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
    assert shown == [("Host", "api.openai.com"), ("Authorization", "Bearer sk-c…cdef"),
                     ("api-key", "azur…6789"), ("Content-Type", "application/json")]
    assert query == ""
    restored, _ = held.restore(shown, "")
    assert sorted(restored) == sorted(headers)


def test_hide_masks_the_query_key_and_keeps_the_rest_of_the_query_as_sent():
    query = "alt=sse&key=AIzaSyClientKey-0000-abcd&x=%20a+b"
    shown, masked_query, held = hide(GEMINI, [("x-goog-api-key", "AIzaSyClientKey-0000-wxyz")], query)
    assert shown == [("x-goog-api-key", "AIza…wxyz")]
    assert masked_query == "alt=sse&key=AIza%E2%80%A6abcd&x=%20a+b"
    assert "ClientKey" not in masked_query
    headers, restored = held.restore(shown, masked_query)
    assert restored == query
    assert headers == [("x-goog-api-key", "AIzaSyClientKey-0000-wxyz")]


def test_nothing_to_hide_is_nothing_held():
    shown, query, held = hide(ANTHROPIC, [("anthropic-version", "2023-06-01")], "beta=true")
    assert (shown, query, bool(held)) == ([("anthropic-version", "2023-06-01")], "beta=true", False)
