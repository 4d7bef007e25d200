"""What the LLM content view shows of a flow, rendered through mitmproxy's own contentview machinery (as mitmweb
does); the `llm_view` fixture (tests/conftest.py) registers the view."""

from __future__ import annotations

from mitmproxy import contentviews
from mitmproxy.test import taddons


def shown(flow, message) -> str:
    with taddons.context():
        result = contentviews.prettify_message(message, flow)
    assert result.view_name == "LLM", result
    return "\n".join(line.rstrip() for line in result.text.split("\n"))  # (blank lines hold a space)
