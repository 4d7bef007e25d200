from rewrite.upstream import request_headers, response_headers


def test_hop_by_hop_and_routing_headers_never_cross():
    sent = request_headers([("Host", "api.openai.com"), ("Content-Length", "3"), ("Accept-Encoding", "br"),
                            ("x-rotator-job", "1"), ("Connection", "keep-alive"), ("x-custom", "kept")])
    assert sent == [("x-custom", "kept")]
    back = response_headers([("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked"), ("request-id", "r")])
    assert back == [("request-id", "r")]
