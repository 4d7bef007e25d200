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


# How the decision trail (rewrite/plugins/trail.py) words why a key was taken, and a short name for each.
TAKEN = (("the conversation is bound to it (", "bound: "), ("a hard pin: its account holds the conversation's ", "bound: "),
         ("a new conversation", "new"), ("the conversation moved here", "moved"),
         ("the conversation was compacted", "compaction"))


def taken(trail: list[dict]) -> list[str]:
    """Why each attempt's key was taken, as a decision trail says it: "bound: <what bound it>" (its lineage, a
    session, a pin), "new", "moved", "compaction", or "strategy" (no conversation in play)."""
    out = []
    for record in trail:
        why = record["why"]
        out.append(next((c + why[len(w):].rstrip(")") if c.endswith(": ") else c for w, c in TAKEN
                         if why.startswith(w)), "strategy"))
    return out


def bound_by(flow) -> list[str]:
    """Why each attempt's key was taken for the flow's conversation, as its trail says it (`taken`)."""
    return taken((flow.metadata.get("rotator") or {}).get("trail") or [])


def chosen(flow) -> list[str]:
    """Why the flow's key was chosen for its conversation, one reason per attempt (bound, new, moved, compaction), as
    its decision trail says it; none for a request of no conversation, or with affinity off."""
    return [why.partition(":")[0] for why in bound_by(flow) if why != "strategy"]


def affinity_notes(flow) -> list[str]:
    """The flow's `affinity` notes as it shows them ("key sk-p…ol-1: moved: key failed"): a conversation that left
    its key, or was placed anew after a compaction."""
    events = (flow.metadata.get("rotator") or {}).get("events") or []
    return [e.get("detail", "") for e in events if e.get("kind") == "affinity"]
