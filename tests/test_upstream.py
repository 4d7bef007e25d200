import asyncio

from rewrite.upstream import new_client, request_headers, response_headers


def test_hop_by_hop_and_routing_headers_never_cross():
    sent = request_headers([("Host", "api.openai.com"), ("Content-Length", "3"), ("Accept-Encoding", "br"),
                            ("x-rotator-job", "1"), ("Connection", "keep-alive"), ("x-custom", "kept")])
    assert sent == [("x-custom", "kept")]
    back = response_headers([("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked"), ("request-id", "r")])
    assert back == [("request-id", "r")]


async def test_upstreams_are_asked_for_an_uncompressed_answer_whatever_the_client_accepts():
    async with new_client() as client:
        headers = request_headers([("Accept-Encoding", "gzip, deflate, br, zstd"), ("x-custom", "kept")])
        sent = client.build_request("POST", "http://vendor.test/v1/chat/completions", headers=headers)
        assert sent.headers.get_list("accept-encoding") == ["identity"]


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


def test_a_request_is_built_as_httpx_would_build_it():
    import httpx

    client = new_client()
    for headers in ([], [(b"Accept", b"text/event-stream"), (b"authorization", b"Bearer k")],
                    [(b"User-Agent", b"OpenAI/Python"), (b"ACCEPT-ENCODING", b"gzip"), (b"x-a", b"1"), (b"x-a", b"2")]):
        ours = client.build_request("POST", "https://api.example/v1/x?a=b", headers=headers, content=b"{}")
        theirs = httpx.AsyncClient.build_request(client, "POST", "https://api.example/v1/x?a=b", headers=headers,
                                                 content=b"{}")
        assert (ours.method, ours.url, ours.headers.raw, ours.content, ours.extensions) == (
            theirs.method, theirs.url, theirs.headers.raw, theirs.content, theirs.extensions)
