"""What cap and clamp share: bounding a number in the body without changing its JSON type."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rewrite.adapters import paths

Finite = Annotated[float, Field(allow_inf_nan=False)]  # a bound `.inf` or `.nan` would never bound anything


def bound(body: dict, parts: list[str], low: float | None, high: float | None) -> None:
    holder = paths.parent(body, parts, create=False)
    if holder is None:
        return
    value = holder.get(parts[-1])
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # absent or not a number: the host judges it (`default` sets an absent one)
    bounded = value
    if high is not None and bounded > high:
        bounded = high
    if low is not None and bounded < low:
        bounded = low
    if bounded != value:
        # an integer field (max_tokens) stays an integer: 32000, not 32000.0, which some hosts refuse
        holder[parts[-1]] = int(bounded) if isinstance(value, int) and float(bounded).is_integer() else bounded
