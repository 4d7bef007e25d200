"""The decision trail a flow recorded (rewrite/plugins/trail.py: `rotator.trail`), as the LLM view's header shows it:
per attempt, the key taken and why, and why each other candidate was passed over; or the client's figure that refused
the request before any key was taken. Read defensively: a saved flow's
metadata may come from another version."""

from __future__ import annotations


def trail_lines(rot: dict) -> list[str]:
    held = rot.get("client_check")  # (rewrite/plugins/clients.py: a client's budget, limit or models refused it)
    if isinstance(held, dict):
        return [f"client {held.get('client', '?')}: refused by its {held.get('refused', '?')} "
                f"({held.get('status', '?')}): no key taken, nothing sent upstream"]
    trail = rot.get("trail")
    if not isinstance(trail, list) or not trail:
        return []
    lines = ["key decisions:"]
    for entry in trail:
        if not isinstance(entry, dict):
            continue
        outcome = f" → {entry['outcome']}" if entry.get("outcome") else ""
        lines.append(f"  {entry.get('attempt', '?')}. {entry.get('target', '')}: took {entry.get('taken', '?')}: "
                     f"{entry.get('why', '')}{outcome}")
        for other in entry.get("passed") or []:
            if isinstance(other, dict):
                lines.append(f"       passed over {other.get('key', '?')}: {other.get('why', '')}")
    return lines
