import dataclasses
import json

import pytest

import protocols
from protocols import registry
from protocols.base import Protocol
from protocols.errors import anthropic_error, gemini_error, openai_error
from protocols.families import CredentialStyle, Family
from protocols.sse import SSEParser
from protocols.vendor_errors import GENERIC
from tests.support import samples
from tests.support.streams import parse

EXPECTED = {
    "openai_chat": ("openai", b": keepalive\n"),
    "openai_responses": ("openai", b": keepalive\n"),
    "anthropic_messages": ("anthropic", b'event: ping\ndata: {"type": "ping"}\n\n'),
    "gemini": ("gemini", None),
    "bedrock_converse": ("bedrock", None),
}


def test_the_five_protocols_are_registered_in_order():
    assert [p.name for p in protocols.all()] == list(EXPECTED)
    for protocol in protocols.all():
        assert (protocol.family, protocol.heartbeat) == EXPECTED[protocol.name]
        assert protocols.get(protocol.name) is protocol


def test_unknown_name_raises():
    with pytest.raises(KeyError):
        protocols.get("cohere")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models"), ("POST", "/v1/embeddings"), ("POST", "/v1/messages/count_tokens"), ("POST", "/"), ("GET", "/v1/responses/resp_1")],
)
def test_detect_ignores_other_calls(method, path):
    assert protocols.detect(method, path) is None


def test_heartbeats_dispatch_nothing_and_leave_the_next_event_as_it_was():
    """A heartbeat is a whole block (Anthropic's ping) or a comment line that joins the next event (OpenAI's)."""
    block = b'data: {"x":1}\n\n'
    for protocol in protocols.all():
        if protocol.heartbeat is not None:
            parser = SSEParser()
            alone = parser.feed(protocol.heartbeat)
            repairer = protocol.repairer({})
            assert b"".join(repairer.feed(e) for e in alone) + parser.pending == protocol.heartbeat
            assert not repairer.started
            assert [e.data for e in parse(protocol.heartbeat * 2 + block)][-1] == '{"x":1}'


class Fifth(Protocol):
    name = "fifth"
    family = "fifth"

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/v1/fifth"


@pytest.fixture
def isolated(monkeypatch):
    """What a test registers is known to it alone."""
    monkeypatch.setattr(registry, "_registrations", dict(registry._registrations))
    monkeypatch.setattr(registry, "_families", dict(registry._families))


def test_a_fifth_protocol_is_one_register_call_and_brings_its_family(isolated):
    chat = protocols.registered("openai_chat")
    own = Family("fifth", CredentialStyle("x-fifth-key", "{}", ("x-fifth-key",)))
    fifth = protocols.register(dataclasses.replace(chat, protocol=Fifth(), family=own)).protocol
    assert protocols.detect("POST", "/v1/fifth") is fifth
    assert registry.families()[-1] == "fifth" and registry.credential("fifth").header == "x-fifth-key"
    assert registry.errors("fifth", "fifth") is GENERIC  # nothing but the HTTP hints: no dialect of OpenAI's
    assert protocols.get("fifth") is fifth
    assert protocols.all()[-1] is fifth
    assert protocols.detect("POST", "/v1/chat/completions") is protocols.get("openai_chat")


def test_samples_are_complete_for_their_protocol():
    for name, (protocol_name, body) in samples.STREAMS.items():
        repairer = protocols.get(protocol_name).repairer({})
        for event in parse(body):
            repairer.feed(event)
        assert repairer.complete and repairer.started and not repairer.failed, name


@pytest.mark.parametrize(
    ("status", "openai_type", "anthropic_type", "gemini_status", "gemini_code"),
    [
        (400, "invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT", 400),
        (402, "invalid_request_error", "billing_error", "FAILED_PRECONDITION", 402),
        (413, "invalid_request_error", "request_too_large", "FAILED_PRECONDITION", 413),
        (418, "invalid_request_error", "invalid_request_error", "FAILED_PRECONDITION", 418),
        (429, "rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED", 429),
        (500, "server_error", "api_error", "INTERNAL", 500),
        (502, "server_error", "api_error", "UNAVAILABLE", 502),
        (503, "server_error", "overloaded_error", "UNAVAILABLE", 503),
        (504, "server_error", "timeout_error", "DEADLINE_EXCEEDED", 504),
        (529, "server_error", "overloaded_error", "UNAVAILABLE", 503),
        (599, "server_error", "api_error", "INTERNAL", 599),
    ],
)
def test_error_tables(status, openai_type, anthropic_type, gemini_status, gemini_code):
    assert openai_error(status, "m")["type"] == openai_type
    assert anthropic_error(status, "m") == {"type": anthropic_type, "message": "m"}
    assert gemini_error(status, "m") == {"code": gemini_code, "message": "m", "status": gemini_status}


def test_error_bodies_are_json_bytes():
    for protocol in protocols.all():
        assert json.loads(protocol.error_body(500, "é"))
        assert "é".encode() in protocol.error_body(500, "é")


def test_what_the_engine_knows_of_a_protocol_comes_from_its_registration():
    assert registry.families() == ("openai", "anthropic", "gemini", "bedrock")
    assert [registry.speaking(f, c).name for f, c in (("openai", None), ("openai", "responses"), ("anthropic", None),
                                                      ("gemini", None), ("bedrock", None))] == list(EXPECTED)
    assert [r.name for r in protocols.registrations() if r.stateful] == list(EXPECTED)[1:]  # (Converse: reasoning)
    assert registry.credential("gemini").client_query == "key"
    assert "x-goog-api-key" in registry.credential_headers() and "openai-project" in registry.credential_headers()
    assert (registry.label("openai_chat"), registry.label("cohere")) == ("OpenAI Chat Completions", "cohere")


def test_a_family_takes_its_key_one_way(isolated, monkeypatch):
    chat = protocols.registered("openai_chat")
    openai = dataclasses.replace(chat.family, credential=dataclasses.replace(chat.family.credential, header="x-k"))
    monkeypatch.setattr(Fifth, "family", "openai")
    with pytest.raises(ValueError, match="protocol fifth: its family differs from the registered openai family"):
        protocols.register(dataclasses.replace(chat, protocol=Fifth(), family=openai))
    assert [p.name for p in protocols.all()] == list(EXPECTED)
    assert registry.credential("openai").header == "authorization"


def test_a_registration_names_the_family_its_protocol_belongs_to():
    chat = protocols.registered("openai_chat")
    with pytest.raises(ValueError, match="protocol fifth: its family is 'fifth', its registration's 'openai'"):
        dataclasses.replace(chat, protocol=Fifth())


def test_the_headers_a_translated_request_needs_are_capability_columns():
    messages = protocols.registered("anthropic_messages")
    assert messages.required_headers == (("anthropic-version", "anthropic_version"),)
    with pytest.raises(ValueError, match=r"protocol anthropic_messages: required_headers name no capability "
                                         r"column: \['api_version'\]"):
        dataclasses.replace(messages, required_headers=(("anthropic-version", "api_version"),))


def test_both_openai_protocols_read_their_answers_as_their_family_does():
    chat, responses = protocols.registered("openai_chat"), protocols.registered("openai_responses")
    assert chat.family is responses.family is registry.family("openai")
    assert registry.errors("openai", "openai_responses") is registry.errors("openai") is chat.family.errors
    assert registry.windows("openai", "openai_responses") is chat.family.windows
    assert registry.errors("nobody", "nothing") is GENERIC
