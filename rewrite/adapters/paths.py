"""Dotted paths into a JSON body: `generationConfig.thinkingConfig.thinkingBudget`."""

from __future__ import annotations


def split(path: str) -> list[str]:
    parts = path.split(".")
    if not all(parts):
        raise ValueError(f"{path!r} is not a dotted path (empty part)")
    return parts


def parent(body: dict, parts: list[str], create: bool, replace: bool = True) -> dict | None:
    """The mapping that holds the last part, or None. With `create`, missing (or null) mappings on the way are
    made, and with `replace` so are ones in place of a value that is not a mapping."""
    node = body
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if not create or (child is not None and not replace):
                return None
            child = node[part] = {}
        node = child
    return node


def dotted_keys(v: dict) -> dict:
    """A pydantic validator's helper: check every key is a dotted path."""
    for key in v:
        split(key)
    return v
