"""What the addons remember of a flow in flight between their hooks, in tables keyed by the flow (as mitmproxy's own
addons keep per-flow facts: never attributes set on its objects): the host its client called, whether its body is
streamed to the engine, and what masking its credential on arrival did (`REMEMBERED`, for addons/interception.py's
`hide_credential`). An entry goes with its flow."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from mitmproxy import http
from mitmproxy.net.http import url as mitmproxy_url

from rewrite.surface import BIG_BODY, Engine

if TYPE_CHECKING:
    from rewrite.surface import CredentialStyle, HeldCredential

    # (the headers and path it was asked on, the style, the headers and path it made, the credential it held)
    Hidden = tuple[tuple[tuple[bytes, bytes], ...], str, CredentialStyle, tuple[tuple[bytes, bytes], ...], str,
                   HeldCredential]

_CALLED: WeakKeyDictionary[http.HTTPFlow, tuple[tuple[tuple[bytes, bytes], ...], str, str]] = WeakKeyDictionary()
_STREAMED: WeakKeyDictionary[http.HTTPFlow, bool] = WeakKeyDictionary()
# Used once, by the next masking on the same headers; else dropped at the flow's answer (addons/masking.py).
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
