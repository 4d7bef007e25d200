"""What the addons know of a flow before Rotator takes it, and the credential it carries, masked in it.

Per flow, in tables keyed by the flow (as mitmproxy's own addons keep per-flow facts: never attributes set on its
objects): the host its client called, whether its body is streamed to the engine, and what masking its credential on
arrival did (used once, by the next masking of the same headers). An entry goes with its flow.

mitmweb shows a flow as soon as its request headers arrive (its view adds it in `requestheaders`), before the
`request` hook in which Rotator takes the credential out of the flow for good (Access, WebSocketUpstream,
Interception: `hide_credential`). For a request to a provider's host MaskOnArrival masks the credential at
`requestheaders` already, and puts the real values back at `request`, just before those addons read them: nothing in
between shows or saves a flow, so no state of the flow that anyone can see holds the credential. A subscription
login's other paths and side hosts (rewrite/providers/login.py), which mitmproxy forwards as they came, show it masked
from their answer on (its side hosts are tunnelled, with no flow, unless `rotator_intercept=all`: addons/scope.py).
A flow Rotator served shows the masked pooled key where the client's credential was (`show_credential`). Of a
login's other paths, the look-ups in which its client reads its plan (`Login.lookups`: Antigravity's quota, Codex's
reset credits) have their answers kept on the login's entry, for the login whose credential they carried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from mitmproxy import http
from mitmproxy.net.http import url as mitmproxy_url

from rewrite.surface import BIG_BODY, CredentialStyle, Engine, HeldCredential, hide

if TYPE_CHECKING:
    # (the headers and path it was asked on, the style, the headers and path it made, the credential it held)
    Hidden = tuple[tuple[tuple[bytes, bytes], ...], str, CredentialStyle, tuple[tuple[bytes, bytes], ...], str,
                   HeldCredential]

_CALLED: WeakKeyDictionary[http.HTTPFlow, tuple[tuple[tuple[bytes, bytes], ...], str, str]] = WeakKeyDictionary()
_STREAMED: WeakKeyDictionary[http.HTTPFlow, bool] = WeakKeyDictionary()
# Used once, by the next masking on the same headers; else dropped at the flow's answer (MaskOnArrival).
REMEMBERED: WeakKeyDictionary[http.HTTPFlow, Hidden] = WeakKeyDictionary()


def called_host(flow: http.HTTPFlow) -> str:
    """The host the client called (`pretty_host`: its Host header, else the URL's), read once for the hooks that
    ask while the request stays as it is (mitmproxy parses the header on every `pretty_host`)."""
    req = flow.request
    fields, host = req.headers.fields, req.host
    seen = _CALLED.get(flow)
    if seen is not None and seen[0] is fields and seen[1] == host:
        return seen[2]
    authority = req.host_header
    called = _authority_host(authority) if authority else host
    _CALLED[flow] = (fields, host, called)
    return called


@functools.lru_cache(maxsize=1024)
def _authority_host(authority: str) -> str:
    """The host of a Host header, as pretty_host reads it (its checks cost microseconds: once per value)."""
    return mitmproxy_url.parse_authority(authority, check=False)[0]


def streamed(flow: http.HTTPFlow, engine: Engine) -> bool:
    """Whether a request's body is streamed to the engine as it arrives, never held whole by mitmproxy (an LLM
    call's large body: copying it whole would hold the event loop, and every other client's stream). Such a flow
    is gated and handed over at its headers: MaskOnArrival, Access and Interception do then what they otherwise
    do once the body is in. (A chunked body of unknown size is held, as a small one is.)"""
    seen = _STREAMED.get(flow)  # (asked by several hooks: the headers are read once)
    if seen is None:
        length = flow.request.headers.get("content-length", "")
        seen = _STREAMED[flow] = (length.isdigit() and BIG_BODY <= int(length) <= engine.server.max_body
                                  and engine.router.provider_for(called_host(flow)) is not None)
    return seen


def show_credential(flow: http.HTTPFlow, style: CredentialStyle, masked: str | None) -> None:
    """Show the masked pooled key where the client's credential was, so the flow says which key served it."""
    if masked is None:
        return
    fields = flow.request.headers.fields
    drop = _names(style)
    flow.request.headers.fields = tuple(f for f in fields if f[0].lower() not in drop) + (
        (style.header.encode(), style.template.format(masked).encode("utf-8", "surrogateescape")),)
    if style.client_query and style.client_query in flow.request.query:
        flow.request.query[style.client_query] = masked


@functools.lru_cache(maxsize=16)
def _client_names(style: CredentialStyle) -> frozenset[bytes]:
    """The header names a client may carry its credential in, as mitmproxy holds them (lowercased bytes)."""
    return frozenset(n.encode() for n in style.client_headers)


@functools.lru_cache(maxsize=16)
def _names(style: CredentialStyle) -> frozenset[bytes]:
    """The header names `show_credential` replaces, as mitmproxy holds them (lowercased bytes)."""
    return _client_names(style) | {style.header.lower().encode()}


def hide_credential(flow: http.HTTPFlow, style: CredentialStyle, remember: bool = False) -> HeldCredential:
    """Mask the credential the client sent, in the flow, and return it (for the upstream when there is no pool).

    Only the credential's own header values change; every other header keeps its exact bytes. `remember`: the next
    call on the same headers (and only it) reuses this one's work: MaskOnArrival masks them on arrival, gives them
    back for the `request` hooks, and Interception masks them again."""
    req = flow.request
    fields, target = req.headers.fields, req.path
    done = REMEMBERED.pop(flow, None)  # (used once: the credential is not kept with the flow)
    if done is not None and done[0] is fields and done[1] == target and done[2] is style:
        req.headers.fields = done[3]
        if done[4] != target:
            req.path = done[4]
        return done[5]
    path, _, query = target.partition("?")
    names = _client_names(style)
    at = [i for i, (n, _) in enumerate(fields) if n.lower() in names]  # (only these can change)
    sent = [(fields[i][0].decode("latin-1"), fields[i][1].decode("latin-1")) for i in at]  # as the engine reads
    shown, query, held = hide(style, sent, query)
    if at:
        changed = list(fields)
        for i, old, new in zip(at, sent, shown):
            if new != old:
                changed[i] = (fields[i][0], new[1].encode())
        req.headers.fields = tuple(changed)
    if held.query:
        req.path = f"{path}?{query}"
    if remember:
        REMEMBERED[flow] = (fields, target, style, req.headers.fields, req.path, held)
    return held


class MaskOnArrival:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Per flow, gone with it should neither an answer nor an error come: its real headers and path while they
        # are masked, the style of the login it carries, what keeps a plan look-up's answer.
        self._held: WeakKeyDictionary[http.HTTPFlow, tuple[tuple[tuple[bytes, bytes], ...], str]] = WeakKeyDictionary()
        self._passing: WeakKeyDictionary[http.HTTPFlow, CredentialStyle] = WeakKeyDictionary()
        self._lookups: WeakKeyDictionary[http.HTTPFlow, Callable[[int, bytes], None]] = WeakKeyDictionary()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        provider = self.engine.router.provider_for(called_host(flow))
        if provider is None or streamed(flow, self.engine):  # (gated and handed over now: see `streamed`)
            return
        fields, path = req.headers.fields, req.path
        hide_credential(flow, provider.credential, remember=True)
        if req.headers.fields != fields or req.path != path:
            self._held[flow] = (fields, path)

    def request(self, flow: http.HTTPFlow) -> None:
        held = self._held.pop(flow, None)
        if held is not None:
            flow.request.headers.fields, flow.request.path = held
        style = self.engine.router.claimed_style(called_host(flow), flow.request.headers)
        if style is not None and flow.response is None:
            self._passing[flow] = style
            self._looking_up(flow)

    def _looking_up(self, flow: http.HTTPFlow) -> None:
        """A login's plan look-up: whose it is, known while the flow holds its credential."""
        req = flow.request
        keep = self.engine.router.looked_up(called_host(flow), req.path, req.headers.items(multi=True))
        if keep is not None:
            self._lookups[flow] = keep

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """A login's other path, or a call to its side hosts, which mitmproxy forwards as it came (not Rotator's:
        see rewrite/routing/router.py): once it is sent, the flow keeps the login masked (a flow Rotator took is
        masked by then already)."""
        style = self._passing.pop(flow, None)
        if style is not None and flow.id not in self.engine.jobs:
            hide_credential(flow, style)

    def response(self, flow: http.HTTPFlow) -> None:
        self.responseheaders(flow)
        keep = self._lookups.pop(flow, None)
        if keep is not None and flow.response is not None:
            keep(flow.response.status_code, flow.response.content or b"")
        REMEMBERED.pop(flow, None)  # (what masking remembered for a request no one masked again)

    def error(self, flow: http.HTTPFlow) -> None:
        self.responseheaders(flow)
        self._lookups.pop(flow, None)
        self._held.pop(flow, None)  # (a request that never arrived whole keeps its masked credential)
        REMEMBERED.pop(flow, None)
