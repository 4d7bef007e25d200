"""Pooled keys as plain strings or {key, organization, project}, and the headers of the client's own account that
must not travel beside a pooled key."""

import pytest

from rewrite.config import ConfigError, parse
from rewrite.providers import build


def provider(text: str, name: str = "openai"):
    return next(p for p in build(parse(text)) if p.name == name)


def test_keys_may_be_strings_or_mappings(monkeypatch):
    monkeypatch.setenv("ORG_B", "org-bbbb")
    cfg = parse("providers: {openai: {keys: [sk-a, {key: sk-b, organization: '${ORG_B}', project: proj_b}]}}")
    keys = cfg.providers["openai"].keys
    assert [(k.key, k.organization, k.project) for k in keys] == [("sk-a", None, None), ("sk-b", "org-bbbb", "proj_b")]
    p = provider("providers: {openai: {keys: [sk-a, {key: sk-b, organization: org-b, project: proj_b}]}}")
    assert p.pool.keys == ["sk-a", "sk-b"]


@pytest.mark.parametrize(
    "text, field",
    [
        ("providers: {openai: {keys: [{organization: org-1}]}}", "providers.openai.keys.0.key"),
        ("providers: {openai: {keys: [sk-a, {key: sk-b, org: x}]}}", "providers.openai.keys.1.org"),
        ("providers: {openai: {keys: [{key: sk-a, project: 'p 1'}]}}", "providers.openai.keys.0.project"),
        ("providers: {openai: {keys: [{key: sk-a, organization: \"o\\r\\nx: y\"}]}}", "providers.openai.keys.0.organization"),
        ("providers: {openai: {keys: ['  ']}}", "providers.openai.keys.0.key"),
        ("providers: {anthropic: {keys: [{key: sk-ant, organization: org-1}]}}", "providers.anthropic.keys.0.organization"),
        ("providers: {gemini: {keys: [g-1, {key: g-2, project: p}]}}", "providers.gemini.keys.1.project"),
    ],
)
def test_bad_key_entries_name_the_field(text, field):
    with pytest.raises(ConfigError) as e:
        build(parse(text))
    assert str(e.value).startswith(field + ":"), e.value


CLIENT_HEADERS = [
    ("Authorization", "Bearer sk-client"),
    ("OpenAI-Organization", "org-client"),
    ("OpenAI-Project", "proj_client"),
    ("Cookie", "session=client"),
    ("x-goog-user-project", "client-gcp-project"),
    ("anthropic-version", "2023-06-01"),
    ("content-type", "application/json"),
]


def test_a_pooled_key_replaces_the_clients_account_headers():
    p = provider("providers: {openai: {keys: [sk-a]}}")
    headers, _ = p.authorize(CLIENT_HEADERS, "", "sk-a")
    assert headers == [
        ("x-goog-user-project", "client-gcp-project"),  # (not an OpenAI header: left alone)
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-a"),
    ]


def test_a_pooled_key_brings_its_own_organization_and_project():
    p = provider("providers: {openai: {keys: [sk-a, {key: sk-b, organization: org-b, project: proj_b}, "
                 "{key: sk-c, project: proj_c}]}}")
    assert dict(p.authorize(CLIENT_HEADERS, "", "sk-b")[0]) == {
        "x-goog-user-project": "client-gcp-project", "anthropic-version": "2023-06-01",
        "content-type": "application/json", "authorization": "Bearer sk-b",
        "OpenAI-Organization": "org-b", "OpenAI-Project": "proj_b",
    }
    names = [n.lower() for n, _ in p.authorize(CLIENT_HEADERS, "", "sk-c")[0]]
    assert "openai-organization" not in names and names.count("openai-project") == 1
    assert "openai-organization" not in [n.lower() for n, _ in p.authorize(CLIENT_HEADERS, "", "sk-a")[0]]


@pytest.mark.parametrize("family, dropped", [("anthropic", {"cookie"}), ("gemini", {"cookie", "x-goog-user-project"})])
def test_other_families_drop_their_account_headers(family, dropped):
    p = provider(f"providers: {{{family}: {{keys: [k-1]}}}}", family)
    names = {n.lower() for n, _ in p.authorize(CLIENT_HEADERS, "", "k-1")[0]}
    assert not names & dropped
    assert {"anthropic-version", "content-type"} <= names
