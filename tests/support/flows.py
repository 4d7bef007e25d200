"""The flows a proxy saved with `-w`, as mitmproxy reads them back."""

from __future__ import annotations

import json
from pathlib import Path

VENDOR_HOSTS = {"api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"}


def read_flows(path: Path) -> list:
    from mitmproxy import io as mitm_io  # (imported here: mitmproxy's flow filters warn at import time)

    with path.open("rb") as f:
        return list(mitm_io.FlowReader(f).stream())


def read_vendor_flows(path: Path) -> list:
    """The saved flows to the vendors' own hosts (not the status host's, nor a test addon's)."""
    return [flow for flow in read_flows(path) if flow.request.pretty_host in VENDOR_HOSTS]


def said(flow) -> str:
    """Everything Rotator recorded of a flow (its record in `metadata["rotator"]`: notes, key, why it was chosen)
    and the flow's comment, as one text to look words up in."""
    return json.dumps(flow.metadata.get("rotator"), default=str) + "\n" + (flow.comment or "")
