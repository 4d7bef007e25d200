"""The flows a proxy saved with `-w`, as mitmproxy reads them back."""

from __future__ import annotations

from pathlib import Path

VENDOR_HOSTS = {"api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"}


def read_flows(path: Path) -> list:
    from mitmproxy import io as mitm_io  # (imported here: mitmproxy's flow filters warn at import time)

    with path.open("rb") as f:
        return list(mitm_io.FlowReader(f).stream())


def read_vendor_flows(path: Path) -> list:
    """The saved flows to the vendors' own hosts (not the status host's, nor a test addon's)."""
    return [flow for flow in read_flows(path) if flow.request.pretty_host in VENDOR_HOSTS]


def chosen(flow) -> list[str]:
    """Why the flow's key was chosen for its conversation, one reason per pick (its `affinity` notes: bound, new,
    moved, compaction); none for a request of no conversation, or with affinity off."""
    events = (flow.metadata.get("rotator") or {}).get("events") or []
    return [e.get("why") for e in events if e.get("kind") == "affinity"]


def affinity_notes(flow) -> list[str]:
    """The flow's `affinity` notes as it shows them ("key sk-p…ol-1: bound: lineage")."""
    events = (flow.metadata.get("rotator") or {}).get("events") or []
    return [e.get("detail", "") for e in events if e.get("kind") == "affinity"]
