"""The text helpers of the flow's LLM view (rewrite/inspection/views.py) and of its parts: a rule, a text clipped and
said so, a block indented, and lines as mitmweb shows them."""

from __future__ import annotations

RULE = "─" * 3


def text(lines: list[str]) -> str:
    # mitmweb shows each line as an element of its own, and an empty one takes no height: a blank line is a space.
    return "\n".join(line or " " for line in lines) + "\n"


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters not shown here: see the Raw view]"


def indent(text: str, width: int) -> list[str]:
    pad = " " * width
    return [pad + line for line in text.splitlines()] or [pad]
