"""The hedges a flow recorded (rewrite/plugins/hedging.py: `rotator.hedge`), as the LLM view's header shows them:
when the second attempt went and on which key, which attempt answered first, and what the vendor reported of the
cancelled one (it bills it, though the client never saw it). Read defensively: a saved flow's metadata may come
from another version."""

from __future__ import annotations

WON = {"first": "the first attempt answered first", "second": "the second attempt answered first"}


def hedge_lines(rot: dict) -> list[str]:
    hedges = rot.get("hedge")
    if not isinstance(hedges, list):
        return []
    lines = []
    for h in hedges:
        if not isinstance(h, dict):
            continue
        where = f"key {h['key']}" if h.get("key") else "the client's own credential"
        same = " (the first's)" if h.get("same_key") else ""
        won = WON.get(str(h.get("won")), "neither attempt answered")
        line = f"hedge: a second attempt after {h.get('after', '?')} s on {where}{same}: {won}"
        if h.get("loser_key") or h.get("loser_input_tokens") is not None:
            loser = f"key {h['loser_key']}" if h.get("loser_key") else "its credential"
            tokens = h.get("loser_input_tokens")
            billed = f"{tokens} input tokens" if isinstance(tokens, int) else "no usage"
            line += f"; the other, cancelled, reported {billed} (counted for {loser})"
        lines.append(line)
    return lines
