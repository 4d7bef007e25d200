"""Who spent what, as a person reads it: each client's rows (rewrite/accounting/client_book.py `describe`), in the
`rotator.clients` command and on the status page. Pure."""

from __future__ import annotations

PERIODS = (("hour", "this hour"), ("day", "today"), ("month", "this month"), ("total", "in all"))
HEAD = ("client", "provider", "model", "period (UTC)", "requests", "input", "output", "cache read", "cache write",
        "cost")


def cells(rows: list[dict]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for row in rows:
        for period, label in PERIODS:
            f = row[period]
            out.append((row["client"], row["provider"], row["model"] or "-", label, str(f["requests"]),
                        str(f["input_tokens"]), str(f["output_tokens"]), str(f["cache_read_tokens"]),
                        str(f["cache_write_tokens"]), cost(f)))
    return out


def cost(figures: dict) -> str:
    text = f"${figures['cost']:.6f}".rstrip("0").rstrip(".")
    if figures["covered"]:
        text += f" (+{figures['covered']} covered by a plan)"
    if figures["unpriced"]:
        text += f" (+{figures['unpriced']} of unknown price)"
    return text


def client_table(rows: list[dict]) -> str:
    """The rows as a plain text table ("no client has spent anything yet" without any)."""
    if not rows:
        return "clients: none has spent anything yet"
    lines: list[tuple[str, ...]] = [HEAD, *cells(rows)]
    widths = [max(len(r[i]) for r in lines) for i in range(len(HEAD))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in lines)
