"""`drop: [logprobs, metadata.user_id]`: remove fields the host rejects."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from rewrite.adapters import paths
from rewrite.adapters.registry import Adapter, UpstreamRequest, register


def _dotted(v: list[str]) -> list[str]:
    for path in v:
        paths.split(path)
    return v


@register
class Drop(Adapter):
    name = "drop"
    Options = Annotated[list[str], Field(min_length=1), AfterValidator(_dotted)]

    def __init__(self, options: list[str]) -> None:
        super().__init__(options)
        self.fields = [paths.split(p) for p in options]

    def request(self, req: UpstreamRequest) -> None:
        for parts in self.fields:
            holder = paths.parent(req.body, parts, create=False)
            if holder is not None:
                holder.pop(parts[-1], None)
