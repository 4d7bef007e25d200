"""The LLM content view in mitmweb, mitmproxy's console and `mitmdump -v`: an LLM flow's request as a
conversation and its answer assembled, under a header of what Rotator did (rewrite/inspection/views.py renders them).

It is chosen automatically for the generation calls Rotator intercepts (and for saved flows of them); the Raw and
JSON views stay in the view menu. Under mitmweb, the flow list also gets its comment column, unless the user
chose the columns.
"""

from __future__ import annotations

import logging

from mitmproxy import contentviews, ctx, http
from mitmproxy.contentviews import Contentview, Metadata

import protocols
from rewrite.surface import Engine, Facts, render_request, render_response

logger = logging.getLogger("rotator")

PRIORITY = 2  # above mitmproxy's JSON view (1)
MITMWEB_DEFAULT_COLUMNS = ["tls", "icon", "path", "method", "status", "size", "time"]
COMMENT_COLUMN = "comment"


class LLMContentview(Contentview):
    """Named "LLM" in the view menu."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        if not data or self.protocol(metadata) is None:
            return -1
        return PRIORITY

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        protocol = self.protocol(metadata)
        flow = metadata.flow
        if protocol is None or not isinstance(flow, http.HTTPFlow):
            raise ValueError("not an LLM generation call")
        facts = facts_of(flow, protocol)
        if metadata.http_message is flow.request:
            facts.request_body = data
            return render_request(facts)
        facts.response_body = data
        return render_response(facts)

    def protocol(self, metadata: Metadata) -> str | None:
        """The protocol of the generation call this message belongs to; None for anything else."""
        flow = metadata.flow
        if not isinstance(flow, http.HTTPFlow) or metadata.http_message is None or flow.websocket is not None:
            return None
        recorded = flow.metadata.get("rotator")
        if isinstance(recorded, dict) and "provider" in recorded:  # a flow Rotator finished (or a saved one)
            name = recorded.get("protocol")
            return name if isinstance(name, str) and name in protocol_names() else None
        req = flow.request
        route = self.engine.router.route(req.pretty_host, req.method, req.path.partition("?")[0], req.headers,
                                         req.raw_content)
        return route.protocol.name if route is not None and route.protocol is not None else None


def protocol_names() -> set[str]:
    return {p.name for p in protocols.all()}


def facts_of(flow: http.HTTPFlow, protocol: str) -> Facts:
    req, resp = flow.request, flow.response
    recorded = flow.metadata.get("rotator")
    return Facts(
        protocol=protocol,
        path=req.path,
        request_body=req.get_content(strict=False) or b"",
        status=resp.status_code if resp is not None else None,
        content_type=resp.headers.get("content-type", "") if resp is not None else "",
        response_body=resp.get_content(strict=False) if resp is not None else None,
        rotator=recorded if isinstance(recorded, dict) else {},
        started=req.timestamp_start,
        ended=resp.timestamp_end if resp is not None else None,
        error=flow.error.msg if flow.error is not None else None,
    )


class Views:
    def __init__(self, engine: Engine) -> None:
        self.view = LLMContentview(engine)

    def load(self, loader) -> None:
        contentviews.add(self.view)

    def running(self) -> None:
        # mitmweb's default columns leave out the comment, where Rotator says what it did to a flow.
        if getattr(ctx.options, "web_columns", None) == MITMWEB_DEFAULT_COLUMNS:
            ctx.options.update(web_columns=[*MITMWEB_DEFAULT_COLUMNS, COMMENT_COLUMN])
