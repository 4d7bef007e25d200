"""A request without a parameter its upstream refused.

Which parameters an error answer refuses is read by the reader of the upstream's family
(protocols/families/<name>/errors.py, protocols/vendor_errors.py). A parameter is a dotted path of object keys as the
upstream request has them ("temperature", "reasoning.effort", "generationConfig.topK"). A field inside a list (a
message, a tool) is not a parameter: such an error names none.
"""

from __future__ import annotations

import re

PARAM = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")  # keys only: no list index, no numeric segment


def without(body: dict, param: str) -> dict | None:
    """A copy of `body` without `param` (objects along its path are copied, the rest shared); None when the body
    does not carry it. Each key matches as written or in its other case (Gemini takes `top_k` and `topK`)."""
    parts = param.split(".")
    key = _key_in(body, parts[0])
    if key is None:
        return None
    if len(parts) == 1:
        return {k: v for k, v in body.items() if k != key}
    inner = body[key]
    rest = without(inner, ".".join(parts[1:])) if isinstance(inner, dict) else None
    return None if rest is None else {**body, key: rest}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _key_in(obj: dict, name: str) -> str | None:
    for key in (name, camel(name), snake(name)):
        if key in obj:
            return key
    return None

