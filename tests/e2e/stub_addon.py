"""A minimal stand-in for addons/rotator.py, used only to test the e2e harness itself.

It reads the same config (`--set rotator_config=...`), sends each vendor request to its provider's base_url and
swaps the client's credential for the next pooled key, round robin. No retries, no repairs: plain streaming.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from mitmproxy import ctx, http
from ruamel.yaml import YAML

HOSTS = {"api.openai.com": "openai", "api.anthropic.com": "anthropic", "generativelanguage.googleapis.com": "gemini"}
DEFAULT_PREFIX = {"openai": "/v1", "anthropic": "", "gemini": ""}


def expand(value: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), value)


class StubRotator:
    def __init__(self) -> None:
        self.providers: dict = {}
        self.turn: dict[str, int] = {}

    def load(self, loader) -> None:
        loader.add_option("rotator_config", str, "", "Path to the Rotator YAML config.")

    def configure(self, updated) -> None:
        if "rotator_config" in updated and ctx.options.rotator_config:
            with open(ctx.options.rotator_config) as f:
                self.providers = (YAML(typ="safe").load(f) or {}).get("providers", {})

    def running(self) -> None:
        ctx.options.update(connection_strategy="lazy")

    def request(self, flow: http.HTTPFlow) -> None:
        name = HOSTS.get(flow.request.pretty_host)
        provider = self.providers.get(name)
        if not provider:
            return
        base = urlsplit(provider["base_url"])
        path = flow.request.path
        prefix = DEFAULT_PREFIX[name]
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
        flow.request.scheme, flow.request.host, flow.request.port = base.scheme, base.hostname, base.port or 80
        flow.request.path = base.path.rstrip("/") + path
        keys = [expand(str(k)) for k in provider["keys"]]
        key = keys[self.turn.get(name, 0) % len(keys)]
        self.turn[name] = self.turn.get(name, 0) + 1
        for header in ("authorization", "x-api-key", "x-goog-api-key"):
            if header in flow.request.headers:
                flow.request.headers[header] = f"Bearer {key}" if header == "authorization" else key
        if "key" in flow.request.query:
            flow.request.query["key"] = key

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        flow.response.stream = True


addons = [StubRotator()]
