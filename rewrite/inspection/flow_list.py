"""The flow list's comment and mark of one LLM flow: what Rotator did, at a glance (mitmweb's comment column, the
console's flow list), from `flow.metadata["rotator"]`'s notes. Pure, as rewrite/inspection/views.py.
"""

from __future__ import annotations

from rewrite.policy.outcomes import Note

# Notes the header and the flow list leave out: a heartbeat's early 200 is how the answer was sent, not what it was.
UNSHOWN = (Note.COMMITTED,)  # (a tuple: a saved flow may hold a kind that cannot be hashed)

# Marks of the flow list, by what happened (the worst wins).
MARK_FAILED = ":x:"
MARK_REPAIRED = ":adhesive_bandage:"
MARK_FALLBACK = ":twisted_rightwards_arrows:"
MARK_RETRIED = ":repeat:"


def summary(events: list[dict]) -> tuple[str, str]:
    """The flow's comment and mark: what happened, at a glance ("retried 2× (status 429), repaired (upstream reset)").
    mitmweb's comment column is narrow: what happened comes first, why in brackets after it."""
    events = [e for e in events if isinstance(e, dict) and e.get("kind") not in UNSHOWN]
    said: list[str] = []
    retries = [e for e in events if e.get("kind") == Note.RETRY]
    if retries:
        reasons = list(dict.fromkeys(short(e.get("reason") or e.get("detail", "")) for e in retries))
        said.append(f"retried {len(retries)}× ({'; '.join(reasons)})")
    went_on = [e for e in events if e.get("kind") == Note.RESUMED and went_on_at_seam(e)]
    if went_on:
        methods = list(dict.fromkeys(str(e.get("method")) for e in went_on))
        said.append(f"resumed {len(went_on)}× ({'; '.join(methods)})")
    for e in events:
        kind = e.get("kind")
        if kind == Note.RETRY or (kind == Note.RESUMED and went_on_at_seam(e)):
            continue
        if kind == Note.REPAIRED:
            said.append(f"repaired ({short(e.get('cause') or e.get('detail', ''))})")
        elif kind == Note.FALLBACK:
            said.append(f"fell back to {e.get('provider') or e.get('to') or short(e.get('detail', ''))}")
        elif kind == Note.FAILED:
            said.append(f"failed ({short(e.get('reason') or e.get('detail', ''))})")
        elif kind == Note.AFFINITY and e.get("why") in ("bound", "new"):
            continue  # (a conversation on its key, or a new one placed, is how it should be: the flow's view says it)
        elif kind == Note.AFFINITY and e.get("why") in ("moved", "compaction"):
            moved = f" ({short(e.get('detail', '')).rpartition(': ')[2]})" if e.get("why") == "moved" else ""
            said.append(f"{e.get('why')} to key {e.get('key')}{moved}")
        else:
            said.append(f"{kind}: {short(e.get('detail', ''), 80)}")
    kinds = {e.get("kind") for e in events}
    if Note.FAILED in kinds:
        mark = MARK_FAILED
    elif kinds & {Note.REPAIRED, Note.CUT, Note.RESUMED}:
        mark = MARK_REPAIRED
    elif Note.FALLBACK in kinds:
        mark = MARK_FALLBACK
    elif Note.RETRY in kinds:
        mark = MARK_RETRIED
    else:
        mark = ""
    return ", ".join(said), mark


def went_on_at_seam(event: dict) -> bool:
    """Whether a continuation's text reached the client (it ended the answer, or was cut in its turn)."""
    outcome = str(event.get("outcome") or "")
    return outcome == "spliced" or outcome.startswith("cut again")


def short(text: str, limit: int = 48) -> str:
    """A reason cut to its first clause: "first-token timeout (no response headers)" -> "first-token timeout"."""
    text = str(text).split(" (", 1)[0].strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
