"""The Interception addon on its own: how a flow is pointed at the engine and given back its vendor, and what the
flow shows once answered."""

import gzip

from mitmproxy import connection, http
from mitmproxy.test import tflow, tutils

from addons.interception import Interception, hide_credential, show_body, upstream_connection
from addons.masking import MaskOnArrival
from rewrite.config import parse
from rewrite.credentials import CREDENTIAL_STYLES
from rewrite.engine import Engine
from rewrite.loopback import JOB_HEADER

CONFIG = "providers: {openai: {base_url: 'https://api.openai.com/v1', keys: [sk-pool-secret-1]}}\n"


def chat_flow(*extra: tuple[str, str]) -> http.HTTPFlow:
    flow = tflow.tflow()
    req = flow.request
    req.scheme, req.host, req.port, req.path, req.method = "https", "api.openai.com", 443, "/v1/chat/completions", "POST"
    req.headers["host"] = "api.openai.com"
    req.headers["authorization"] = "Bearer sk-client-secret-9"
    for name, value in extra:
        req.headers.add(name, value)
    return flow


async def test_a_flow_goes_to_the_loopback_server_and_comes_back_with_the_clients_own_host_header():
    engine = Engine(parse(CONFIG))
    interception = Interception(engine)
    flow = chat_flow((JOB_HEADER, "someone-elses-job"))
    interception.request(flow)
    req = flow.request
    assert (req.scheme, req.host, req.port) == ("http", "127.0.0.1", engine.server.ports[0])
    assert req.headers.get_all(JOB_HEADER) == [flow.id]  # a client's own job header never reaches the engine
    assert req.headers.get_all("host") == ["api.openai.com"]
    interception._show_vendor(flow)
    assert req.url == "https://api.openai.com/v1/chat/completions"
    assert req.headers.get_all("host") == ["api.openai.com"] and JOB_HEADER not in req.headers
    engine.server.close()


def test_credentials_masked_on_arrival_are_masked_once_and_the_same_way_again():
    engine = Engine(parse(CONFIG))
    masking = MaskOnArrival(engine)
    flow = chat_flow()
    sent = flow.request.headers.fields
    masking.requestheaders(flow)
    masked = flow.request.headers.fields
    assert "secret" not in str(masked)
    masking.request(flow)  # the real credential back, for the request hooks
    assert flow.request.headers.fields is sent
    style = CREDENTIAL_STYLES["openai"]
    held = hide_credential(flow, style)
    assert flow.request.headers.fields == masked
    assert held.headers == [("authorization", "Bearer sk-client-secret-9")]
    # headers another addon changed in between are masked afresh, never from what was masked before
    flow.request.headers["authorization"] = "Bearer sk-another-secret-7"
    held = hide_credential(flow, style)
    assert held.headers == [("authorization", "Bearer sk-another-secret-7")]
    assert "secret" not in str(flow.request.headers) and "7" in flow.request.headers["authorization"]
    assert "_rotator_hidden" not in str(flow.get_state())


def test_the_body_shown_is_what_the_client_received_whatever_its_framing():
    chunked = tutils.tresp(headers=http.Headers(transfer_encoding="chunked"), content=b"")
    show_body(chunked, b"data: [DONE]\n\n")
    assert chunked.content == b"data: [DONE]\n\n" and "content-length" not in chunked.headers
    gzipped = tutils.tresp(headers=http.Headers(content_encoding="gzip", transfer_encoding="chunked"), content=b"")
    show_body(gzipped, b'{"ok": true}')
    assert gzip.decompress(gzipped.raw_content) == b'{"ok": true}' and gzipped.content == b'{"ok": true}'
    whole = tutils.tresp(headers=http.Headers(), content=b"")
    show_body(whole, b"{}")
    assert whole.headers["content-length"] == "2"


def test_each_flow_gets_its_own_record_of_the_upstream_it_was_served_by():
    loopback = connection.Server(address=("127.0.0.1", 4000), timestamp_start=1.0, timestamp_end=2.0)
    first = upstream_connection(loopback, "https://api.openai.com/v1")
    second = upstream_connection(loopback, "https://api.openai.com/v1")
    assert first.id != second.id
    assert (first.address, first.sni, first.timestamp_start, first.timestamp_end) == (
        ("api.openai.com", 443), "api.openai.com", 1.0, 2.0)
    plain = upstream_connection(loopback, "http://127.0.0.1:8999/v1")
    assert (plain.address, plain.sni) == (("127.0.0.1", 8999), None)
    second.timestamp_end = 3.0
    assert upstream_connection(loopback, "https://api.openai.com/v1").timestamp_end == 2.0
