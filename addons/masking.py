"""The credential a request carries, masked in its flow from the moment its headers arrive.

mitmweb shows a flow as soon as its request headers arrive (its view adds it in `requestheaders`), before the
`request` hook in which Rotator takes the credential out of the flow for good (Access, WebSocketUpstream,
Interception). For a request to a provider's host this addon masks the credential at `requestheaders` already, and
puts the real values back at `request`, just before those addons read them: nothing in between shows or saves a
flow, so no state of the flow that anyone can see holds the credential. A subscription login's other paths and side
hosts (rewrite/providers/login.py), which mitmproxy forwards as they came, show it masked from their answer on (its
side hosts are tunnelled, with no flow, unless `rotator_intercept=all`: addons/scope.py). Of those, the look-ups in
which its client reads its plan (`Login.lookups`: Antigravity's quota, Codex's reset credits) have their answers
kept on the login's entry, for the login whose credential they carried.
"""

from __future__ import annotations

from collections.abc import Callable

from mitmproxy import http

from addons.interception import called_host, hide_credential, streamed
from rewrite.surface import CredentialStyle, Engine


class MaskOnArrival:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._held: dict[str, tuple[tuple[tuple[bytes, bytes], ...], str]] = {}  # flow id -> real headers, path
        self._passing: dict[str, CredentialStyle] = {}  # flow id -> the style of the login it carries
        self._lookups: dict[str, Callable[[int, bytes], None]] = {}  # flow id -> what keeps a plan look-up's answer

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        provider = self.engine.router.provider_for(called_host(flow))
        if provider is None or streamed(flow, self.engine):  # (gated and handed over now: see `streamed`)
            return
        fields, path = req.headers.fields, req.path
        hide_credential(flow, provider.credential, remember=True)
        if req.headers.fields != fields or req.path != path:
            self._held[flow.id] = (fields, path)

    def request(self, flow: http.HTTPFlow) -> None:
        held = self._held.pop(flow.id, None)
        if held is not None:
            flow.request.headers.fields, flow.request.path = held
        style = self.engine.router.claimed_style(called_host(flow), flow.request.headers)
        if style is not None and flow.response is None:
            self._passing[flow.id] = style
            self._looking_up(flow)

    def _looking_up(self, flow: http.HTTPFlow) -> None:
        """A login's plan look-up: whose it is, known while the flow holds its credential."""
        req = flow.request
        keep = self.engine.router.looked_up(called_host(flow), req.path, req.headers.items(multi=True))
        if keep is not None:
            self._lookups[flow.id] = keep

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """A login's other path, or a call to its side hosts, which mitmproxy forwards as it came (not Rotator's:
        see rewrite/routing/router.py): once it is sent, the flow keeps the login masked (a flow Rotator took is
        masked by then already)."""
        style = self._passing.pop(flow.id, None)
        if style is not None and flow.id not in self.engine.jobs:
            hide_credential(flow, style)

    def response(self, flow: http.HTTPFlow) -> None:
        self.responseheaders(flow)
        keep = self._lookups.pop(flow.id, None)
        if keep is not None and flow.response is not None:
            keep(flow.response.status_code, flow.response.content or b"")
        flow.__dict__.pop("_rotator_hidden", None)  # (what masking remembered for a request no one masked again)

    def error(self, flow: http.HTTPFlow) -> None:
        self.responseheaders(flow)
        self._lookups.pop(flow.id, None)
        self._held.pop(flow.id, None)  # (a request that never arrived whole keeps its masked credential)
        flow.__dict__.pop("_rotator_hidden", None)
