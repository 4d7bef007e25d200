"""Which TLS connections Rotator opens (addons/scope.py), decided at the ClientHello: a host the running config
claims is intercepted, any other tunnelled. tests/e2e/test_scope.py and test_scope_tools.py check it with real
clients and tools."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mitmproxy import tls
from mitmproxy.proxy import context, mode_specs
from mitmproxy.test import taddons, tflow

from addons.scope import Scope
from addons.status import Status
from rewrite.config import parse
from rewrite.engine import Engine

CUSTOM = "providers: {local: {kind: openai, hosts: [llm.internal.example], base_url: 'http://127.0.0.1:9/v1'}}\n"


def hello(sni: str | None, address: tuple[str, int] | None = ("203.0.113.7", 443),
          mode: str = "regular") -> tls.ClientHelloData:
    """The ClientHello of a connection: its SNI, the address it was sent to (the CONNECT's)."""
    client = tflow.tclient_conn()
    client.proxy_mode = mode_specs.ProxyMode.parse(mode)
    ctx = context.Context(client, SimpleNamespace())  # type: ignore[arg-type]  # (no option of it is read)
    ctx.server.address = address
    return tls.ClientHelloData(ctx, SimpleNamespace(sni=sni))  # type: ignore[arg-type]


def tunnelled(engine: Engine, data: tls.ClientHelloData, **options: object) -> bool:
    scope = Scope(engine)
    with taddons.context(scope, Status(engine)) as tctx:
        tctx.configure(scope, **options)
        scope.tls_clienthello(data)
    return data.ignore_connection


@pytest.mark.parametrize("sni, address", [
    ("api.openai.com", ("api.openai.com", 443)),
    ("API.Anthropic.com.", ("api.anthropic.com", 443)),  # (any case, a trailing dot)
    ("us-east5-aiplatform.googleapis.com", ("us-east5-aiplatform.googleapis.com", 443)),  # a glob (Vertex)
    ("res-a.openai.azure.com", ("10.0.0.1", 443)),  # the SNI names the host, whatever the address
    (None, ("chatgpt.com", 443)),  # no SNI: the CONNECT's host
    ("rotator.status", ("rotator.status", 443)),  # the status page over https
    ("llm.internal.example", ("llm.internal.example", 443)),  # a configured provider's host
])
def test_a_host_the_config_claims_is_intercepted(sni, address):
    assert not tunnelled(Engine(parse(CUSTOM)), hello(sni, address))


@pytest.mark.parametrize("sni, address", [
    ("github.com", ("github.com", 443)),
    ("pypi.org", ("151.101.0.223", 443)),
    (None, ("140.82.112.3", 443)),  # an IP and no SNI
    (None, None),
    ("api.github.com", ("api.github.com", 443)),  # Copilot's side host: its flows were only ever masked, not served
    ("oauth2.googleapis.com", ("oauth2.googleapis.com", 443)),  # Code Assist's
    ("example.com", ("api.openai.com", 443)),  # the SNI decides: the name the client checks the certificate against
])
def test_any_other_host_is_tunnelled(sni, address):
    assert tunnelled(Engine(parse(CUSTOM)), hello(sni, address))


def test_a_config_change_moves_a_host_into_the_scope():
    engine = Engine(parse(""))
    assert tunnelled(engine, hello("llm.internal.example"))
    engine.configure(parse(CUSTOM))
    assert not tunnelled(engine, hello("llm.internal.example"))


def test_the_status_host_follows_its_option():
    engine = Engine(parse(""))
    assert tunnelled(engine, hello("rotator.status"), rotator_status_host="")
    assert not tunnelled(engine, hello("status.example"), rotator_status_host="Status.Example")


def test_intercept_all_and_allow_hosts_leave_every_connection_open():
    engine = Engine(parse(""))
    assert not tunnelled(engine, hello("github.com"), rotator_intercept="all")
    assert not tunnelled(engine, hello("github.com"), allow_hosts=["github"])  # mitmproxy's own list decides


def test_a_reverse_listeners_connections_are_rotators():
    assert not tunnelled(Engine(parse("")), hello("localhost", ("127.0.0.1", 8443),
                                                  mode="reverse:https://api.openai.com"))
