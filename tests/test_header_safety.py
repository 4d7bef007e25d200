"""Keys and header values that could break a request: refused at config load with one line naming the field (never
the key), and refused by the upstream request builder as a safety net, so nothing reaches the vendor as a header
of its own. Hypothesis drives both over any string."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rewrite.config import ConfigError, parse
from rewrite.exchange.exchange import Exchange
from rewrite.exchange.job import Job
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.pool import KeyPool
from rewrite.providers import build
from rewrite.routing.router import Router
from rewrite.upstream.client import UnsendableHeader, encode_headers, new_client
from tests.support.engine_harness import FakeResponder

SENDABLE = {chr(c) for c in range(0x21, 0x7F)}  # what a pooled key may hold


def yaml_string(s: str) -> str:
    """`s` as a YAML double-quoted scalar that loads back as exactly `s`."""
    out = []
    for ch in s:
        if ch in SENDABLE | {" "} and ch not in '"\\':
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def load_key(key: str, mapping: bool = False) -> str:
    entry = f"{{key: {yaml_string(key)}, organization: org-1}}" if mapping else yaml_string(key)
    cfg = parse(f"providers:\n  openai:\n    keys:\n      - sk-fine-0\n      - {entry}\n")
    build(cfg)
    return cfg.providers["openai"].keys[1].key


# ------------------------------------------------------------------------------------------------------------------
# Config load


@pytest.mark.parametrize("mapping", [False, True], ids=["string", "mapping"])
@pytest.mark.parametrize(
    "key",
    ["abc\r\nx-injected: yes", "sk-pasted\u200bwith-a-zero-width-space", "sk-nul\0byte", "sk-tab\tinside",
     "sk two words", "sk-caf\u00e9", "sk-bell\x07", "", "   \n"],
)
def test_an_unsendable_key_stops_loading_with_one_line_naming_the_field_never_the_key(key, mapping):
    with pytest.raises(ConfigError) as e:
        load_key(key, mapping)
    message = str(e.value)
    assert message.startswith("providers.openai.keys.1.key: ")
    assert "\n" not in message and "\r" not in message
    if key.strip():
        assert key.strip() not in message and "abc" not in message and "sk-" not in message


def test_an_unsendable_key_from_the_environment_is_refused_too(monkeypatch):
    monkeypatch.setenv("ROTATOR_TEST_KEY", "abc\r\nx-injected: yes")
    with pytest.raises(ConfigError, match=r"^providers\.openai\.keys\.0\.key: .*printable ASCII") as e:
        parse('providers: {openai: {keys: ["${ROTATOR_TEST_KEY}"]}}')
    assert "abc" not in str(e.value)


def test_whitespace_around_a_key_is_dropped():
    assert load_key("  sk-from-a-file\n") == "sk-from-a-file"
    assert load_key("\tsk-mapped\r\n", mapping=True) == "sk-mapped"


@pytest.mark.parametrize(
    "text",
    ["providers:\n  openai:\n    keys: [sk-Secret-1234\tx]\n", "providers: {openai: {keys: [sk-Secret-1234: a: b]}}",
     "providers: {openai: {keys: [*sk-Secret-1234]}}", "providers: {openai: {keys: [sk-Secret-1234]}}\nproviders: 1\n"],
)
def test_yaml_errors_say_where_without_quoting_the_document(text):
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert "not valid YAML" in str(e.value) and "line" in str(e.value)
    assert "Secret" not in str(e.value)


@settings(max_examples=400, deadline=None)
@given(key=st.text(), mapping=st.booleans())
def test_any_key_string_loads_as_a_sendable_key_or_fails_with_one_line_without_it(key, mapping):
    try:
        loaded = load_key(key, mapping)
    except ConfigError as e:
        message = str(e)
        assert message.startswith("providers.openai.keys.1.key: ") and "\n" not in message
        if len(key.strip()) >= 6:
            assert key.strip() not in message
        return
    assert loaded and set(loaded) <= SENDABLE
    assert loaded == key.strip(" \t\r\n")


@settings(max_examples=400, deadline=None)
@given(key=st.text(), style=st.sampled_from(["[{}]", "\n      - {}", "{{key: {}}}", "'{}'"]))
@example(key="._", style="[{}]")  # (ruamel reads a plain `._` as a float and fails converting it)
def test_any_key_written_raw_into_the_yaml_gives_a_config_or_a_config_error(key, style):
    text = "providers:\n  openai:\n    keys: " + style.format(key) + "\n"
    try:
        cfg = parse(text)
        build(cfg)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert all(set(k.key) <= SENDABLE for p in cfg.providers.values() for k in p.keys)


# ------------------------------------------------------------------------------------------------------------------
# The upstream request builder


@pytest.mark.parametrize("value", ["abc\r\nx-injected: yes", "a\nb", "a\rb", "nul\0", "zero\u200bwidth"])
def test_the_builder_refuses_a_value_that_is_no_single_header(value):
    with pytest.raises(UnsendableHeader) as e:
        encode_headers([("x-ok", "1"), ("x-bad", value)])
    assert "x-bad" in str(e.value) and value not in str(e.value)


def test_the_builder_sends_a_clients_bytes_as_they_came():
    assert encode_headers([("X-Title", "caf\xc3\xa9 \x7f\t!")]) == [(b"X-Title", b"caf\xc3\xa9 \x7f\t!")]


class HeadRecorder:
    """A vendor on 127.0.0.1 that records each request's header lines exactly as they arrived, and answers 200."""

    def __init__(self) -> None:
        self.heads: list[list[tuple[bytes, bytes]]] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head[:-4].split(b"\r\n")[1:]
                self.heads.append([tuple(line.split(b": ", 1)) for line in lines])
                length = next((int(v) for n, v in self.heads[-1] if n.lower() == b"content-length"), 0)
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def through_the_engine(key: str, value: str) -> tuple[FakeResponder, list[list[tuple[bytes, bytes]]]]:
    async with HeadRecorder() as vendor:
        router = Router(parse(f"providers: {{openai: {{base_url: '{vendor.url}/v1', keys: [sk-good]}}}}"))
        route = router.route("api.openai.com", "GET", "/v1/models")
        route.provider.pool = KeyPool([key, "sk-good"])  # (the config would refuse many of these keys)
        request = LoopbackRequest("GET", "/v1/models", [("accept", "application/json"), ("x-fuzz", value)], b"")
        out = FakeResponder()
        client = new_client()
        try:
            cfg = router.config.streaming.model_copy(update={"first_token_retries": 1})
            await Exchange(client, cfg, Job("job-0001", route, route.provider), request, out).run()
        finally:
            await client.aclose()
        return out, vendor.heads


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.text(max_size=30), value=st.text(max_size=60))
def test_no_key_or_client_header_value_reaches_the_vendor_as_a_header_of_its_own(key, value):
    out, heads = asyncio.run(through_the_engine(key, value))
    breaks = any(c in value for c in "\r\n\0") or any(ord(c) > 0xFF for c in value)
    if breaks:  # the client's own header cannot be sent: refused on every key, no crash, nothing sent
        assert heads == [] and out.status == 502 and b"bad upstream request" in out.body
        return
    assert out.status == 200 and len(heads) == 1
    [head] = heads
    names = [n.lower() for n, _ in head]
    assert sorted(names) == sorted([b"accept", b"x-fuzz", b"accept-encoding", b"user-agent", b"authorization",
                                    b"host"])
    assert dict(head)[b"x-fuzz"] == value.encode("latin-1")  # intact
    sent_key = dict(head)[b"authorization"].removeprefix(b"Bearer ")
    assert sent_key in (key.encode("latin-1", "replace"), b"sk-good")
    if sent_key != b"sk-good":
        assert not any(c in key for c in "\r\n\0")
    assert json.loads(out.body) == {}
