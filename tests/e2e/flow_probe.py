"""A test-only addon, loaded beside Rotator (`-s tests/e2e/flow_probe.py`): `GET http://rotator-test.probe/flows`
through the proxy answers with the flows in flight as mitmproxy holds them right now (what mitmweb would show)."""

from __future__ import annotations

import json

from mitmproxy import http

PROBE_HOST = "rotator-test.probe"


class FlowProbe:
    def __init__(self) -> None:
        self.flows: dict[str, http.HTTPFlow] = {}

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.pretty_host != PROBE_HOST:
            self.flows[flow.id] = flow

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.pretty_host != PROBE_HOST:
            return
        live = [f for f in self.flows.values() if f.response is None and f.error is None]
        shown = [{"url": f.request.pretty_url, "headers": [k.lower() for k in f.request.headers], "id": f.id,
                  "address": [f.request.host, f.request.port], "fields": list(f.request.headers.items(multi=True)),
                  "comment": f.comment, "metadata": json.dumps(f.metadata, default=str)} for f in live]
        flow.response = http.Response.make(200, json.dumps(shown), {"content-type": "application/json"})

    def response(self, flow: http.HTTPFlow) -> None:
        self.flows.pop(flow.id, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self.flows.pop(flow.id, None)


addons = [FlowProbe()]
