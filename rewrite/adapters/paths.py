"""Dotted paths into a JSON body: `generationConfig.thinkingConfig.thinkingBudget`."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def split(path: str) -> list[str]:
    parts = path.split(".")
    if not all(parts):
        raise ValueError(f"{path!r} is not a dotted path (empty part)")
    return parts


def get(body: dict, parts: list[str], default: Any = None) -> Any:
    node: Any = body
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def parent(body: dict, parts: list[str], create: bool) -> dict | None:
    """The mapping that holds the last part, made on the way when `create` (replacing a non-mapping there)."""
    node = body
    for part in parts[:-1]:
        child = node.get(part, _MISSING)
        if not isinstance(child, dict):
            if not create:
                return None
            child = node[part] = {}
        node = child
    return node


def dotted_keys(v: dict) -> dict:
    """A pydantic validator's helper: check every key is a dotted path."""
    for key in v:
        split(key)
    return v
