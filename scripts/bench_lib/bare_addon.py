"""The benchmark's "bare mitmdump" baseline: the least any mitmproxy-based design must do.

Clients reach https://api.openai.com (or api.anthropic.com) through the proxy with TLS interception, exactly as
they would through Rotator. This script only sends every request to the fake vendor on 127.0.0.1 (plain HTTP) and
streams every response through as it arrives. Run with `--set connection_strategy=lazy`, so that mitmproxy does not
try to reach the real host on CONNECT. The vendor's port comes from the BENCH_VENDOR_PORT environment variable.
"""

import os

from mitmproxy import http

PORT = int(os.environ["BENCH_VENDOR_PORT"])


def request(flow: http.HTTPFlow) -> None:
    flow.request.scheme = "http"
    flow.request.host = "127.0.0.1"
    flow.request.port = PORT


def responseheaders(flow: http.HTTPFlow) -> None:
    flow.response.stream = True
