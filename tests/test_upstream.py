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
