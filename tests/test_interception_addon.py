"""The Interception addon on its own: how a flow is pointed at the engine and given back its vendor, and what the
flow shows once answered."""

import gc
import gzip
import inspect
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import connection, http
from mitmproxy.test import tflow, tutils

from addons.access import Access
from addons.interception import Interception, show_body, upstream_connection
from addons.masking import REMEMBERED, MaskOnArrival, hide_credential
from addons.websocket import WebSocketUpstream
from rewrite.config import parse
from rewrite.engine import Engine
from rewrite.intake.clients import hide
from rewrite.intake.loopback import JOB_HEADER
from rewrite.intake.loopback_request import BIG_BODY
from rewrite.providers.credentials import CREDENTIAL_STYLES

CONFIG = "providers: {openai: {base_url: 'https://api.openai.com/v1', keys: [sk-pool-secret-1]}}\n"


def chat_flow(*extra: tuple[str, str]) -> http.HTTPFlow:
    flow = tflow.tflow()
    req = flow.request
    req.scheme, req.host, req.port, req.method = "https", "api.openai.com", 443, "POST"
    req.path = "/v1/chat/completions"
    req.headers["host"] = "api.openai.com"
    req.headers["authorization"] = "Bearer sk-client-secret-9"
    for name, value in extra:
        req.headers.add(name, value)
    return flow


async def test_a_flow_goes_to_the_loopback_server_and_comes_back_with_the_clients_own_host_header():
    engine = Engine(parse(CONFIG))
    interception = Interception(engine, WebSocketUpstream(engine))
    flow = chat_flow((JOB_HEADER, "someone-elses-job"))
    await interception.request(flow)
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
    assert flow not in REMEMBERED  # no copy of the credential is kept for the flow once it was taken
    # headers another addon changed in between are masked afresh, never from what was masked before
    flow.request.headers["authorization"] = "Bearer sk-another-secret-7"
    held = hide_credential(flow, style)
    assert held.headers == [("authorization", "Bearer sk-another-secret-7")]
    assert "secret" not in str(flow.request.headers) and "7" in flow.request.headers["authorization"]
    assert "secret" not in str(flow.get_state())


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


_NAMES = st.sampled_from([b"Authorization", b"authorization", b"api-key", b"X-Api-Key", b"x-goog-api-key", b"accept",
                          b"user-agent", b"x-stainless-os"])
_VALUES = st.sampled_from([b"Bearer sk-client-secret-9", b"sk-ant-client-0000", b"bearer  AIza-client-77 ",
                           b"\xe9t\xe9", b"", b"application/json"])


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=8), family=st.sampled_from(sorted(CREDENTIAL_STYLES)),
       query=st.sampled_from(["", "alt=sse", "key=AIza-client-1&alt=sse", "alt=sse&key=a%20b"]))
def test_masking_changes_the_credentials_alone_as_hide_says(headers, family, query):
    style = CREDENTIAL_STYLES[family]
    flow = chat_flow()
    flow.request.headers.fields = tuple(headers)
    flow.request.path = "/v1/x" + (f"?{query}" if query else "")
    sent = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    shown, shown_query, expected = hide(style, sent, query)
    held = hide_credential(flow, style)
    assert (held.headers, held.query) == (expected.headers, expected.query)
    assert list(flow.request.headers.fields) == [  # (a masked value is UTF-8: "…")
        (n, v if new == old else new[1].encode()) for (n, v), old, new in zip(headers, sent, shown)]
    assert flow.request.path == "/v1/x" + (f"?{shown_query}" if query else "")


def test_what_masking_remembers_goes_with_the_request_when_nothing_masks_it_again():
    masking = MaskOnArrival(Engine(parse(CONFIG)))
    flow = chat_flow()
    flow.request.path = "/v1/models"  # (a request Rotator leaves to the vendor: Interception does not mask it again)
    masking.requestheaders(flow)
    masking.request(flow)
    assert flow in REMEMBERED
    flow.response = tutils.tresp()
    masking.response(flow)
    assert flow not in REMEMBERED



def test_a_plan_lookup_s_keeper_goes_with_its_flow():
    """What keeps the answer of a login's plan look-up (Antigravity's quota) is kept for its flow and no longer: one
    answered is used once, one whose flow goes without an answer or an error leaves nothing behind."""
    masking = MaskOnArrival(Engine(parse("")))

    def lookup() -> http.HTTPFlow:
        flow = tflow.tflow()
        req = flow.request
        req.scheme, req.host, req.port, req.method = "https", "cloudcode-pa.googleapis.com", 443, "POST"
        req.path = "/v1internal:fetchAvailableModels"
        req.headers["host"] = req.host
        req.headers["authorization"] = "Bearer ya29.antigravity-login"
        req.headers["user-agent"] = "antigravity/1.18.3 darwin/arm64"
        masking.requestheaders(flow)
        masking.request(flow)
        return flow

    answered = lookup()
    assert len(masking._lookups) == 1
    answered.response = tutils.tresp(content=b'{"models": {}}')
    masking.response(answered)
    assert len(masking._lookups) == 0
    lookup()  # (its flow dropped with neither an answer nor an error)
    gc.collect()
    assert len(masking._lookups) == 0


def test_what_masking_keeps_of_a_flow_goes_with_the_flow_when_neither_an_answer_nor_an_error_comes():
    """A request masked at its headers whose body never came whole (its real headers held), and a login's call whose
    answer never came (its credential's style kept to mask it then): nothing of either is left once they are gone."""
    masking = MaskOnArrival(Engine(parse(CONFIG)))
    cut = chat_flow()
    masking.requestheaders(cut)
    login = chat_flow()
    login.request.host = login.request.headers["host"] = "chatgpt.com"
    login.request.path = "/backend-api/codex/responses"
    login.request.headers["chatgpt-account-id"] = "acct-1"
    masking.requestheaders(login)
    masking.request(login)
    assert len(masking._held) == 1 and len(masking._passing) == 1
    del cut, login
    gc.collect()
    assert len(masking._held) == 0 and len(masking._passing) == 0


async def test_a_large_body_is_gated_and_handed_over_at_its_headers_then_streamed_to_the_engine():
    """(mitmproxy holds a body whole before the `request` hooks: a large one goes on as it arrives instead.)"""
    client_key = "rk-team-a-Secret-0001-aaaa"
    engine = Engine(parse(CONFIG + f"clients: [{{name: team-a, key: {client_key}}}]\n"))
    access = Access(engine)
    access.configure({"rotator_config"})
    hooks = [MaskOnArrival(engine), access, Interception(engine, WebSocketUpstream(engine))]

    def sized(size: int) -> http.HTTPFlow:
        flow = chat_flow()
        flow.request.headers["content-length"] = str(size)
        return flow

    refused = sized(BIG_BODY)  # (its key is no client's)
    for addon in hooks:
        addon.requestheaders(refused)
    assert refused.response.status_code == 401 and not refused.request.stream and refused.id not in engine.jobs

    admitted = sized(BIG_BODY)
    admitted.request.headers["authorization"] = f"Bearer {client_key}"
    for addon in hooks:
        addon.requestheaders(admitted)
    req = admitted.request
    assert req.stream is True and (req.host, req.port) == ("127.0.0.1", engine.server.ports[0])
    assert admitted.metadata["rotator"]["client"] == "team-a" and client_key not in str(req.headers.fields)
    job = engine.jobs[admitted.id]
    for addon in hooks:  # (once the body is in: nothing is decided or handed over again)
        if inspect.isawaitable(answered := addon.request(admitted)):
            await answered
    assert engine.jobs[admitted.id] is job and req.host == "127.0.0.1" and admitted.response is None

    small = sized(BIG_BODY - 1)
    for addon in hooks:
        addon.requestheaders(small)
    assert not small.request.stream and small.id not in engine.jobs  # (held whole, decided at `request`)
    engine.server.close()


# limits.max_request_body on a call answered in its flow (addons/whole_answers.py): a body whose headers did not say
# its size (chunked, or HTTP/2 without content-length) is held whole by mitmproxy, and is answered 413 in its
# protocol's shape like one that said it; nothing goes upstream.

LIMIT = 1000
# (an upstream nothing listens on: a request sent to it would come back 502)
LIMITED = ("providers: {openai: {base_url: 'http://127.0.0.1:1/v1', keys: [sk-pool-secret-1]}}\n"
          f"limits: {{max_request_body: {LIMIT}}}\n")


async def answered_past_a_limit(content: str):
    engine = Engine(parse(LIMITED))
    interception = Interception(engine, WebSocketUpstream(engine))
    flow = chat_flow(("content-type", "application/json"), ("transfer-encoding", "chunked"))
    flow.request.raw_content = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}).encode()
    del flow.request.headers["content-length"]
    try:
        interception.requestheaders(flow)
        await interception.request(flow)
    finally:
        engine.server.close()
    return flow.response


async def test_a_chunked_body_past_the_limit_is_413_when_its_answer_is_asked_whole():
    # (it went upstream: the client saw the vendor's answer, or here a 502, for a body past the limit)
    response = await answered_past_a_limit("x" * 5 * LIMIT)
    assert response.status_code == 413
    error = json.loads(response.content)["error"]
    assert error["code"] == "request_too_large" and f"max_request_body ({LIMIT} bytes)" in error["message"]


async def test_a_chunked_body_within_the_limit_goes_upstream():
    assert (await answered_past_a_limit("hi")).status_code == 502  # (sent: nothing listens there)
