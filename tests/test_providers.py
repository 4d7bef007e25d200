import pytest

import protocols
from protocols import registry
from rewrite.config import ConfigError, parse
from rewrite.routing.router import Router
from tests.support import toy_protocol as toy


def router(text=""):
    return Router(parse(text))


def test_openai_paths_map_onto_an_overridden_base_url():
    r = router("providers: {openai: {base_url: 'http://127.0.0.1:9/v1'}}")
    p = r.provider_for("api.openai.com")
    assert p.upstream_url("/v1/chat/completions") == "http://127.0.0.1:9/v1/chat/completions"
    assert p.upstream_url("/v1/models") == "http://127.0.0.1:9/v1/models"


def test_anthropic_and_gemini_base_urls_are_host_roots():
    r = router("providers: {anthropic: {base_url: 'http://127.0.0.1:9'}, gemini: {base_url: 'http://127.0.0.1:9'}}")
    assert r.provider_for("api.anthropic.com").upstream_url("/v1/messages") == "http://127.0.0.1:9/v1/messages"
    g = r.provider_for("generativelanguage.googleapis.com")
    assert g.upstream_url("/v1beta/models/m:generateContent") == "http://127.0.0.1:9/v1beta/models/m:generateContent"


def test_declared_openai_compatible_provider_keeps_its_sdk_prefix():
    r = router(
        "providers: {openrouter: {kind: openai, hosts: [openrouter.ai], base_url: 'https://openrouter.ai/api/v1'},"
        " local: {kind: openai, hosts: [llm.internal], base_url: 'http://127.0.0.1:8000/v1', path_prefix: /api/v1}}"
    )
    assert r.provider_for("openrouter.ai").upstream_url("/api/v1/chat/completions") == (
        "https://openrouter.ai/api/v1/chat/completions"
    )
    assert r.provider_for("llm.internal").upstream_url("/api/v1/chat/completions") == (
        "http://127.0.0.1:8000/v1/chat/completions"
    )


def test_routes_recognise_generation_calls_and_leave_other_hosts_alone():
    r = router()
    assert r.route("api.openai.com", "POST", "/v1/chat/completions").protocol.name == "openai_chat"
    assert r.route("api.openai.com", "POST", "/v1/responses").protocol.name == "openai_responses"
    assert r.route("api.anthropic.com", "POST", "/v1/messages").protocol.name == "anthropic_messages"
    g = r.route("generativelanguage.googleapis.com", "POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent")
    assert g.protocol.name == "gemini"
    other = r.route("api.openai.com", "GET", "/v1/models")
    assert other is not None and other.protocol is None  # forwarded with only the credential changed
    assert r.route("API.OPENAI.COM", "POST", "/v1/chat/completions") is not None
    assert r.route("example.com", "POST", "/v1/chat/completions") is None
    assert r.route("api.openai.com", "PRI", "*") is None
    # A protocol of another family on a vendor host is not treated as a generation call.
    assert r.route("api.openai.com", "POST", "/v1/messages").protocol is None


def test_a_provider_kind_is_the_family_of_a_registered_protocol(monkeypatch):
    with pytest.raises(ConfigError, match=r"providers\.t\.kind: .*unknown kind 'toy': one of openai, anthropic, gemini"):
        router("providers: {t: {kind: toy, base_url: 'http://127.0.0.1:9/v1'}}")
    monkeypatch.setattr(registry, "_registrations", dict(registry._registrations))
    monkeypatch.setattr(registry, "_families", dict(registry._families))
    protocols.register(toy.REGISTRATION)
    r = router("providers: {t: {kind: toy, hosts: [api.toy.test], base_url: 'http://127.0.0.1:9/v1', keys: [k1]}}")
    p = r.provider_for("api.toy.test")
    assert p.authorize([(toy.KEY_HEADER, "mine")], "", "k1") == ([(toy.KEY_HEADER, "k1")], "")
    assert r.route("api.toy.test", "POST", "/v1/toy/completions").protocol.name == toy.NAME


def test_only_a_family_of_several_protocols_has_a_choice():
    with pytest.raises(ConfigError, match=r"providers\.t\.protocol: anthropic-kind providers have no choice"):
        router("providers: {t: {kind: anthropic, protocol: responses, base_url: 'http://x'}}")
    with pytest.raises(ConfigError, match=r"providers\.t\.protocol: .*unknown protocol 'messages': one of chat, responses"):
        router("providers: {t: {kind: openai, protocol: messages, base_url: 'http://x/v1'}}")
