"""A raw HTTP client configured the way a tool is, and the credential header each protocol's client sends."""

from __future__ import annotations

import ssl

import httpx

from tests.support.reliability import FAMILY


def client_headers(protocol: str, key: str) -> dict[str, str]:
    family = FAMILY[protocol]
    if family == "openai":
        return {"authorization": f"Bearer {key}"}
    if family == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return {"x-goog-api-key": key}


def through(proxy) -> httpx.Client:
    """A raw HTTP client configured the way a tool is: through the proxy, trusting mitmproxy's CA."""
    tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
    return httpx.Client(proxy=proxy.url, verify=tls, timeout=30, trust_env=False)
