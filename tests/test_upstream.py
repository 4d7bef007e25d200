import asyncio

import httpx
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rewrite.upstream.client import (
    ACCEPT_ENCODING,
    TIMEOUT,
    encode_headers,
    new_client,
    request_headers,
    response_headers,
)
from rewrite.upstream.egress import EgressProxy
from rewrite.upstream.framing import Outgoing, from_httpx, on_the_wire


def test_hop_by_hop_and_routing_headers_never_cross():
    sent = request_headers([("Host", "api.openai.com"), ("Content-Length", "3"), ("Accept-Encoding", "br"),
                            ("x-rotator-job", "1"), ("Connection", "keep-alive"), ("x-custom", "kept")])
    assert sent == [("x-custom", "kept")]
    back = response_headers([("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked"), ("request-id", "r")])
    assert back == [("request-id", "r")]


async def test_upstreams_are_asked_for_an_uncompressed_answer_whatever_the_client_accepts():
    async with new_client() as client:
        headers = request_headers([("Accept-Encoding", "gzip, deflate, br, zstd"), ("x-custom", "kept")])
        sent = client.build_request("POST", "http://vendor.test/v1/chat/completions", headers=encode_headers(headers),
                                    content=b"{}")
        assert b"\r\naccept-encoding: identity\r\n" in on_the_wire(sent).lower()
        assert b"gzip" not in on_the_wire(sent)


async def test_a_cookie_one_answer_sets_is_never_sent_with_the_next_request():
    """The upstream client is shared by every client of the proxy: it must not keep a cookie jar."""
    seen: list[bytes] = []

    async def vendor(reader, writer):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            seen.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nset-cookie: session=client-a; Path=/\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(vendor, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    try:
        async with new_client() as client:
            for _ in range(2):
                response = await client.send(client.build_request("POST", url, content=b"{}"))
                assert response.status_code == 200 and response.content == b"ok"
    finally:
        server.close()
    assert len(seen) == 2 and b"cookie" not in seen[1].lower()


# httpx's own client, as the engine's is configured: what its requests must be on the wire.
HTTPX = httpx.AsyncClient(headers={"accept-encoding": ACCEPT_ENCODING}, timeout=TIMEOUT)
_URL_TEXT = st.text(st.sampled_from("aZ09-._~:/?#[]@!$&'()*+,;=% \"<>{}|\\^`é\x7f"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "HTTP"]),
       host=st.sampled_from(["api.example", "API.Example", "127.0.0.1", "[::1]", "bücher.example", "a@b", "h?x"]),
       port=st.sampled_from(["", ":443", ":80", ":8080"]), path=_URL_TEXT,
       headers=st.lists(st.tuples(st.sampled_from([b"Accept", b"authorization", b"ACCEPT-ENCODING", b"Host", b"x-a",
                                                   b"Content-Length", b"Connection"]),
                                  st.sampled_from([b"1", b"text/event-stream", b"example.test"])), max_size=5),
       content=st.sampled_from([b"", b"{}"]), method=st.sampled_from(["POST", "GET"]))
def test_a_request_goes_out_as_httpx_would_build_it(scheme, host, port, path, headers, content, method):
    """The engine's requests skip httpx.Request (Outgoing); on the wire they are the same bytes, to the same place."""
    url = f"{scheme}://{host}{port}/{path}"
    client = new_client()
    try:
        theirs = HTTPX.build_request(method, url, headers=headers, content=content)
    except (httpx.InvalidURL, UnicodeError):
        assume(False)
    ours = client.build_request(method, url, headers=headers, content=content)
    if isinstance(ours, httpx.Request):  # a URL httpx normalises is built by httpx itself
        assert (ours.url, ours.headers.raw) == (theirs.url, theirs.headers.raw)
        return
    expected = from_httpx(theirs, content)
    assert (ours.origin, ours.netloc) == (expected.origin, expected.netloc)
    assert ours.connect_timeout == expected.connect_timeout
    proxy = EgressProxy("127.0.0.1", 3128, "Basic dTpw")
    for forward in (None, proxy):
        assert on_the_wire(ours, forward) == on_the_wire(expected, forward)


def test_the_engines_usual_requests_take_the_lean_way():
    client = new_client()
    for url in ("https://api.openai.com/v1/chat/completions", "http://127.0.0.1:8999/v1/messages?beta=true",
                "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"
                "?alt=sse&key=AIza%2Bx"):
        assert isinstance(client.build_request("POST", url, headers=[(b"x-a", b"1")], content=b"{}"), Outgoing)
