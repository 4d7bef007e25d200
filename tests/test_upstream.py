from rewrite.upstream import Upstream, request_headers, response_headers


def test_sequential_requests_share_one_client_and_concurrent_ones_spread():
    up = Upstream(shards=3)
    with up.lease() as a:
        pass
    with up.lease() as b:
        assert b is a  # keep-alive connections are reused
        with up.lease() as c, up.lease() as d:
            assert len({id(b), id(c), id(d)}) == 3
            with up.lease() as e:
                assert e in (b, c, d)


def test_hop_by_hop_and_routing_headers_never_cross():
    sent = request_headers([("Host", "api.openai.com"), ("Content-Length", "3"), ("Accept-Encoding", "br"),
                            ("x-rotator-job", "1"), ("Connection", "keep-alive"), ("x-custom", "kept")])
    assert sent == [("x-custom", "kept")]
    back = response_headers([("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked"), ("request-id", "r")])
    assert back == [("request-id", "r")]
